// libFuzzer target: signed remote documents (P/config/set, P/cmd/{name}) on arbitrary bytes.
// Input starting with 'S': the rest is a payload, signed here with the fixed key, so the fuzzer
// also reaches the payload schema, the time checks and the config overlay checks behind the
// signature. Anything else: the whole input is the envelope.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "psa/agent/remote_config.h"
#include "psa/agent/signed_document.h"

namespace {

constexpr const char* kPrivatePem =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIEpwTkqX6pxYndPPbc7lyHrEtjwsnMOyQqyo4Y9t6Om3\n"
    "-----END PRIVATE KEY-----\n";
constexpr const char* kPublicPem =
    "-----BEGIN PUBLIC KEY-----\n"
    "MCowBQYDK2VwAyEAdWHw0mjEfi9MN2eJ2c0gO0mJo6u5KRXRKYhgYf2XXCg=\n"
    "-----END PUBLIC KEY-----\n";
constexpr int64_t kNow = 1795000000000;

struct Fixture {
  psa::agent::SigningKey key = std::move(psa::agent::SigningKey::fromPem(kPrivatePem)).value();
  psa::agent::SigningKeys keys;
  psa::json::Value running = *psa::json::parse(
      R"({"agent":{"id":"p1","tenant":"t","state_dir":"/s","log_level":"info"},)"
      R"("cloud":{"url":"mqtts://c","ca_file":"ca","cert_file":"c","key_file":"k","status_interval_s":300},)"
      R"("store":{"max_bytes":1048576},"control":{"socket":"/s/c.sock"},"adapters":[]})");
  Fixture() { (void)keys.addPem(kPublicPem); }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Fixture f;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string envelope;
  if (!input.empty() && input.front() == 'S') {
    envelope = f.key.envelope(input.substr(1));
  } else {
    envelope = std::string(input);
    (void)psa::agent::base64Decode(input);
  }
  auto config = psa::agent::openConfigDocument(envelope, f.keys, "p1", kNow);
  if (!config.rejection) {
    auto check = psa::agent::checkOverlay(config.doc.config, f.running);
    (void)psa::agent::mergeOverlay(f.running, check.overlay);
  }
  auto command = psa::agent::openCommandDocument(envelope, f.keys, "p1", "ping", kNow);
  (void)command;
  return 0;
}
