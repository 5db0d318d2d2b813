// The field policy on raw HL7 v2: each matched element is decoded, transformed and re-escaped
// in place; every other byte of the message stays as received, so it still parses the same.
#include <algorithm>
#include <cctype>

#include "policy/policy_internal.h"
#include "psa/adapters/api/http.h"
#include "psa/adapters/hl7/message.h"

namespace psa::adapters::policy {
namespace {

class Hl7Rewriter {
 public:
  Hl7Rewriter(const hl7::Message& msg, const std::string& key) : msg_(msg), key_(key) {
    utf8_ = msg.charset() == hl7::Charset::utf8 || msg.charset() == hl7::Charset::ascii;
  }

  void apply(const Bound<Hl7Ref>& rule) {
    const Hl7Ref& r = rule.ref;
    for (size_t seg = 0; seg < msg_.segmentCount(); ++seg) {
      if (msg_.segmentId(seg) != r.segment || !msg_.field(seg, r.field).hasValue()) {
        continue;
      }
      if (r.type.empty() && r.component == 0) {
        if (rule.act.action == Action::drop) {
          dropElement(msg_.field(seg, r.field));
          continue;
        }
        for (int rep = 1; rep <= msg_.repetitionCount(seg, r.field); ++rep) {
          leaves(seg, r.field, rep, 0, 0, rule.act);
        }
        continue;
      }
      for (int rep = 1; rep <= msg_.repetitionCount(seg, r.field); ++rep) {
        if (!r.type.empty() && !typed(seg, r.field, rep, r.type)) {
          continue;
        }
        const int comp = r.component != 0 ? r.component : 1;
        if (rule.act.action == Action::drop) {
          dropElement(r.type.empty() || r.component != 0
                          ? msg_.get(seg, r.field, rep, comp, r.subcomponent)
                          : msg_.get(seg, r.field, rep));
          continue;
        }
        leaves(seg, r.field, rep, comp, r.subcomponent, rule.act);
      }
    }
  }

  Outcome finish(std::string_view text) {
    Outcome out;
    out.counts = counts_;
    if (edits_.empty()) {
      return out;
    }
    out.payload = applyEdits(text, std::move(edits_));
    out.changed = true;
    return out;
  }

 private:
  bool typed(size_t seg, int field, int rep, const std::string& type) const {
    std::string v;
    hl7::unescapeTo(msg_.get(seg, field, rep, 5).raw, msg_.delimiters(), v);
    return api::iequals(v, type);
  }

  // Every sub-component of repetition `rep` (comp 0: of all its components).
  void leaves(size_t seg, int field, int rep, int comp, int sub, const LeafAction& act) {
    const int c_first = comp != 0 ? comp : 1;
    const int c_last = comp != 0 ? comp : msg_.componentCount(seg, field, rep);
    for (int c = c_first; c <= c_last; ++c) {
      const int s_first = sub != 0 ? sub : 1;
      const int s_last = sub != 0 ? sub : msg_.subcomponentCount(seg, field, rep, c);
      for (int s = s_first; s <= s_last; ++s) {
        leaf(msg_.get(seg, field, rep, c, s), act);
      }
    }
  }

  void leaf(const hl7::Element& e, const LeafAction& act) {
    if (!e.hasValue()) {
      return;  // empty, absent or the explicit null "": nothing to protect
    }
    std::string value;
    hl7::unescapeTo(e.raw, msg_.delimiters(), value);
    Counts c;
    auto next = transformValue(act, value, key_, utf8_, c);
    if (!next) {
      return;
    }
    std::string raw;
    hl7::escapeTo(*next, msg_.delimiters(), raw);
    if (add(e, std::move(raw))) {
      counts_ += c;
    }
  }

  void dropElement(const hl7::Element& e) {
    if (!e.hasValue()) {
      return;
    }
    if (add(e, std::string())) {
      ++counts_.dropped;
    }
  }

  // False when an earlier (higher-priority) rule already rewrote an overlapping range.
  bool add(const hl7::Element& e, std::string text) {
    const size_t begin = static_cast<size_t>(e.raw.data() - msg_.text().data());
    const size_t end = begin + e.raw.size();
    for (const Edit& x : edits_) {
      if (begin < x.end && x.begin < end) {
        return false;
      }
    }
    edits_.push_back(Edit{begin, end, std::move(text)});
    return true;
  }

  const hl7::Message& msg_;
  const std::string& key_;
  bool utf8_ = true;
  std::vector<Edit> edits_;
  Counts counts_;
};

}  // namespace

Outcome rewriteHl7(std::string_view payload, const std::vector<const Bound<Hl7Ref>*>& rules,
                   const std::string& key) {
  hl7::Message msg;
  if (!msg.parse(payload) || !msg.delimiters().usable()) {
    Outcome out;
    out.parsed = false;
    return out;
  }
  Hl7Rewriter rw(msg, key);
  for (const auto* rule : rules) {
    rw.apply(*rule);
  }
  return rw.finish(payload);
}

}  // namespace psa::adapters::policy
