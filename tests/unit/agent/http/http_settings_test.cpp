// The `http` config section through the real loader (parseConfig): defaults, the exposure rule
// (a LAN listener needs TLS plus client certificates or a bearer token), range and key checks,
// paths resolved against state_dir; and a signed remote config document that tries to set
// `http` is refused as forbidden (the agent's own steps: openConfigDocument, then checkOverlay).
#include "psa/agent/http_settings.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "psa/agent/config.h"
#include "psa/agent/remote_config.h"
#include "psa/agent/signed_document.h"

namespace psa::agent {
namespace {

namespace fs = std::filesystem;

constexpr const char* kAgent = R"("agent":{"id":"p1","tenant":"t1","state_dir":"/s"})";

ConfigLoad loadWithHttp(const std::string& http) {
  const adapters::SourceRegistry registry;
  return parseConfig("{" + std::string(kAgent) + ",\n\"http\":" + http + "}", "f.json", registry);
}

std::vector<std::string> problems(const ConfigLoad& load) {
  std::vector<std::string> out;
  for (const auto& i : load.issues) {
    out.push_back(i.path + ": " + i.message);
  }
  return out;
}

// The one issue a refused section has, "path: message".
std::string onlyProblem(const std::string& http) {
  const ConfigLoad load = loadWithHttp(http);
  EXPECT_FALSE(load.config) << http;
  EXPECT_EQ(load.issues.size(), 1u) << ::testing::PrintToString(problems(load));
  return load.issues.empty() ? std::string() : problems(load).front();
}

// The http settings of an accepted config (a copy: the ConfigLoad is often a temporary).
HttpSettings accepted(const ConfigLoad& load) {
  EXPECT_TRUE(load.config) << ::testing::PrintToString(problems(load));
  if (!load.config || !load.config->http) {
    ADD_FAILURE() << "no http settings";
    return {};
  }
  return *load.config->http;
}

TEST(HttpSettings, AbsentSectionServesNothing) {
  const adapters::SourceRegistry registry;
  auto load = parseConfig("{" + std::string(kAgent) + "}", "f.json", registry);
  ASSERT_TRUE(load.config) << ::testing::PrintToString(problems(load));
  EXPECT_FALSE(load.config->http.has_value()) << "the endpoint would be served without a section";
  // Nor does the document show one (`config show`), so a config rebuilt from it (what remote
  // config does with every document it applies) stays without the endpoint too.
  EXPECT_EQ(load.config->doc.find("http"), nullptr) << json::serialize(load.config->doc);
  auto rebuilt = buildEffectiveConfig(load.config->doc, *json::parse(R"({"adapters":[]})"),
                                      "f.json", registry);
  ASSERT_TRUE(rebuilt.config) << ::testing::PrintToString(problems(rebuilt));
  EXPECT_FALSE(rebuilt.config->http.has_value());
}

TEST(HttpSettings, SectionSurvivesARebuildFromTheDocument) {
  const adapters::SourceRegistry registry;
  const ConfigLoad load = loadWithHttp(R"({"listen":"127.0.0.1:9500"})");
  ASSERT_TRUE(load.config) << ::testing::PrintToString(problems(load));
  auto rebuilt = buildEffectiveConfig(load.config->doc, *json::parse(R"({"adapters":[]})"),
                                      "f.json", registry);
  EXPECT_EQ(accepted(rebuilt).listen.port, 9500);
}

TEST(HttpSettings, EmptySectionGetsTheDefaults) {
  const ConfigLoad load = loadWithHttp("{}");
  const HttpSettings s = accepted(load);
  EXPECT_EQ(s.listen.host, "127.0.0.1");
  EXPECT_EQ(s.listen.port, 9465);
  EXPECT_EQ(s.listen.text, "127.0.0.1:9465");
  EXPECT_FALSE(s.tls.has_value());
  EXPECT_TRUE(s.bearer_token_file.empty());
  EXPECT_EQ(s.max_connections, 16u);
  EXPECT_EQ(s.request_timeout, std::chrono::seconds(10));
  EXPECT_EQ(s.refresh_s, 5);
  // The document shows the defaults too (`config show`).
  ASSERT_TRUE(load.config);
  const json::Value* http = load.config->doc.find("http");
  ASSERT_NE(http, nullptr);
  EXPECT_EQ(http->getString("listen"), "127.0.0.1:9465");
  EXPECT_EQ(http->getInt("max_connections"), 16);
}

TEST(HttpSettings, ExplicitValuesAreRead) {
  const HttpSettings s = accepted(loadWithHttp(
      R"({"listen":"[::1]:8080","max_connections":2,"request_timeout_s":1,"refresh_s":60})"));
  EXPECT_EQ(s.listen.host, "::1");
  EXPECT_TRUE(s.listen.v6);
  EXPECT_EQ(s.listen.port, 8080);
  EXPECT_EQ(s.max_connections, 2u);
  EXPECT_EQ(s.request_timeout, std::chrono::seconds(1));
  EXPECT_EQ(s.refresh_s, 60);
}

TEST(HttpSettings, LoopbackListenersNeedNoTls) {
  for (const char* listen : {"127.0.0.1:9465", "127.0.0.2:9465", "localhost:9465", "[::1]:9465"}) {
    const ConfigLoad load = loadWithHttp(std::string(R"({"listen":")") + listen + "\"}");
    EXPECT_TRUE(load.config) << listen << " " << ::testing::PrintToString(problems(load));
  }
  // "localhost" is bound as 127.0.0.1.
  EXPECT_EQ(accepted(loadWithHttp(R"({"listen":"localhost:1"})")).listen.host, "127.0.0.1");
}

TEST(HttpSettings, LanListenerWithoutTlsIsRefusedNamingWhatIsMissing) {
  for (const char* listen : {"0.0.0.0:9465", "192.168.1.10:9465", "[::]:9465"}) {
    const std::string p = onlyProblem(std::string(R"({"listen":")") + listen + "\"}");
    EXPECT_EQ(p.rfind("http.listen: \"" + std::string(listen) + "\" is not a loopback address", 0),
              0u)
        << p;
    EXPECT_NE(p.find("needs \"tls\""), std::string::npos) << p;
    EXPECT_NE(p.find("tls.client_ca_file"), std::string::npos) << p;
    EXPECT_NE(p.find("bearer_token_file"), std::string::npos) << p;
    EXPECT_NE(p.find("or listen on 127.0.0.1"), std::string::npos) << p;
  }
  // A token alone does not do: it would travel in clear text.
  const std::string p = onlyProblem(R"({"listen":"0.0.0.0:9465","bearer_token_file":"t"})");
  EXPECT_NE(p.find("needs \"tls\""), std::string::npos) << p;
}

TEST(HttpSettings, LanListenerWithTlsButNoClientAuthenticationIsRefused) {
  const std::string p = onlyProblem(
      R"({"listen":"192.168.1.10:9465","tls":{"cert_file":"c.pem","key_file":"k.pem"}})");
  EXPECT_EQ(p,
            "http.listen: \"192.168.1.10:9465\" is not a loopback address: serving the status page "
            "and metrics on the network needs a client certificate (tls.client_ca_file) or a "
            "bearer_token_file (or listen on 127.0.0.1)");
}

TEST(HttpSettings, LanListenerWithTlsAndClientCertificatesIsAccepted) {
  const HttpSettings s = accepted(loadWithHttp(R"({"listen":"0.0.0.0:9465",
      "tls":{"cert_file":"tls/http.pem","key_file":"tls/http.key","client_ca_file":"/etc/ca.pem",
             "min_version":"1.3"}})"));
  EXPECT_EQ(s.listen.host, "0.0.0.0");
  ASSERT_TRUE(s.tls.has_value());
  // Relative paths resolve against state_dir; absolute ones stay.
  EXPECT_EQ(s.tls->cert_file, fs::path("/s") / "tls" / "http.pem");
  EXPECT_EQ(s.tls->key_file, fs::path("/s") / "tls" / "http.key");
  EXPECT_EQ(s.tls->client_ca_file, fs::path("/etc/ca.pem"));
  EXPECT_EQ(s.tls->min_version, "1.3");
  EXPECT_TRUE(s.bearer_token_file.empty());
}

TEST(HttpSettings, LanListenerWithTlsAndBearerTokenIsAccepted) {
  const HttpSettings s = accepted(loadWithHttp(R"({"listen":"192.168.1.10:9465",
      "tls":{"cert_file":"c.pem","key_file":"k.pem"},"bearer_token_file":"http.token"})"));
  ASSERT_TRUE(s.tls.has_value());
  EXPECT_EQ(s.tls->cert_file, fs::path("/s") / "c.pem");
  EXPECT_TRUE(s.tls->client_ca_file.empty());
  EXPECT_EQ(s.tls->min_version, "1.2");
  EXPECT_EQ(s.bearer_token_file, fs::path("/s") / "http.token");
}

TEST(HttpSettings, BadListenIsRefused) {
  for (const char* listen : {"nonsense", "127.0.0.1", "127.0.0.1:99999", "127.0.0.1:http",
                             "example.com:80", "[::1:80", ""}) {
    const std::string p = onlyProblem(std::string(R"({"listen":")") + listen + "\"}");
    EXPECT_EQ(p.rfind("http.listen: ", 0), 0u) << listen << " -> " << p;
    EXPECT_GT(p.size(), std::string("http.listen: ").size() + 5) << p;  // says why
  }
  EXPECT_EQ(onlyProblem(R"({"listen":9465})"), "http.listen: expected a string, found a number");
}

TEST(HttpSettings, UnknownKeysAndOutOfRangeValuesAreRefused) {
  const std::string unknown = onlyProblem(R"({"port":9465})");
  EXPECT_EQ(unknown.rfind("http.port: unknown key (known keys: listen, tls, bearer_token_file, "
                          "max_connections, request_timeout_s, refresh_s)",
                          0),
            0u)
      << unknown;
  EXPECT_EQ(onlyProblem(R"({"tls":{"cert_file":"c","key_file":"k","ca_file":"x"}})")
                .rfind("http.tls.ca_file: unknown key", 0),
            0u);
  EXPECT_EQ(onlyProblem(R"({"max_connections":0})"),
            "http.max_connections: value 0 out of range, expected 1..256");
  EXPECT_EQ(onlyProblem(R"({"max_connections":257})"),
            "http.max_connections: value 257 out of range, expected 1..256");
  EXPECT_EQ(onlyProblem(R"({"request_timeout_s":0})"),
            "http.request_timeout_s: value 0 out of range, expected 1..300");
  EXPECT_EQ(onlyProblem(R"({"refresh_s":0})"),
            "http.refresh_s: value 0 out of range, expected 1..3600");
  EXPECT_EQ(onlyProblem(R"({"bearer_token_file":""})"),
            "http.bearer_token_file: must not be empty");
  EXPECT_EQ(onlyProblem(R"({"tls":{"cert_file":"c.pem"}})")
                .rfind("http.tls.key_file: required string is missing", 0),
            0u);
  EXPECT_EQ(onlyProblem(R"({"tls":{"cert_file":"c","key_file":"k","min_version":"1.1"}})")
                .rfind("http.tls.min_version: ", 0),
            0u);
  const std::string not_object = onlyProblem(R"([])");
  EXPECT_EQ(not_object.rfind("http: expected a", 0), 0u) << not_object;
  EXPECT_NE(not_object.find("object"), std::string::npos) << not_object;
}

// The cloud's side of the rule in remote_config.h: `http` is local only. A signed, authentic
// document for this agent that sets it is refused as forbidden, whether the local file has an
// http section or not, and nothing of it reaches the overlay that would be applied.
TEST(HttpSettings, SignedRemoteConfigCannotSetHttp) {
  constexpr int64_t kNow = 1795000000000;
  auto key = SigningKey::generate();
  ASSERT_TRUE(key.ok()) << key.error().message;
  SigningKeys keys;
  ASSERT_TRUE(keys.addPem(key->publicPem()).ok());
  const adapters::SourceRegistry registry;

  struct Case {
    std::string local_http;  // empty: no http section in the file
    std::string remote;      // the document's `config`
    std::vector<std::string> forbidden;
  };
  const std::vector<Case> cases = {
      {"", R"({"http":{"listen":"0.0.0.0:9465"}})", {"config.http.listen"}},
      {"", R"({"http":{"listen":"127.0.0.1:9465"}})", {"config.http.listen"}},
      {R"({})", R"({"http":{"listen":"0.0.0.0:9465"}})", {"config.http.listen"}},
      {R"({})",
       R"({"agent":{"log_level":"debug"},"http":{"bearer_token_file":"/tmp/t","max_connections":256,
           "tls":{"cert_file":"/tmp/c","key_file":"/tmp/k"}}})",
       {"config.http.bearer_token_file", "config.http.max_connections", "config.http.tls"}},
      {R"({"listen":"127.0.0.1:9465","refresh_s":5})",
       R"({"http":{"refresh_s":1}})",
       {"config.http.refresh_s"}},
      // The local value repeated unchanged (the cloud echoing the effective config): ignored.
      {R"({"listen":"127.0.0.1:9465"})", R"({"http":{"listen":"127.0.0.1:9465"}})", {}},
  };
  int64_t version = 1;
  for (const Case& c : cases) {
    const std::string file =
        "{" + std::string(kAgent) + (c.local_http.empty() ? "" : ",\"http\":" + c.local_http) + "}";
    const ConfigLoad local = parseConfig(file, "f.json", registry);
    ASSERT_TRUE(local.config) << ::testing::PrintToString(problems(local));

    auto config = json::parse(c.remote);
    ASSERT_TRUE(config.ok()) << c.remote;
    const std::string envelope =
        key->envelope(makeConfigPayload("p1", version++, kNow - 1000, kNow + 60000, *config));
    auto opened = openConfigDocument(envelope, keys, "p1", kNow);
    ASSERT_FALSE(opened.rejection.has_value()) << opened.rejection->message;
    ASSERT_TRUE(opened.authentic);

    const OverlayCheck check = checkOverlay(opened.doc.config, local.config->doc);
    EXPECT_TRUE(check.schema.empty()) << c.remote;
    std::vector<std::string> paths;
    for (const PathError& e : check.forbidden) {
      paths.push_back(e.path);
      EXPECT_EQ(e.message,
                "a local setting cannot be changed remotely (the cloud may set adapters, policy, "
                "agent.log_level, cloud.status_interval_s and tuning values)");
    }
    std::sort(paths.begin(), paths.end());
    EXPECT_EQ(paths, c.forbidden) << c.remote;
    EXPECT_EQ(check.overlay.find("http"), nullptr) << json::serialize(check.overlay);
  }
}

}  // namespace
}  // namespace psa::agent
