#include "psa/agent/signed_document.h"

#include <gtest/gtest.h>

#include "psa/store/clock.h"
#include "test_support.h"

namespace psa::agent {
namespace {

// A fixed key (openssl genpkey -algorithm ED25519) and its fingerprint computed independently:
//   openssl pkey -in k -pubout -outform DER | tail -c 32 | sha256sum | cut -c1-16
constexpr const char* kPrivatePem =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIEpwTkqX6pxYndPPbc7lyHrEtjwsnMOyQqyo4Y9t6Om3\n"
    "-----END PRIVATE KEY-----\n";
constexpr const char* kPublicPem =
    "-----BEGIN PUBLIC KEY-----\n"
    "MCowBQYDK2VwAyEAdWHw0mjEfi9MN2eJ2c0gO0mJo6u5KRXRKYhgYf2XXCg=\n"
    "-----END PUBLIC KEY-----\n";
constexpr const char* kKeyId = "f9904ea8f11c6361";
constexpr const char* kRsaPublicPem =
    "-----BEGIN PUBLIC KEY-----\n"
    "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDZAkjZq50EyO5USlQ1V87VIFEM\n"
    "WKJDDOo/uOH/KGLJErTnkddt3/Ap8/UkSKOg5WLio0V43pcpHemvnOON49nSMjtt\n"
    "i/2B/7jDgyXD4csjtun5DshthIoCY9l9km4ZpLrP1aENs7x4vgLMpt3FzGtaHxXa\n"
    "vCpfVCKWkz100lPnpQIDAQAB\n"
    "-----END PUBLIC KEY-----\n";

constexpr int64_t kNow = 1795000000000;  // 2026-11-18

std::string unhex(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

SigningKey fixedKey() { return std::move(SigningKey::fromPem(kPrivatePem)).value(); }

SigningKeys fixedKeys() {
  SigningKeys keys;
  EXPECT_TRUE(keys.addPem(kPublicPem).ok());
  return keys;
}

json::Value config(std::string_view text) { return *json::parse(text); }

std::string configDoc(const SigningKey& key, int64_t version, int64_t issued, int64_t expires,
                      const std::string& agent = "p1") {
  return key.envelope(makeConfigPayload(agent, version, issued, expires, config(R"({"adapters":[]})")));
}

TEST(Base64, RoundTripsAndDecodesStrictly) {
  for (const std::string& s : std::vector<std::string>{"", "f", "fo", "foo", "foob", "fooba", "foobar", std::string("\0\xff\x10", 3)}) {
    auto back = base64Decode(base64Encode(s));
    ASSERT_TRUE(back.has_value()) << s;
    EXPECT_EQ(*back, s);
  }
  EXPECT_EQ(base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64Encode("fo"), "Zm8=");
  EXPECT_FALSE(base64Decode("Zm8").has_value());        // not a multiple of 4
  EXPECT_FALSE(base64Decode("Zm8=Zm8=").has_value());   // padding in the middle
  EXPECT_FALSE(base64Decode("Zm9=").has_value());       // non-canonical: dropped bits set
  EXPECT_FALSE(base64Decode("Zm 8").has_value());       // whitespace
  EXPECT_FALSE(base64Decode("Zm-_").has_value());       // URL alphabet
  EXPECT_FALSE(base64Decode("Z===").has_value());
  EXPECT_FALSE(base64Decode("=Zm8").has_value());
}

TEST(SigningKeys, KeyIdIsTheFingerprintOfTheRawPublicKey) {
  SigningKeys keys;
  auto id = keys.addPem(kPublicPem);
  ASSERT_TRUE(id.ok()) << id.error().message;
  EXPECT_EQ(*id, kKeyId);
  EXPECT_EQ(fixedKey().keyId(), kKeyId);
  EXPECT_TRUE(keys.has(kKeyId));
  EXPECT_EQ(keys.ids(), std::vector<std::string>{kKeyId});
}

TEST(SigningKeys, RefusesWhatIsNotAnEd25519PublicKey) {
  SigningKeys keys;
  auto rsa = keys.addPem(kRsaPublicPem, "rsa.pem");
  ASSERT_FALSE(rsa.ok());
  EXPECT_EQ(rsa.error().code, make_error_code(Errc::invalid_input));
  EXPECT_EQ(rsa.error().message, "rsa.pem is not an Ed25519 public key");
  auto junk = keys.addPem("hello", "junk.pem");
  ASSERT_FALSE(junk.ok());
  EXPECT_EQ(junk.error().message, "junk.pem is not a PEM public key (expected \"BEGIN PUBLIC KEY\")");
  auto priv = keys.addPem(kPrivatePem, "priv.pem");
  EXPECT_FALSE(priv.ok());
  auto missing = SigningKeys::load({"/nonexistent/key.pem"});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, make_error_code(Errc::io));
  EXPECT_EQ(missing.error().message, "cannot read /nonexistent/key.pem");
  EXPECT_TRUE(keys.empty());
}

TEST(SigningKey, MatchesRfc8032TestVector1) {
  // RFC 8032 §7.1 TEST 1: pure Ed25519 over the empty message.
  const std::string der = unhex("302e020100300506032b657004220420") +
                          unhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
  const std::string pem = "-----BEGIN PRIVATE KEY-----\n" + base64Encode(der) + "\n-----END PRIVATE KEY-----\n";
  auto key = SigningKey::fromPem(pem);
  ASSERT_TRUE(key.ok()) << key.error().message;
  EXPECT_EQ(key->sign(""), unhex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"));
  SigningKeys keys;
  auto id = keys.addPem(key->publicPem());
  ASSERT_TRUE(id.ok());
  EXPECT_TRUE(keys.verify(*id, "", key->sign("")));
  EXPECT_FALSE(keys.verify(*id, "x", key->sign("")));
  EXPECT_FALSE(keys.verify("0000000000000000", "", key->sign("")));
}

TEST(ConfigDocument, AcceptsAnAuthenticCurrentDocument) {
  const std::string doc = configDoc(fixedKey(), 17, kNow - 1000, kNow + 60000);
  auto opened = openConfigDocument(doc, fixedKeys(), "p1", kNow);
  ASSERT_FALSE(opened.rejection.has_value()) << opened.rejection->message;
  EXPECT_TRUE(opened.authentic);
  EXPECT_EQ(opened.doc.version, 17);
  EXPECT_EQ(opened.doc.key_id, kKeyId);
  EXPECT_EQ(opened.doc.agent_id, "p1");
  EXPECT_EQ(opened.doc.issued_at_ms, kNow - 1000);
  EXPECT_EQ(opened.doc.expires_at_ms, kNow + 60000);
  EXPECT_TRUE(opened.doc.config.find("adapters") != nullptr);
}

struct Case {
  std::string name;
  std::string doc;
  RejectReason reason;
  std::string message;
};

// The cloud rotates its signing key: while both keys are configured, documents signed with
// either verify; a key that is not configured is refused by its id.
TEST(ConfigDocument, EitherConfiguredKeyVerifiesDuringARotation) {
  psa::test::TempDir dir("psa-signing");
  const SigningKey old_key = fixedKey();
  const SigningKey new_key = std::move(SigningKey::generate()).value();
  const SigningKey stranger = std::move(SigningKey::generate()).value();
  psa::test::writeFile(dir / "old.pub.pem", kPublicPem);
  psa::test::writeFile(dir / "new.pub.pem", new_key.publicPem());
  auto keys = SigningKeys::load({dir / "old.pub.pem", dir / "new.pub.pem"});
  ASSERT_TRUE(keys.ok()) << keys.error().message;
  EXPECT_EQ(keys->ids().size(), 2u);

  auto by_old = openConfigDocument(configDoc(old_key, 5, kNow, kNow + 60000), *keys, "p1", kNow);
  EXPECT_FALSE(by_old.rejection.has_value()) << by_old.rejection->message;
  EXPECT_EQ(by_old.doc.key_id, kKeyId);
  auto by_new = openConfigDocument(configDoc(new_key, 6, kNow, kNow + 60000), *keys, "p1", kNow);
  EXPECT_FALSE(by_new.rejection.has_value()) << by_new.rejection->message;
  EXPECT_EQ(by_new.doc.key_id, new_key.keyId());

  auto by_stranger = openConfigDocument(configDoc(stranger, 7, kNow, kNow + 60000), *keys, "p1", kNow);
  ASSERT_TRUE(by_stranger.rejection.has_value());
  EXPECT_EQ(by_stranger.rejection->reason, RejectReason::unknown_key);
  EXPECT_FALSE(by_stranger.authentic);
  // Signed by the new key but labelled with the old key's id: the old key does not verify it.
  auto relabelled = openConfigDocument(
      new_key.envelope(makeConfigPayload("p1", 8, kNow, kNow + 60000, config(R"({"adapters":[]})")), kKeyId),
      *keys, "p1", kNow);
  ASSERT_TRUE(relabelled.rejection.has_value());
  EXPECT_EQ(relabelled.rejection->reason, RejectReason::bad_signature);
}

TEST(ConfigDocument, EveryRejectionHasItsReasonAndMessage) {
  const SigningKey key = fixedKey();
  const SigningKey other = std::move(SigningKey::generate()).value();
  const std::string good = configDoc(key, 3, kNow, kNow + 60000);
  json::Value env = *json::parse(good);
  auto with = [&](const std::string& k, json::Value v) {
    json::Value e = env;
    e.set(k, std::move(v));
    return json::serialize(e);
  };
  auto without = [&](const std::string& k) {
    json::Value e = env;
    e.erase(k);
    return json::serialize(e);
  };
  const std::string other_payload =
      json::parse(configDoc(key, 4, kNow, kNow + 60000))->find("payload")->asString();
  std::vector<Case> cases = {
      {"not json", "{", RejectReason::malformed, "envelope is not valid JSON: line 1 column 2: unterminated object, expected a key"},
      {"not object", "[1]", RejectReason::malformed, "envelope is not a JSON object"},
      {"duplicate key", R"({"payload":"e30=","payload":"e30=","sig":"x","key_id":"k"})", RejectReason::malformed, ""},
      {"no payload", without("payload"), RejectReason::malformed, "envelope has no \"payload\" string"},
      {"no sig", without("sig"), RejectReason::bad_signature, "envelope has no \"sig\" (unsigned document)"},
      {"no key id", without("key_id"), RejectReason::unknown_key, "envelope has no \"key_id\""},
      {"unknown key id", with("key_id", json::Value::string("abcdef0123456789")), RejectReason::unknown_key,
       std::string("key_id \"abcdef0123456789\" is not a configured signing key (configured: ") + kKeyId + ")"},
      {"payload not base64", with("payload", json::Value::string("%%%%")), RejectReason::malformed,
       "\"payload\" is not valid base64"},
      {"sig not 64 bytes", with("sig", json::Value::string("AAAA")), RejectReason::bad_signature,
       "\"sig\" is not a base64 Ed25519 signature (64 bytes)"},
      {"tampered", with("payload", json::Value::string(other_payload)), RejectReason::bad_signature,
       std::string("signature does not verify with key ") + kKeyId + " (tampered or wrong key)"},
      {"other key", other.envelope(makeConfigPayload("p1", 3, kNow, kNow + 60000, config("{}")), kKeyId),
       RejectReason::bad_signature, std::string("signature does not verify with key ") + kKeyId + " (tampered or wrong key)"},
      {"payload not json", key.envelope("{\"a\":"), RejectReason::malformed, ""},
      {"wrong agent", configDoc(key, 3, kNow, kNow + 60000, "p2"), RejectReason::wrong_agent,
       "document is for agent \"p2\", this is \"p1\""},
      {"expired", configDoc(key, 3, kNow - 120000, kNow - 60000), RejectReason::expired, ""},
      {"not yet valid", configDoc(key, 3, kNow + 6 * 60000, kNow + 3600000), RejectReason::not_yet_valid, ""},
      {"window inverted", configDoc(key, 3, kNow, kNow - 1), RejectReason::schema,
       "expires_at must be later than issued_at"},
      {"bad version", key.envelope(R"({"agent_id":"p1","version":0,"issued_at":"2026-11-18T00:00:00Z","expires_at":"2999-01-01T00:00:00Z","config":{}})"),
       RejectReason::schema, "config document violates its schema: 1 problem (version: value 0 out of range, expected 1..9007199254740991)"},
      {"bad time", key.envelope(R"({"agent_id":"p1","version":1,"issued_at":"yesterday","expires_at":"2999-01-01T00:00:00Z","config":{}})"),
       RejectReason::schema, "config document violates its schema: 1 problem (issued_at: expected an RFC 3339 time, e.g. 2026-11-25T20:44:20Z)"},
  };
  const SigningKeys keys = fixedKeys();
  for (const Case& c : cases) {
    auto opened = openConfigDocument(c.doc, keys, "p1", kNow);
    ASSERT_TRUE(opened.rejection.has_value()) << c.name;
    EXPECT_EQ(rejectReasonName(opened.rejection->reason), rejectReasonName(c.reason)) << c.name;
    if (!c.message.empty()) {
      EXPECT_EQ(opened.rejection->message, c.message) << c.name;
    }
  }
  // A clock up to 5 minutes behind the cloud is tolerated.
  EXPECT_FALSE(openConfigDocument(configDoc(key, 3, kNow + 4 * 60000, kNow + 3600000), keys, "p1", kNow)
                   .rejection.has_value());
  // The version and agent are known even when the document is refused later.
  auto wrong = openConfigDocument(configDoc(key, 9, kNow, kNow + 60000, "p2"), keys, "p1", kNow);
  EXPECT_EQ(wrong.doc.version, 9);
  EXPECT_TRUE(wrong.authentic);
}

TEST(ConfigDocument, SchemaErrorsCarryEveryPath) {
  const SigningKey key = fixedKey();
  auto opened = openConfigDocument(
      key.envelope(R"({"agent_id":"p1","issued_at":"2026-11-18T00:00:00Z","expires_at":5,"config":[],"extra":true})"),
      fixedKeys(), "p1", kNow);
  ASSERT_TRUE(opened.rejection.has_value());
  EXPECT_EQ(opened.rejection->reason, RejectReason::schema);
  std::vector<std::string> paths;
  for (const auto& e : opened.rejection->errors) {
    paths.push_back(e.path);
  }
  std::sort(paths.begin(), paths.end());
  EXPECT_EQ(paths, (std::vector<std::string>{"config", "expires_at", "extra", "version"}));
}

TEST(ConfigDocument, RefusesOversizedEnvelopes) {
  DocumentLimits limits;
  limits.max_envelope_bytes = 100;
  auto opened = openConfigDocument(std::string(101, ' '), fixedKeys(), "p1", kNow, limits);
  ASSERT_TRUE(opened.rejection.has_value());
  EXPECT_EQ(opened.rejection->message, "document of 101 bytes exceeds the limit of 100");
}

TEST(CommandDocument, ChecksTopicIdAndArgs) {
  const SigningKey key = fixedKey();
  const SigningKeys keys = fixedKeys();
  auto ok = openCommandDocument(
      key.envelope(makeCommandPayload("p1", "c-1", kNow, kNow + 1000, "restart-adapter",
                                      config(R"({"name":"adt"})"))),
      keys, "p1", "restart-adapter", kNow);
  ASSERT_FALSE(ok.rejection.has_value()) << ok.rejection->message;
  EXPECT_EQ(ok.doc.id, "c-1");
  EXPECT_EQ(ok.doc.args.getString("name"), "adt");

  auto mismatch = openCommandDocument(
      key.envelope(makeCommandPayload("p1", "c-2", kNow, kNow + 1000, "ping", config("{}"))), keys, "p1",
      "rotate-key", kNow);
  ASSERT_TRUE(mismatch.rejection.has_value());
  EXPECT_EQ(mismatch.rejection->reason, RejectReason::schema);
  EXPECT_EQ(mismatch.rejection->message, "command \"ping\" does not match the topic's \"rotate-key\"");
  EXPECT_EQ(mismatch.doc.id, "c-2");

  auto bad_id = openCommandDocument(
      key.envelope(makeCommandPayload("p1", "c 3/x", kNow, kNow + 1000, "ping", config("{}"))), keys, "p1",
      "ping", kNow);
  ASSERT_TRUE(bad_id.rejection.has_value());
  EXPECT_EQ(bad_id.rejection->errors.at(0).path, "id");
  EXPECT_TRUE(bad_id.doc.id.empty());

  auto args_not_object = openCommandDocument(
      key.envelope(R"({"agent_id":"p1","id":"c4","issued_at":"2026-11-18T00:00:00Z","expires_at":"2999-01-01T00:00:00Z","command":"ping","args":[]})"),
      keys, "p1", "ping", kNow);
  ASSERT_TRUE(args_not_object.rejection.has_value());
  EXPECT_EQ(args_not_object.rejection->errors.at(0).path, "args");
}

}  // namespace
}  // namespace psa::agent
