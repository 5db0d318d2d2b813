// Chunked records (design.md "Chunked records"): a record whose PUBLISH would exceed the
// broker's Maximum Packet Size goes as several QoS 1 publishes on its usual topic, each with
// the record's user properties plus `chunk` (1-based), `chunks` (total) and `chunk-of` (the
// record's msg-id), and its own msg-id `<msg-id>.<chunk>`; `sha256` stays the whole record's.
//
// Both sides of the contract live here: planChunks()/chunkProperties() for the agent, which
// splits, and ChunkAssembler for a receiver (pms-cloud-sim; the cloud), which joins and
// verifies. The assembler reads network input: it is strict and bounded, and fuzzed
// (tests/fuzz/fuzz_chunk_assembler.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "psa/store/result.h"

namespace psa::cloudlink {

using UserProperties = std::vector<std::pair<std::string, std::string>>;

/// Bytes of a QoS 1 PUBLISH packet with this topic, property block and payload (MQTT 5:
/// fixed header, topic, packet id, property length, properties, payload).
size_t publishPacketSize(size_t topic_bytes, size_t properties_bytes, size_t payload_bytes);
/// Bytes the user properties and a content type take in a PUBLISH's property block.
size_t propertyBytes(const UserProperties& user_properties, std::string_view content_type);

struct ChunkPlan {
  size_t chunk_bytes = 0;  ///< payload bytes per chunk (the last may be shorter)
  size_t chunks = 0;
};

/// How to send a record whose PUBLISH (with `properties`, its usual user properties, and
/// `content_type`) must fit `max_packet` bytes (0 = no limit): nullopt when it fits whole; else
/// the plan. Error (Errc::limit) when not even one payload byte fits beside the properties.
Result<std::optional<ChunkPlan>> planChunks(size_t max_packet, std::string_view topic,
                                            const UserProperties& properties,
                                            std::string_view content_type, size_t payload_bytes);

/// "<msg-id>.<chunk>"
std::string chunkMsgId(std::string_view msg_id, size_t chunk);

/// The user properties of chunk `chunk` of `chunks`: the record's own with `msg-id` replaced
/// by chunkMsgId(), then `chunk`, `chunks` and `chunk-of`.
UserProperties chunkProperties(const UserProperties& record_properties, size_t chunk,
                               size_t chunks);

/// One chunk as a receiver reads it from the user properties.
struct ChunkHeader {
  std::string chunk_of;  ///< the record's msg-id
  size_t chunk = 0;      ///< 1-based
  size_t chunks = 0;
};

struct ChunkLimits {
  size_t max_record_bytes = size_t{64} << 20;  ///< a record being assembled may not grow past
  size_t max_chunks = 100000;                  ///< per record
  size_t max_open_records = 1000;              ///< records partly received at once
  size_t max_bytes_held = size_t{256} << 20;   ///< over all records partly received
};

/// Parses the `chunk`, `chunks` and `chunk-of` property values. nullopt when the message has
/// none of the three (not a chunk); an error when it has some but they are not valid.
Result<std::optional<ChunkHeader>> readChunkHeader(const UserProperties& properties,
                                                   const ChunkLimits& limits = {});

/// Joins chunks (in any order, resends included) into records. Not thread-safe.
class ChunkAssembler {
 public:
  explicit ChunkAssembler(ChunkLimits limits = {}) : limits_(limits) {}

  struct Added {
    enum class Outcome {
      incomplete,  ///< kept; more chunks to come
      duplicate,   ///< this chunk was already held: ignored
      complete,    ///< `record` holds the whole payload, sha256 verified
      invalid,     ///< `error` says why; the record's chunks so far are dropped
    };
    Outcome outcome = Outcome::incomplete;
    std::string record;
    std::string error;
  };

  /// One chunk with the record's `sha256` (lower-case hex) and its payload piece.
  Added add(const ChunkHeader& header, std::string_view sha256, std::string_view payload);

  size_t openRecords() const { return open_.size(); }
  size_t bytesHeld() const { return bytes_held_; }

 private:
  struct Partial {
    size_t chunks = 0;
    std::string sha256;
    std::map<size_t, std::string> pieces;
    size_t bytes = 0;
  };
  Added drop(const std::string& chunk_of, std::string error);

  ChunkLimits limits_;
  std::map<std::string, Partial> open_;
  size_t bytes_held_ = 0;
};

}  // namespace psa::cloudlink
