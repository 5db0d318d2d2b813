#include "psa/cloudlink/chunks.h"

#include <charconv>

#include "psa/cloudlink/envelope.h"

namespace psa::cloudlink {
namespace {

size_t varintBytes(size_t n) {
  size_t bytes = 1;
  while (n >= 128) {
    n /= 128;
    ++bytes;
  }
  return bytes;
}

// 1 (identifier) + 2 + name + 2 + value
size_t userPropertyBytes(const std::pair<std::string, std::string>& p) {
  return 5 + p.first.size() + p.second.size();
}

const std::string* findProperty(const UserProperties& props, std::string_view name) {
  for (const auto& [n, v] : props) {
    if (n == name) {
      return &v;
    }
  }
  return nullptr;
}

std::optional<size_t> parseCount(const std::string& text) {
  if (text.empty() || text.size() > 9 || text[0] == '0') {
    return std::nullopt;  // no sign, no leading zeros, no spaces
  }
  size_t n = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return n;
}

}  // namespace

size_t publishPacketSize(size_t topic_bytes, size_t properties_bytes, size_t payload_bytes) {
  const size_t remaining =
      2 + topic_bytes + 2 + varintBytes(properties_bytes) + properties_bytes + payload_bytes;
  return 1 + varintBytes(remaining) + remaining;
}

size_t propertyBytes(const UserProperties& user_properties, std::string_view content_type) {
  size_t n = content_type.empty() ? 0 : 3 + content_type.size();
  for (const auto& p : user_properties) {
    n += userPropertyBytes(p);
  }
  return n;
}

std::string chunkMsgId(std::string_view msg_id, size_t chunk) {
  return std::string(msg_id) + "." + std::to_string(chunk);
}

UserProperties chunkProperties(const UserProperties& record_properties, size_t chunk,
                               size_t chunks) {
  UserProperties out;
  out.reserve(record_properties.size() + 3);
  std::string record_id;
  for (const auto& [name, value] : record_properties) {
    if (name == "msg-id") {
      record_id = value;
      out.emplace_back(name, chunkMsgId(value, chunk));
    } else {
      out.emplace_back(name, value);
    }
  }
  out.emplace_back("chunk", std::to_string(chunk));
  out.emplace_back("chunks", std::to_string(chunks));
  out.emplace_back("chunk-of", record_id);
  return out;
}

Result<std::optional<ChunkPlan>> planChunks(size_t max_packet, std::string_view topic,
                                            const UserProperties& properties,
                                            std::string_view content_type, size_t payload_bytes) {
  const size_t whole =
      publishPacketSize(topic.size(), propertyBytes(properties, content_type), payload_bytes);
  if (max_packet == 0 || whole <= max_packet) {
    return std::optional<ChunkPlan>();
  }
  // The chunk properties grow with the number of digits in `chunks`; plan with a guess and
  // grow it until the plan's own count fits the guess.
  const std::string* id = findProperty(properties, "msg-id");
  const std::string record_id = id != nullptr ? *id : std::string();
  for (size_t digits = 1; digits <= 9; ++digits) {
    const std::string widest(digits, '9');
    UserProperties widest_props = properties;
    for (auto& [name, value] : widest_props) {
      if (name == "msg-id") {
        value += "." + widest;
      }
    }
    widest_props.emplace_back("chunk", widest);
    widest_props.emplace_back("chunks", widest);
    widest_props.emplace_back("chunk-of", record_id);
    const size_t props = propertyBytes(widest_props, content_type);
    const size_t empty_packet = publishPacketSize(topic.size(), props, 0);
    if (empty_packet >= max_packet) {
      break;
    }
    // Leave room for the remaining-length varint growing with the payload.
    size_t chunk_bytes = max_packet - empty_packet;
    while (chunk_bytes > 0 && publishPacketSize(topic.size(), props, chunk_bytes) > max_packet) {
      --chunk_bytes;
    }
    if (chunk_bytes == 0) {
      break;
    }
    const size_t chunks = (payload_bytes + chunk_bytes - 1) / chunk_bytes;
    if (std::to_string(chunks).size() <= digits) {
      return std::optional<ChunkPlan>(ChunkPlan{chunk_bytes, chunks});
    }
  }
  return Error(Errc::limit, "the broker's maximum packet size (" + std::to_string(max_packet) +
                                " bytes) leaves no room for a record's metadata");
}

Result<std::optional<ChunkHeader>> readChunkHeader(const UserProperties& properties,
                                                   const ChunkLimits& limits) {
  const std::string* chunk = findProperty(properties, "chunk");
  const std::string* chunks = findProperty(properties, "chunks");
  const std::string* chunk_of = findProperty(properties, "chunk-of");
  if (chunk == nullptr && chunks == nullptr && chunk_of == nullptr) {
    return std::optional<ChunkHeader>();
  }
  if (chunk == nullptr || chunks == nullptr || chunk_of == nullptr) {
    return Error(Errc::invalid_input, "a chunk needs all of chunk, chunks and chunk-of");
  }
  ChunkHeader h;
  h.chunk_of = *chunk_of;
  if (h.chunk_of.empty() || h.chunk_of.size() > 200) {
    return Error(Errc::invalid_input, "chunk-of: expected the record's msg-id");
  }
  const auto k = parseCount(*chunk);
  const auto n = parseCount(*chunks);
  if (!n || *n < 2 || *n > limits.max_chunks) {
    return Error(Errc::invalid_input, "chunks: expected 2.." + std::to_string(limits.max_chunks));
  }
  if (!k || *k > *n) {
    return Error(Errc::invalid_input, "chunk: expected 1..chunks");
  }
  h.chunk = *k;
  h.chunks = *n;
  return std::optional<ChunkHeader>(std::move(h));
}

ChunkAssembler::Added ChunkAssembler::drop(const std::string& chunk_of, std::string error) {
  if (auto it = open_.find(chunk_of); it != open_.end()) {
    bytes_held_ -= it->second.bytes;
    open_.erase(it);
  }
  Added a;
  a.outcome = Added::Outcome::invalid;
  a.error = std::move(error);
  return a;
}

ChunkAssembler::Added ChunkAssembler::add(const ChunkHeader& h, std::string_view sha256,
                                          std::string_view payload) {
  auto it = open_.find(h.chunk_of);
  if (it == open_.end()) {
    if (open_.size() >= limits_.max_open_records) {
      Added a;
      a.outcome = Added::Outcome::invalid;
      a.error = "too many records partly received (" + std::to_string(open_.size()) + ")";
      return a;
    }
    Partial p;
    p.chunks = h.chunks;
    p.sha256 = std::string(sha256);
    it = open_.emplace(h.chunk_of, std::move(p)).first;
  }
  Partial& p = it->second;
  if (p.chunks != h.chunks || p.sha256 != sha256) {
    return drop(h.chunk_of, "chunk " + std::to_string(h.chunk) +
                                " disagrees with the record's earlier chunks (chunks or sha256)");
  }
  if (p.pieces.count(h.chunk) != 0) {
    Added a;
    a.outcome = p.pieces[h.chunk] == payload ? Added::Outcome::duplicate : Added::Outcome::invalid;
    if (a.outcome == Added::Outcome::invalid) {
      return drop(h.chunk_of, "chunk " + std::to_string(h.chunk) + " arrived twice, different");
    }
    return a;
  }
  if (p.bytes + payload.size() > limits_.max_record_bytes ||
      bytes_held_ + payload.size() > limits_.max_bytes_held) {
    return drop(h.chunk_of, "record larger than the assembler's limits");
  }
  p.pieces.emplace(h.chunk, std::string(payload));
  p.bytes += payload.size();
  bytes_held_ += payload.size();
  Added a;
  if (p.pieces.size() < p.chunks) {
    return a;
  }
  std::string record;
  record.reserve(p.bytes);
  for (const auto& [k, piece] : p.pieces) {
    record += piece;
  }
  bytes_held_ -= p.bytes;
  open_.erase(it);
  if (sha256Hex(record) != sha256) {
    a.outcome = Added::Outcome::invalid;
    a.error = "the reassembled record does not match its sha256";
    return a;
  }
  a.outcome = Added::Outcome::complete;
  a.record = std::move(record);
  return a;
}

}  // namespace psa::cloudlink
