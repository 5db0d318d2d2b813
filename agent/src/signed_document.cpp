#include "psa/agent/signed_document.h"

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <array>
#include <fstream>
#include <sstream>

#include "psa/cloudlink/envelope.h"
#include "psa/store/clock.h"
#include "psa/store/digest.h"
#include "psa/store/schema.h"

namespace psa::agent {
namespace {

constexpr size_t kEd25519KeyBytes = 32;
constexpr size_t kEd25519SigBytes = 64;
constexpr size_t kMaxIdLength = 128;

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

std::string rawPublic(EVP_PKEY* key) {
  std::string raw(kEd25519KeyBytes, '\0');
  size_t len = raw.size();
  if (EVP_PKEY_get_raw_public_key(key, reinterpret_cast<unsigned char*>(raw.data()), &len) != 1 ||
      len != kEd25519KeyBytes) {
    return {};
  }
  return raw;
}

std::string bioString(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  return n > 0 ? std::string(data, static_cast<size_t>(n)) : std::string();
}

Result<std::string> readSmallFile(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return Error(Errc::io, "cannot read " + file.string());
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  if (text.size() > 64 * 1024) {
    return Error(Errc::invalid_input, file.string() + " is too large for a PEM key");
  }
  return text;
}

Rejection reject(RejectReason reason, std::string message) {
  Rejection r;
  r.reason = reason;
  r.message = std::move(message);
  return r;
}

std::optional<std::string> checkTime(const json::Value& v) {
  int64_t ms = 0;
  if (!parseRfc3339(v.asString(), ms)) {
    return "expected an RFC 3339 time, e.g. 2026-11-25T20:44:20Z";
  }
  return std::nullopt;
}

std::optional<std::string> checkId(const json::Value& v) {
  const std::string& s = v.asString();
  if (s.empty() || s.size() > kMaxIdLength) {
    return "expected 1-" + std::to_string(kMaxIdLength) + " characters";
  }
  for (char c : s) {
    const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    c == '-' || c == '_' || c == '.' || c == ':';
    if (!ok) {
      return "expected only A-Z, a-z, 0-9, '-', '_', '.', ':'";
    }
  }
  return std::nullopt;
}

std::shared_ptr<schema::ObjectSchema> openObject() {
  auto s = std::make_shared<schema::ObjectSchema>();
  s->allow_unknown = true;
  return s;
}

const schema::ObjectSchema& configPayloadSchema() {
  static const schema::ObjectSchema s = [] {
    schema::ObjectSchema o;
    using schema::Field;
    o.fields = {
        Field::str("agent_id").req().describe("the agent this document is for"),
        Field::integer("version").req().range(1, 9007199254740991.0),
        Field::str("issued_at").req().verify(checkTime),
        Field::str("expires_at").req().verify(checkTime),
        Field::obj("config", openObject()).req(),
    };
    return o;
  }();
  return s;
}

const schema::ObjectSchema& commandPayloadSchema() {
  static const schema::ObjectSchema s = [] {
    schema::ObjectSchema o;
    using schema::Field;
    o.fields = {
        Field::str("agent_id").req().describe("the agent this command is for"),
        Field::str("id").req().verify(checkId),
        Field::str("issued_at").req().verify(checkTime),
        Field::str("expires_at").req().verify(checkTime),
        Field::str("command").req().range(1, 64),
        Field::obj("args", openObject()),
    };
    return o;
  }();
  return s;
}

// The envelope -> verified payload bytes. Fills `key_id` and `authentic`.
std::optional<Rejection> verifyEnvelope(std::string_view text, const SigningKeys& keys,
                                        const DocumentLimits& limits, std::string& key_id,
                                        bool& authentic, std::string& payload_bytes) {
  if (text.size() > limits.max_envelope_bytes) {
    return reject(RejectReason::malformed, "document of " + std::to_string(text.size()) +
                                               " bytes exceeds the limit of " +
                                               std::to_string(limits.max_envelope_bytes));
  }
  json::Limits jl;
  jl.max_bytes = limits.max_envelope_bytes;
  jl.max_depth = 4;
  jl.allow_duplicate_keys = false;
  auto env = json::parse(text, jl);
  if (!env) {
    return reject(RejectReason::malformed, "envelope is not valid JSON: " + env.error().message);
  }
  if (!env->isObject()) {
    return reject(RejectReason::malformed, "envelope is not a JSON object");
  }
  const json::Value* p = env->find("payload");
  if (p == nullptr || !p->isString()) {
    return reject(RejectReason::malformed, "envelope has no \"payload\" string");
  }
  const json::Value* sig = env->find("sig");
  if (sig == nullptr || !sig->isString() || sig->asString().empty()) {
    return reject(RejectReason::bad_signature, "envelope has no \"sig\" (unsigned document)");
  }
  const json::Value* kid = env->find("key_id");
  if (kid == nullptr || !kid->isString() || kid->asString().empty()) {
    return reject(RejectReason::unknown_key, "envelope has no \"key_id\"");
  }
  key_id = kid->asString().substr(0, 64);
  if (keys.empty()) {
    return reject(RejectReason::unknown_key,
                  "no cloud.config_signing_key is configured: remote documents cannot be verified");
  }
  if (!keys.has(kid->asString())) {
    std::string known;
    for (const auto& id : keys.ids()) {
      known += (known.empty() ? "" : ", ") + id;
    }
    return reject(RejectReason::unknown_key,
                  "key_id \"" + key_id + "\" is not a configured signing key (configured: " + known + ")");
  }
  auto bytes = base64Decode(p->asString());
  if (!bytes) {
    return reject(RejectReason::malformed, "\"payload\" is not valid base64");
  }
  auto signature = base64Decode(sig->asString());
  if (!signature || signature->size() != kEd25519SigBytes) {
    return reject(RejectReason::bad_signature, "\"sig\" is not a base64 Ed25519 signature (64 bytes)");
  }
  if (!keys.verify(kid->asString(), *bytes, *signature)) {
    return reject(RejectReason::bad_signature,
                  "signature does not verify with key " + key_id + " (tampered or wrong key)");
  }
  authentic = true;
  payload_bytes = std::move(*bytes);
  return std::nullopt;
}

// The envelope -> verified payload JSON. Fills `key_id` and `authentic`.
std::optional<Rejection> openEnvelope(std::string_view text, const SigningKeys& keys,
                                      const DocumentLimits& limits, std::string& key_id,
                                      bool& authentic, json::Value& payload) {
  std::string bytes;
  if (auto r = verifyEnvelope(text, keys, limits, key_id, authentic, bytes)) {
    return r;
  }
  json::Limits pl;
  pl.max_bytes = limits.max_envelope_bytes;
  pl.max_depth = limits.max_depth;
  pl.allow_duplicate_keys = false;
  auto parsed = json::parse(bytes, pl);
  if (!parsed) {
    return reject(RejectReason::malformed, "payload is not valid JSON: " + parsed.error().message);
  }
  payload = std::move(parsed).value();
  return std::nullopt;
}

std::optional<Rejection> schemaRejection(const json::Value& payload, const schema::ObjectSchema& s,
                                         const char* what) {
  std::vector<schema::Issue> issues;
  schema::validate(payload, s, "", issues);
  if (issues.empty()) {
    return std::nullopt;
  }
  Rejection r = reject(RejectReason::schema, std::string(what) + " violates its schema: " +
                                                 std::to_string(issues.size()) + " problem" +
                                                 (issues.size() == 1 ? "" : "s"));
  for (auto& i : issues) {
    r.errors.push_back(PathError{i.path, i.message});
  }
  r.message += " (" + r.errors.front().path + ": " + r.errors.front().message + ")";
  return r;
}

std::optional<Rejection> checkWindow(int64_t issued, int64_t expires, int64_t now,
                                     const DocumentLimits& limits) {
  if (expires <= issued) {
    Rejection r = reject(RejectReason::schema, "expires_at must be later than issued_at");
    r.errors.push_back(PathError{"expires_at", "must be later than issued_at"});
    return r;
  }
  if (now >= expires) {
    return reject(RejectReason::expired,
                  "document expired at " + formatRfc3339(expires) + " (now " + formatRfc3339(now) + ")");
  }
  if (issued > now + limits.max_skew_ms) {
    return reject(RejectReason::not_yet_valid, "document is issued at " + formatRfc3339(issued) +
                                                   ", in the future (now " + formatRfc3339(now) + ")");
  }
  return std::nullopt;
}

int64_t timeOf(const json::Value& payload, std::string_view key) {
  int64_t ms = 0;
  parseRfc3339(payload.getString(key), ms);
  return ms;
}

// The checks every signed document shares after its schema: meant for this agent, then
// issued/expires read into `doc` and inside the allowed window. `what` names it in the message.
template <class Doc>
std::optional<Rejection> checkAddressee(const json::Value& payload, std::string_view what,
                                        std::string_view agent_id, int64_t now_ms,
                                        const DocumentLimits& limits, Doc& doc) {
  if (doc.agent_id != agent_id) {
    return reject(RejectReason::wrong_agent, std::string(what) + " is for agent \"" + doc.agent_id +
                                                 "\", this is \"" + std::string(agent_id) + "\"");
  }
  doc.issued_at_ms = timeOf(payload, "issued_at");
  doc.expires_at_ms = timeOf(payload, "expires_at");
  return checkWindow(doc.issued_at_ms, doc.expires_at_ms, now_ms, limits);
}

}  // namespace

std::string_view rejectReasonName(RejectReason reason) {
  switch (reason) {
    case RejectReason::malformed: return "malformed";
    case RejectReason::bad_signature: return "bad_signature";
    case RejectReason::unknown_key: return "unknown_key";
    case RejectReason::wrong_agent: return "wrong_agent";
    case RejectReason::replay: return "replay";
    case RejectReason::expired: return "expired";
    case RejectReason::not_yet_valid: return "not_yet_valid";
    case RejectReason::schema: return "schema";
    case RejectReason::forbidden: return "forbidden";
    case RejectReason::locked: return "locked";
    case RejectReason::apply_failed: return "apply_failed";
    case RejectReason::unknown_command: return "unknown_command";
    case RejectReason::bad_args: return "bad_args";
    case RejectReason::failed: return "failed";
  }
  return "unknown";
}

std::string keyFingerprint(std::string_view raw_public_key) {
  return psa::sha256Hex(raw_public_key).substr(0, 16);
}

// ------------------------------------------------------------------------------ base64

namespace {
constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int b64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}
}  // namespace

