#include "psa/adapters/hl7/inspect.h"

#include <cstring>
#include <map>

#include "psa/store/json.h"

namespace psa::adapters::hl7 {
namespace {

constexpr char kHex[] = "0123456789abcdef";

// Splits `s` on `sep` and calls fn(piece, index 1-based, count). sep == 0: one piece.
template <class Fn>
void split(std::string_view s, char sep, Fn&& fn) {
  if (sep == 0) {
    fn(s, 1, 1);
    return;
  }
  int count = 1;
  for (char c : s) {
    count += c == sep ? 1 : 0;
  }
  size_t start = 0;
  for (int k = 1; k <= count; ++k) {
    const void* hit = std::memchr(s.data() + start, sep, s.size() - start);
    size_t end =
        hit == nullptr ? s.size() : static_cast<size_t>(static_cast<const char*>(hit) - s.data());
    fn(s.substr(start, end - start), k, count);
    start = end + 1;
  }
}

void appendTextValue(std::string& out, std::string_view s) {
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (u < 0x20 || u == 0x7f) {
          out += "\\x";
          out.push_back(kHex[u >> 4]);
          out.push_back(kHex[u & 0xF]);
        } else {
          out.push_back(c);
        }
    }
  }
}

}  // namespace

void forEachLeaf(const Message& msg, const InspectOptions& options,
                 const std::function<void(const Leaf&)>& fn) {
  const Delimiters& d = msg.delimiters();
  std::map<std::string_view, int> totals;
  for (size_t s = 0; s < msg.segmentCount(); ++s) {
    ++totals[msg.segmentId(s)];
  }
  std::map<std::string_view, int> seen;
  std::string path;
  for (size_t s = 0; s < msg.segmentCount(); ++s) {
    std::string_view id = msg.segmentId(s);
    int occurrence = ++seen[id];
    bool header = id == "MSH" || id == "FHS" || id == "BHS";
    std::string seg_path;
    if (isSegmentId(id)) {
      seg_path = id;
      if (totals[id] > 1) {
        seg_path += '[' + std::to_string(occurrence) + ']';
      }
    } else {  // not addressable by id: by position
      seg_path = '#' + std::to_string(s + 1);
    }
    const int fields = msg.fieldCount(s);
    for (int f = 1; f <= fields; ++f) {
      Element whole = msg.field(s, f);
      std::string field_path = seg_path + '-' + std::to_string(f);
      Leaf leaf;
      leaf.segment = s;
      leaf.field = f;
      auto emit = [&](const std::string& p, Element e) {
        if (e.empty() && !options.include_empty) {
          return;
        }
        leaf.path = p;
        leaf.element = e;
        fn(leaf);
      };
      // MSH-1 and MSH-2 (FHS, BHS likewise) are the delimiters themselves: atomic.
      if (header && f <= 2) {
        leaf.literal = true;
        emit(field_path, whole);
        leaf.literal = false;
        continue;
      }
      split(whole.raw, d.repetition, [&](std::string_view rep, int r, int reps) {
        std::string rep_path = field_path;
        if (reps > 1) {
          rep_path += '[' + std::to_string(r) + ']';
        }
        leaf.repetition = reps > 1 ? r : 0;
        split(rep, d.component, [&](std::string_view comp, int c, int comps) {
          std::string comp_path = rep_path;
          if (comps > 1) {
            comp_path += '.' + std::to_string(c);
          }
          leaf.component = comps > 1 ? c : 0;
          split(comp, d.subcomponent, [&](std::string_view sub, int sc, int subs) {
            leaf.subcomponent = 0;
            if (subs > 1) {
              if (comps == 1) {
                // a path needs the component to name a sub-component
                path = rep_path + ".1." + std::to_string(sc);
                leaf.component = 1;
              } else {
                path = comp_path + '.' + std::to_string(sc);
              }
              leaf.subcomponent = sc;
            } else {
              path = comp_path;
            }
            emit(path, Element{sub, presenceOf(sub)});
          });
        });
      });
      leaf.repetition = leaf.component = leaf.subcomponent = 0;
    }
  }
}

std::string leafValue(const Message& msg, const Leaf& leaf) {
  std::string out;
  if (leaf.literal) {
    toUtf8To(leaf.element.raw, msg.charset(), out);
  } else {
    msg.decodeTo(leaf.element, out);
  }
  return out;
}

std::string inspectText(const Message& msg, const InspectOptions& options) {
  std::string out;
  forEachLeaf(msg, options, [&](const Leaf& leaf) {
    out.append(leaf.path);
    out += " = ";
    if (leaf.element.isNull()) {
      out += "\"\"";
    } else {
      appendTextValue(out, leafValue(msg, leaf));
    }
    out.push_back('\n');
  });
  return out;
}

std::string jsonString(std::string_view s) {
  // json::quote, plus DEL escaped: inspect prints message bytes to a technician's terminal.
  std::string out = json::quote(s);
  for (size_t at = out.find('\x7f'); at != std::string::npos; at = out.find('\x7f', at)) {
    out.replace(at, 1, "\\u007f");
  }
  return out;
}

std::string inspectJson(const Message& msg, const InspectOptions& options) {
  std::string out = "{";
  auto member = [&](std::string_view key, std::string_view utf8_value) {
    out += jsonString(key);
    out.push_back(':');
    out += jsonString(utf8_value);
    out.push_back(',');
  };
  member("type", msg.decode(msg.get(0, 9, 1, 1)));
  member("trigger", msg.decode(msg.get(0, 9, 1, 2)));
  member("structure", msg.decode(msg.get(0, 9, 1, 3)));
  member("control_id", msg.decode(msg.field(0, 10)));
  member("version", msg.decode(msg.get(0, 12, 1, 1)));
  member("charset", charsetName(msg.charset()));
  std::string delims(1, msg.delimiters().field);
  delims += msg.delimiters().encodingCharacters();
  std::string delims_utf8;
  toUtf8To(delims, msg.charset(), delims_utf8);
  member("delimiters", delims_utf8);
  out += "\"segments\":" + std::to_string(msg.segmentCount()) + ",\"fields\":[";
  bool first = true;
  forEachLeaf(msg, options, [&](const Leaf& leaf) {
    if (!first) {
      out.push_back(',');
    }
    first = false;
    out += "{\"path\":";
    out += jsonString(leaf.path);
    out += ",\"value\":";
    if (leaf.element.isNull()) {
      out += "null";
    } else {
      out += jsonString(leafValue(msg, leaf));
    }
    out.push_back('}');
  });
  out += "]}";
  return out;
}

}  // namespace psa::adapters::hl7
