// What the HTTP endpoint admits before any handler runs: methods, targets, the Host header's
// loopback rule (the DNS-rebinding defence) and the bearer token, in the order admit() checks
// them. Pure: no sockets (http_server_test.cpp runs the same rules over TCP).
#include "http/request_gate.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace psa::agent::http {
namespace {

constexpr const char* kToken = "0123456789abcdef0123";  // 20 characters

Request get(std::string target = "/", std::string host = "127.0.0.1:9465") {
  Request r;
  r.method = "GET";
  r.target = std::move(target);
  r.host = std::move(host);
  return r;
}

AccessPolicy loopbackOnly() { return AccessPolicy{}; }

AccessPolicy withToken() {
  AccessPolicy p;
  p.bearer_token = kToken;
  return p;
}

TEST(RequestGate, OnlyGetAndHeadPass) {
  for (const char* method : {"GET", "HEAD"}) {
    Request r = get();
    r.method = method;
    EXPECT_EQ(admit(r, loopbackOnly()).status, 0) << method;
  }
  // Methods are case-sensitive (RFC 9110 §9.1): "get" is not GET.
  for (const char* method :
       {"POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT", "get", "G\x01T", ""}) {
    Request r = get();
    r.method = method;
    const Verdict v = admit(r, loopbackOnly());
    EXPECT_EQ(v.status, 405) << method;
    EXPECT_EQ(v.reason, "read-only endpoint: only GET and HEAD") << method;
  }
}

TEST(RequestGate, TargetMustBeOriginFormAndAtMost2048Characters) {
  EXPECT_EQ(admit(get("/"), loopbackOnly()).status, 0);
  EXPECT_EQ(admit(get("/metrics?name=x&y=2"), loopbackOnly()).status, 0);
  const std::string longest = "/" + std::string(2047, 'a');
  ASSERT_EQ(longest.size(), 2048u);
  EXPECT_EQ(admit(get(longest), loopbackOnly()).status, 0);

  for (const std::string& target :
       {std::string(), std::string("metrics"), std::string("*"), std::string("?x=1"),
        std::string("http://127.0.0.1:9465/metrics"), std::string("127.0.0.1:9465"),
        longest + "a"}) {
    const Verdict v = admit(get(target), loopbackOnly());
    EXPECT_EQ(v.status, 400) << target.substr(0, 40);
    EXPECT_EQ(v.reason, "bad request target") << target.substr(0, 40);
  }
}

TEST(RequestGate, HostHeaderIsRequired) {
  const Verdict v = admit(get("/", ""), loopbackOnly());
  EXPECT_EQ(v.status, 400);
  EXPECT_EQ(v.reason, "missing Host header");
  // Also when no loopback rule applies (a LAN listener): HTTP/1.1 requires Host.
  AccessPolicy lan;
  lan.loopback_hosts_only = false;
  EXPECT_EQ(admit(get("/", ""), lan).status, 400);
}

TEST(RequestGate, LoopbackListenerAnswersOnlyToLoopbackHostNames) {
  for (const char* host :
       {"localhost", "LOCALHOST:9465", "LocalHost", "127.0.0.1", "127.0.0.1:9465", "127.1.2.3:80",
        "127.255.255.254", "[::1]", "[::1]:9465"}) {
    EXPECT_EQ(admit(get("/", host), loopbackOnly()).status, 0) << host;
    EXPECT_TRUE(isLoopbackHost(host)) << host;
  }
  // A name a rebound DNS entry could carry, a LAN address, a name that only starts with
  // "localhost", an unclosed bracket. "::1" without brackets is not a valid Host (RFC 3986
  // requires brackets around an IPv6 literal): isLoopbackHost() takes its last ':' for the port
  // separator and keeps ":", which is no address, so it is refused too.
  for (const char* host :
       {"evil.example", "evil.example:9465", "10.0.0.5", "10.0.0.5:9465", "192.168.1.10",
        "localhost.evil.example", "localhost.evil.example:9465", "127.0.0.1.evil.example", "[::1",
        "[::1:9465", "::1", "[::ffff:10.0.0.5]", "[fe80::1]:9465", "0.0.0.0"}) {
    const Verdict v = admit(get("/", host), loopbackOnly());
    EXPECT_EQ(v.status, 421) << host;
    EXPECT_EQ(v.reason, "this endpoint answers only to localhost, 127.0.0.1 or [::1]") << host;
    EXPECT_FALSE(isLoopbackHost(host)) << host;
  }
}

TEST(RequestGate, NonLoopbackListenerAcceptsAnyHost) {
  AccessPolicy lan;
  lan.loopback_hosts_only = false;
  EXPECT_EQ(admit(get("/", "agent.studio.lan:9465"), lan).status, 0);
  EXPECT_EQ(admit(get("/", "192.168.1.10:9465"), lan).status, 0);
}

TEST(RequestGate, BearerTokenMustMatchExactly) {
  auto with = [](std::string authorization) {
    Request r = get();
    r.authorization = std::move(authorization);
    return admit(r, withToken());
  };
  const std::string token = kToken;
  struct Case {
    std::string authorization;
    int status;
  };
  const std::vector<Case> cases = {
      {"", 401},
      {"Bearer", 401},
      {"Bearer ", 401},
      {"Bearer 0123456789abcdef0124", 401},                  // same length, last character off
      {"Bearer " + token.substr(0, token.size() - 1), 401},  // a prefix
      {"Bearer " + token + "0", 401},                        // one character more
      {"Bearer  " + token, 401},                             // two spaces: the token has one more
      {"Bearer " + token + " ", 401},
      {"Basic " + token, 401},
      {"Basic dXNlcjpwYXNzd29yZA==", 401},
      {token, 401},
      {"Token " + token, 401},
      {"Bearer " + token, 0},
      // The scheme is case-insensitive (RFC 9110 §11.1); the code compares it upper-cased.
      {"bearer " + token, 0},
      {"BEARER " + token, 0},
      // The token itself is not: it is compared byte for byte.
      {"Bearer 0123456789ABCDEF0123", 401},
  };
  for (const Case& c : cases) {
    const Verdict v = with(c.authorization);
    EXPECT_EQ(v.status, c.status) << "Authorization: " << c.authorization;
    if (c.status == 401) {
      EXPECT_EQ(v.reason, "a valid bearer token is required");
    }
  }
  // No token configured: the header is ignored.
  Request r = get();
  r.authorization = "Basic dXNlcjpwYXNzd29yZA==";
  EXPECT_EQ(admit(r, loopbackOnly()).status, 0);
}

TEST(RequestGate, ChecksRunInOrderMethodTargetHostToken) {
  Request r;
  r.method = "POST";
  r.target = "no-slash";
  r.host = "evil.example";
  EXPECT_EQ(admit(r, withToken()).status, 405);
  r.method = "GET";
  EXPECT_EQ(admit(r, withToken()).status, 400);
  r.target = "/";
  r.host = "";
  EXPECT_EQ(admit(r, withToken()).status, 400);
  r.host = "evil.example";
  EXPECT_EQ(admit(r, withToken()).status, 421);  // a rebinding page learns nothing of the token
  r.host = "localhost";
  EXPECT_EQ(admit(r, withToken()).status, 401);
  r.authorization = std::string("Bearer ") + kToken;
  EXPECT_EQ(admit(r, withToken()).status, 0);
}

TEST(RequestGate, RefusalReasonsNeverEchoTheRequest) {
  const std::string mark = "PHIMARK7f3a9c1e";
  std::vector<Request> refused;
  Request r;
  r.method = "POST" + mark;
  r.target = "/" + mark;
  r.host = "localhost";
  r.authorization = "Bearer " + mark;
  refused.push_back(r);  // 405
  r.method = "GET";
  r.target = mark + "/x";
  refused.push_back(r);  // 400 target
  r.target = "/" + std::string(3000, 'x') + mark;
  refused.push_back(r);  // 400 too long
  r.target = "/" + mark;
  r.host = mark + ".evil.example";
  refused.push_back(r);  // 421
  r.host = "localhost";
  refused.push_back(r);  // 401
  std::vector<int> statuses;
  for (const Request& req : refused) {
    const Verdict v = admit(req, withToken());
    statuses.push_back(v.status);
    EXPECT_FALSE(v.reason.empty()) << v.status;
    EXPECT_EQ(v.reason.find(mark), std::string::npos) << v.reason;
    EXPECT_EQ(v.reason.find("evil"), std::string::npos) << v.reason;
    EXPECT_EQ(v.reason.find(kToken), std::string::npos) << v.reason;
  }
  EXPECT_EQ(statuses, (std::vector<int>{405, 400, 400, 421, 401}));
}

TEST(RequestGate, PathDropsTheQuery) {
  Request r;
  for (const auto& [target, path] :
       std::vector<std::pair<std::string, std::string>>{{"/metrics?x=1", "/metrics"},
                                                        {"/metrics", "/metrics"},
                                                        {"/", "/"},
                                                        {"/?", "/"},
                                                        {"/a/b?c=d?e", "/a/b"},
                                                        {"/status.json?", "/status.json"},
                                                        {"", ""}}) {
    r.target = target;
    EXPECT_EQ(r.path(), path) << target;
  }
}

}  // namespace
}  // namespace psa::agent::http