std::string base64Encode(std::string_view data) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    const uint32_t v = (static_cast<uint8_t>(data[i]) << 16) |
                       (static_cast<uint8_t>(data[i + 1]) << 8) | static_cast<uint8_t>(data[i + 2]);
    out.push_back(kB64[(v >> 18) & 63]);
    out.push_back(kB64[(v >> 12) & 63]);
    out.push_back(kB64[(v >> 6) & 63]);
    out.push_back(kB64[v & 63]);
  }
  const size_t rest = data.size() - i;
  if (rest == 1) {
    const uint32_t v = static_cast<uint8_t>(data[i]) << 16;
    out.push_back(kB64[(v >> 18) & 63]);
    out.push_back(kB64[(v >> 12) & 63]);
    out += "==";
  } else if (rest == 2) {
    const uint32_t v = (static_cast<uint8_t>(data[i]) << 16) | (static_cast<uint8_t>(data[i + 1]) << 8);
    out.push_back(kB64[(v >> 18) & 63]);
    out.push_back(kB64[(v >> 12) & 63]);
    out.push_back(kB64[(v >> 6) & 63]);
    out.push_back('=');
  }
  return out;
}

std::optional<std::string> base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) {
    return std::nullopt;
  }
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = text[i + static_cast<size_t>(k)];
      if (c == '=' && last && k >= 2) {
        v[k] = 0;
        ++pad;
        continue;
      }
      if (pad > 0) {
        return std::nullopt;  // data after padding
      }
      v[k] = b64Value(c);
      if (v[k] < 0) {
        return std::nullopt;
      }
    }
    const uint32_t n = (static_cast<uint32_t>(v[0]) << 18) | (static_cast<uint32_t>(v[1]) << 12) |
                       (static_cast<uint32_t>(v[2]) << 6) | static_cast<uint32_t>(v[3]);
    // Canonical encoding only: the bits dropped by padding must be zero.
    if ((pad == 1 && (n & 0xff) != 0) || (pad == 2 && (n & 0xffff) != 0)) {
      return std::nullopt;
    }
    out.push_back(static_cast<char>((n >> 16) & 0xff));
    if (pad < 2) {
      out.push_back(static_cast<char>((n >> 8) & 0xff));
    }
    if (pad < 1) {
      out.push_back(static_cast<char>(n & 0xff));
    }
  }
  return out;
}

