// Signed remote documents (design.md "Contract: MQTT topics and envelope"): the envelope
// {"payload":"<base64 of JSON>","sig":"<base64 Ed25519 signature of the payload bytes>",
// "key_id":"..."} carrying a config document (P/config/set) or a command (P/cmd/{name}).
//
// Everything here is outside input: every check reports a specific rejection reason and never
// throws. The key id of an Ed25519 public key is its fingerprint: the lower-case hex of the
// first 8 bytes of SHA-256 over the raw 32-byte public key (16 hex digits). Both sides derive
// it from the key itself, so no file name or local naming travels over the wire.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "psa/store/json.h"
#include "psa/store/result.h"

namespace psa::agent {

/// Why a remote document or command was refused. The names (rejectReasonName) are part of the
/// P/config/state and P/cmd/result documents.
enum class RejectReason {
  malformed,        ///< envelope or payload not JSON / not base64 / wrong shape
  bad_signature,    ///< signature missing, not 64 bytes, or does not verify
  unknown_key,      ///< key_id missing or not one of the configured keys
  wrong_agent,      ///< agent_id is not this agent
  replay,           ///< config version not greater than the last applied; command id seen
  expired,          ///< expires_at is in the past
  not_yet_valid,    ///< issued_at is in the future (beyond the allowed clock skew)
  schema,           ///< payload or config violates its schema (errors carry JSON paths)
  forbidden,        ///< tries to change what the cloud may not change
  locked,           ///< config locked on site (`pms-agent config lock`)
  apply_failed,     ///< staged apply failed (port in use, unreachable endpoint...); rolled back
  unknown_command,  ///< command name not known to this agent
  bad_args,         ///< command arguments invalid
  failed,           ///< command accepted but failed while running
};

/// "malformed", "bad_signature", ... (stable).
std::string_view rejectReasonName(RejectReason reason);

/// One problem at a JSON path (paths are relative to the payload, e.g. "config.adapters[0].listen").
struct PathError {
  std::string path;
  std::string message;
};

/// A refusal: the reason, a sentence for people, and the individual path errors (schema).
struct Rejection {
  RejectReason reason = RejectReason::malformed;
  std::string message;
  std::vector<PathError> errors;
};

/// Size limits for documents (outside input).
struct DocumentLimits {
  size_t max_envelope_bytes = 1u << 20;
  size_t max_depth = 32;
  /// Clock skew tolerated for issued_at in the future.
  int64_t max_skew_ms = 5 * 60 * 1000;
};

/// Lower-case hex of the first 8 bytes of SHA-256 over a raw Ed25519 public key.
std::string keyFingerprint(std::string_view raw_public_key);

/// The Ed25519 public keys this agent accepts (`cloud.config_signing_key`). Immutable after
/// loading; safe to share between threads.
class SigningKeys {
 public:
  SigningKeys();
  ~SigningKeys();
  SigningKeys(SigningKeys&&) noexcept;
  SigningKeys& operator=(SigningKeys&&) noexcept;

  /// Loads PEM public keys (SubjectPublicKeyInfo, "BEGIN PUBLIC KEY") from files. Errors:
  /// Errc::io (unreadable file), Errc::invalid_input (not a PEM public key, not Ed25519), with
  /// the file name.
  static Result<SigningKeys> load(const std::vector<std::filesystem::path>& files);
  /// Adds one PEM public key from memory; returns its key id. Errors as load().
  Result<std::string> addPem(std::string_view pem, std::string_view origin = "key");

  bool empty() const;
  /// The key ids, in load order.
  std::vector<std::string> ids() const;
  bool has(std::string_view key_id) const;
  /// True if `signature` is a valid Ed25519 signature of `message` by key `key_id`.
  bool verify(std::string_view key_id, std::string_view message, std::string_view signature) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// An Ed25519 private key for signing (the cloud side: pms-cloud-sim and tests).
class SigningKey {
 public:
  SigningKey();
  ~SigningKey();
  SigningKey(SigningKey&&) noexcept;
  SigningKey& operator=(SigningKey&&) noexcept;

  /// A fresh random key pair.
  static Result<SigningKey> generate();
  /// From a PEM private key ("BEGIN PRIVATE KEY"). Errors: Errc::invalid_input.
  static Result<SigningKey> fromPem(std::string_view pem);
  static Result<SigningKey> loadFile(const std::filesystem::path& file);

  std::string privatePem() const;
  std::string publicPem() const;
  std::string keyId() const;
  /// The 64-byte Ed25519 signature of `message`.
  std::string sign(std::string_view message) const;
  /// The envelope JSON for `payload` signed with this key (key_id = keyId() unless given).
  std::string envelope(std::string_view payload, std::string_view key_id_override = {}) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Standard base64 with padding (RFC 4648 §4).
std::string base64Encode(std::string_view data);
/// Strict decoding: standard alphabet, length a multiple of 4, correct padding, no whitespace.
std::optional<std::string> base64Decode(std::string_view text);

/// A verified config document (the payload of P/config/set).
struct ConfigDocument {
  std::string key_id;
  std::string agent_id;
  int64_t version = 0;
  int64_t issued_at_ms = 0;
  int64_t expires_at_ms = 0;
  json::Value config;  ///< the parts of the configuration the cloud sets (not yet validated)
};

/// A verified command (the payload of P/cmd/{name}).
struct CommandDocument {
  std::string key_id;
  std::string agent_id;
  std::string id;
  int64_t issued_at_ms = 0;
  int64_t expires_at_ms = 0;
  std::string command;
  json::Value args = json::Value::object();
};

/// What opening a document found. `rejection` is empty when the document is authentic, for
/// this agent and currently valid. The document fields are filled as far as they could be
/// read, so a rejection can still name the version or command id it refers to.
template <class Doc>
struct Opened {
  Doc doc;
  bool authentic = false;  ///< the signature verified against a configured key
  std::optional<Rejection> rejection;
};

/// Opens a config document: envelope -> key id -> signature -> payload JSON and schema ->
/// agent_id -> validity window. Does not check the version against the last applied one, nor
/// the config contents (the caller does, with its state). Never throws.
Opened<ConfigDocument> openConfigDocument(std::string_view text, const SigningKeys& keys,
                                          std::string_view agent_id, int64_t now_ms,
                                          const DocumentLimits& limits = {});

/// Opens a command; `topic_name` is the {name} level of P/cmd/{name} and must equal the
/// payload's `command`. Same checks as openConfigDocument. Never throws.
Opened<CommandDocument> openCommandDocument(std::string_view text, const SigningKeys& keys,
                                            std::string_view agent_id, std::string_view topic_name,
                                            int64_t now_ms, const DocumentLimits& limits = {});

/// Verifies the envelope (key id, signature) and gives the payload bytes as signed; the payload
/// is the caller's to check (write-back requests: adapters::write::parseWriteRequest). Rejection
/// reasons malformed, bad_signature, unknown_key. Never throws.
Opened<std::string> openSignedPayload(std::string_view text, const SigningKeys& keys,
                                      const DocumentLimits& limits = {});

/// The payload JSON of a config document (for the cloud side and tests).
std::string makeConfigPayload(std::string_view agent_id, int64_t version, int64_t issued_at_ms,
                              int64_t expires_at_ms, const json::Value& config);
/// The payload JSON of a command.
std::string makeCommandPayload(std::string_view agent_id, std::string_view id,
                               int64_t issued_at_ms, int64_t expires_at_ms,
                               std::string_view command, const json::Value& args);

}  // namespace psa::agent