// ------------------------------------------------------------------------------ SigningKeys

struct SigningKeys::Impl {
  struct Entry {
    std::string id;
    PkeyPtr key;
  };
  std::vector<Entry> keys;
};

SigningKeys::SigningKeys() : impl_(std::make_unique<Impl>()) {}
SigningKeys::~SigningKeys() = default;
SigningKeys::SigningKeys(SigningKeys&&) noexcept = default;
SigningKeys& SigningKeys::operator=(SigningKeys&&) noexcept = default;

Result<SigningKeys> SigningKeys::load(const std::vector<std::filesystem::path>& files) {
  SigningKeys keys;
  for (const auto& f : files) {
    auto text = readSmallFile(f);
    if (!text) {
      return std::move(text).error();
    }
    auto added = keys.addPem(*text, f.string());
    if (!added) {
      return std::move(added).error();
    }
  }
  return keys;
}

Result<std::string> SigningKeys::addPem(std::string_view pem, std::string_view origin) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) {
    return Error(Errc::internal, "BIO_new_mem_buf failed");
  }
  PkeyPtr key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (!key) {
    return Error(Errc::invalid_input,
                 std::string(origin) + " is not a PEM public key (expected \"BEGIN PUBLIC KEY\")");
  }
  if (EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_ED25519) {
    return Error(Errc::invalid_input, std::string(origin) + " is not an Ed25519 public key");
  }
  const std::string raw = rawPublic(key.get());
  if (raw.empty()) {
    return Error(Errc::invalid_input, std::string(origin) + ": cannot read the raw public key");
  }
  std::string id = keyFingerprint(raw);
  if (!has(id)) {
    impl_->keys.push_back(Impl::Entry{id, std::move(key)});
  }
  return id;
}

bool SigningKeys::empty() const { return impl_->keys.empty(); }

std::vector<std::string> SigningKeys::ids() const {
  std::vector<std::string> out;
  for (const auto& e : impl_->keys) {
    out.push_back(e.id);
  }
  return out;
}

bool SigningKeys::has(std::string_view key_id) const {
  for (const auto& e : impl_->keys) {
    if (e.id == key_id) {
      return true;
    }
  }
  return false;
}

bool SigningKeys::verify(std::string_view key_id, std::string_view message,
                         std::string_view signature) const {
  if (signature.size() != kEd25519SigBytes) {
    return false;
  }
  for (const auto& e : impl_->keys) {
    if (e.id != key_id) {
      continue;
    }
    MdCtxPtr ctx(EVP_MD_CTX_new());
    if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, e.key.get()) != 1) {
      return false;
    }
    return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                            signature.size(),
                            reinterpret_cast<const unsigned char*>(message.data()),
                            message.size()) == 1;
  }
  return false;
}

// ------------------------------------------------------------------------------ SigningKey

struct SigningKey::Impl {
  PkeyPtr key;
};

SigningKey::SigningKey() : impl_(std::make_unique<Impl>()) {}
SigningKey::~SigningKey() = default;
SigningKey::SigningKey(SigningKey&&) noexcept = default;
SigningKey& SigningKey::operator=(SigningKey&&) noexcept = default;

Result<SigningKey> SigningKey::generate() {
  SigningKey k;
  k.impl_->key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (!k.impl_->key) {
    return Error(Errc::internal, "Ed25519 key generation failed");
  }
  return k;
}

Result<SigningKey> SigningKey::fromPem(std::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) {
    return Error(Errc::internal, "BIO_new_mem_buf failed");
  }
  SigningKey k;
  k.impl_->key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!k.impl_->key) {
    return Error(Errc::invalid_input, "not a PEM private key (expected \"BEGIN PRIVATE KEY\")");
  }
  if (EVP_PKEY_get_base_id(k.impl_->key.get()) != EVP_PKEY_ED25519) {
    return Error(Errc::invalid_input, "not an Ed25519 private key");
  }
  return k;
}

Result<SigningKey> SigningKey::loadFile(const std::filesystem::path& file) {
  auto text = readSmallFile(file);
  if (!text) {
    return std::move(text).error();
  }
  auto k = fromPem(*text);
  if (!k) {
    return Error(Errc::invalid_input, file.string() + ": " + k.error().message);
  }
  return k;
}

std::string SigningKey::privatePem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || !impl_->key ||
      PEM_write_bio_PrivateKey(bio.get(), impl_->key.get(), nullptr, nullptr, 0, nullptr,
                               nullptr) != 1) {
    return {};
  }
  return bioString(bio.get());
}

std::string SigningKey::publicPem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || !impl_->key || PEM_write_bio_PUBKEY(bio.get(), impl_->key.get()) != 1) {
    return {};
  }
  return bioString(bio.get());
}

std::string SigningKey::keyId() const {
  return impl_->key ? keyFingerprint(rawPublic(impl_->key.get())) : std::string();
}

std::string SigningKey::sign(std::string_view message) const {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx || !impl_->key ||
      EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, impl_->key.get()) != 1) {
    return {};
  }
  std::string sig(kEd25519SigBytes, '\0');
  size_t len = sig.size();
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1) {
    return {};
  }
  sig.resize(len);
  return sig;
}

std::string SigningKey::envelope(std::string_view payload, std::string_view key_id_override) const {
  json::Value env = json::Value::object();
  env.set("payload", json::Value::string(base64Encode(payload)));
  env.set("sig", json::Value::string(base64Encode(sign(payload))));
  env.set("key_id", json::Value::string(key_id_override.empty() ? keyId()
                                                                : std::string(key_id_override)));
  return json::serialize(env);
}

// ------------------------------------------------------------------------------ documents

Opened<std::string> openSignedPayload(std::string_view text, const SigningKeys& keys,
                                      const DocumentLimits& limits) {
  Opened<std::string> out;
  std::string key_id;
  out.rejection = verifyEnvelope(text, keys, limits, key_id, out.authentic, out.doc);
  return out;
}

Opened<ConfigDocument> openConfigDocument(std::string_view text, const SigningKeys& keys,
                                          std::string_view agent_id, int64_t now_ms,
                                          const DocumentLimits& limits) {
  Opened<ConfigDocument> out;
  json::Value payload;
  out.rejection = openEnvelope(text, keys, limits, out.doc.key_id, out.authentic, payload);
  if (out.rejection) {
    return out;
  }
  if (payload.isObject()) {
    if (const json::Value* v = payload.find("version"); v != nullptr && v->isInteger()) {
      out.doc.version = v->asInt();
    }
    out.doc.agent_id = payload.getString("agent_id").substr(0, 128);
  }
  if ((out.rejection = schemaRejection(payload, configPayloadSchema(), "config document"))) {
    return out;
  }
  if ((out.rejection = checkAddressee(payload, "document", agent_id, now_ms, limits, out.doc))) {
    return out;
  }
  out.doc.config = std::move(*payload.find("config"));
  return out;
}

Opened<CommandDocument> openCommandDocument(std::string_view text, const SigningKeys& keys,
                                            std::string_view agent_id, std::string_view topic_name,
                                            int64_t now_ms, const DocumentLimits& limits) {
  Opened<CommandDocument> out;
  json::Value payload;
  out.doc.command = std::string(topic_name.substr(0, 64));
  out.rejection = openEnvelope(text, keys, limits, out.doc.key_id, out.authentic, payload);
  if (out.rejection) {
    return out;
  }
  if (payload.isObject()) {
    if (const json::Value* idv = payload.find("id");
        idv != nullptr && idv->isString() && !checkId(*idv)) {
      out.doc.id = idv->asString();
    }
    out.doc.agent_id = payload.getString("agent_id").substr(0, 128);
  }
  if ((out.rejection = schemaRejection(payload, commandPayloadSchema(), "command"))) {
    return out;
  }
  if (payload.getString("command") != topic_name) {
    out.rejection = reject(RejectReason::schema, "command \"" + payload.getString("command").substr(0, 64) +
                                                     "\" does not match the topic's \"" +
                                                     std::string(topic_name) + "\"");
    out.rejection->errors.push_back(PathError{"command", "does not match the topic"});
    return out;
  }
  if ((out.rejection = checkAddressee(payload, "command", agent_id, now_ms, limits, out.doc))) {
    return out;
  }
  if (const json::Value* a = payload.find("args")) {
    out.doc.args = *a;
  }
  return out;
}

std::string makeConfigPayload(std::string_view agent_id, int64_t version, int64_t issued_at_ms,
                              int64_t expires_at_ms, const json::Value& config) {
  json::Value p = json::Value::object();
  p.set("agent_id", json::Value::string(std::string(agent_id)));
  p.set("version", json::Value::integer(version));
  p.set("issued_at", json::Value::string(formatRfc3339(issued_at_ms)));
  p.set("expires_at", json::Value::string(formatRfc3339(expires_at_ms)));
  p.set("config", config);
  return json::serialize(p);
}

std::string makeCommandPayload(std::string_view agent_id, std::string_view id,
                               int64_t issued_at_ms, int64_t expires_at_ms,
                               std::string_view command, const json::Value& args) {
  json::Value p = json::Value::object();
  p.set("agent_id", json::Value::string(std::string(agent_id)));
  p.set("id", json::Value::string(std::string(id)));
  p.set("issued_at", json::Value::string(formatRfc3339(issued_at_ms)));
  p.set("expires_at", json::Value::string(formatRfc3339(expires_at_ms)));
  p.set("command", json::Value::string(std::string(command)));
  p.set("args", args);
  return json::serialize(p);
}

}  // namespace psa::agent
