#include "auth.h"

#include <mutex>

#include "psa/adapters/api/fhir.h"
#include "psa/store/digest.h"
#include "psa/store/json.h"
#include "psa/store/os/secret_file.h"
#include "psa/store/os/utf8_path.h"
#include "state_file.h"

namespace psa::adapters::api {
namespace {

using Clock = std::chrono::steady_clock;

std::string printable(std::string_view s, size_t max = 160) {
  std::string out;
  for (char c : s) {
    if (out.size() >= max) {
      out += "...";
      break;
    }
    out += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  return out;
}

HttpRequest formPost(const std::string& url, const Params& form) {
  HttpRequest r;
  r.method = "POST";
  r.url = url;
  r.headers = {{"Content-Type", "application/x-www-form-urlencoded"},
               {"Accept", "application/json"}};
  r.body = encodeParams(form);
  return r;
}

// Runs a token request; a refusal (400/401) becomes Errc::unauthorized with the OAuth error.
Result<TokenAnswer> fetchToken(ApiClient& client, const std::string& what,
                               std::function<Result<HttpRequest>()> build) {
  ApiClient::Call call;
  call.what = what;
  call.authenticate = false;
  call.build = std::move(build);
  call.validate = [](const HttpResponse& r) -> Status {
    auto t = parseTokenAnswer(r.body);
    if (!t) {
      return t.error();
    }
    return {};
  };
  auto resp = client.call(call);
  if (!resp) {
    if (resp.error().is(Errc::invalid_input) || resp.error().is(Errc::not_found)) {
      return Error(Errc::unauthorized, resp.error().message);
    }
    return std::move(resp).error();
  }
  return parseTokenAnswer(resp->body);
}

class NoAuth final : public AuthStrategy {
 public:
  Status apply(HttpRequest&) override { return {}; }
  void invalidate() override {}
  std::string describe() const override { return "no authentication"; }
};

// Shared by the bearer-token strategies: cache, refresh before expiry, one fetch at a time.
class BearerAuth : public AuthStrategy {
 public:
  explicit BearerAuth(AuthDeps deps) : deps_(std::move(deps)) {}
  Status apply(HttpRequest& req) override {
    std::lock_guard lock(mu_);
    if (!token_.valid(deps_.clock->steady())) {
      auto t = fetch();
      if (!t) {
        return std::move(t).error();
      }
      token_.access_token = t->access_token;
      token_.refresh_at = deps_.clock->steady() + refreshMargin(t->expires_in_s);
      granted_scope_ = t->scope;
    }
    req.headers.emplace_back("Authorization", "Bearer " + token_.access_token);
    return extra(req);
  }
  void invalidate() override {
    std::lock_guard lock(mu_);
    token_ = {};
  }
  std::string grantedScope() const override {
    std::lock_guard lock(mu_);
    return granted_scope_;
  }

 protected:
  virtual Result<TokenAnswer> fetch() = 0;
  virtual Status extra(HttpRequest&) { return {}; }
  AuthDeps deps_;
  mutable std::mutex mu_;
  CachedToken token_;
  std::string granted_scope_;
};

class ClientCredentialsAuth : public BearerAuth {
 public:
  ClientCredentialsAuth(AuthDeps deps, std::string token_url, std::string client_id,
                        std::string secret, bool basic, std::string scope, Params extra_form)
      : BearerAuth(std::move(deps)),
        token_url_(std::move(token_url)),
        client_id_(std::move(client_id)),
        secret_(std::move(secret)),
        basic_(basic),
        scope_(std::move(scope)),
        extra_form_(std::move(extra_form)) {}
  std::string describe() const override {
    return "OAuth2 client credentials (" + std::string(basic_ ? "client_secret_basic" : "client_secret_post") +
           ") as client " + client_id_;
  }

 protected:
  Result<TokenAnswer> fetch() override {
    return fetchToken(*deps_.token_client, "token", [this]() -> Result<HttpRequest> {
      Params form = {{"grant_type", "client_credentials"}};
      if (!scope_.empty()) {
        form.emplace_back("scope", scope_);
      }
      if (!basic_) {
        form.emplace_back("client_id", client_id_);
        form.emplace_back("client_secret", secret_);
      }
      for (const auto& p : extra_form_) {
        form.push_back(p);
      }
      HttpRequest r = formPost(token_url_, form);
      if (basic_) {
        r.headers.emplace_back("Authorization",
                               "Basic " + base64Encode(percentEncode(client_id_) + ":" +
                                                       percentEncode(secret_)));
      }
      return r;
    });
  }
  std::string token_url_;
  std::string client_id_;
  std::string secret_;
  bool basic_;
  std::string scope_;
  Params extra_form_;
};

class SmartBackendAuth final : public BearerAuth {
 public:
  SmartBackendAuth(AuthDeps deps, std::string token_url, std::string discovery_base,
                   std::string client_id, JwtSigner signer, std::string kid, std::string scope)
      : BearerAuth(std::move(deps)),
        token_url_(std::move(token_url)),
        discovery_base_(std::move(discovery_base)),
        client_id_(std::move(client_id)),
        signer_(std::move(signer)),
        kid_(std::move(kid)),
        scope_(std::move(scope)) {}
  std::string describe() const override {
    return "SMART backend services (" + std::string(jwsAlgName(signer_.alg())) + ") as client " +
           client_id_;
  }

 protected:
  Result<TokenAnswer> fetch() override {
    if (token_url_.empty()) {
      PSA_TRY(discover());
    }
    return fetchToken(*deps_.token_client, "token", [this]() -> Result<HttpRequest> {
      // A fresh assertion (new jti, new exp) for every attempt: the server refuses replays.
      ClientAssertion a;
      a.client_id = client_id_;
      a.audience = token_url_;
      a.kid = kid_;
      a.now_s = deps_.clock->nowMs() / 1000;
      a.lifetime_s = 240;
      auto jwt = makeClientAssertion(signer_, a);
      if (!jwt) {
        return std::move(jwt).error();
      }
      return formPost(token_url_,
                      {{"grant_type", "client_credentials"},
                       {"scope", scope_},
                       {"client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
                       {"client_assertion", *jwt}});
    });
  }

 private:
  Status discover() {
    ApiClient::Call call;
    call.what = "smart-configuration";
    call.authenticate = false;
    const std::string url = discovery_base_ + "/.well-known/smart-configuration";
    call.build = [url]() -> Result<HttpRequest> {
      HttpRequest r;
      r.url = url;
      r.headers = {{"Accept", "application/json"}};
      return r;
    };
    call.validate = [](const HttpResponse& r) -> Status {
      auto doc = json::parse(r.body);
      if (!doc || !doc->isObject() || doc->getString("token_endpoint").empty()) {
        return Error(Errc::invalid_input, "smart-configuration without token_endpoint");
      }
      return {};
    };
    auto resp = deps_.token_client->call(call);
    if (!resp) {
      return resp.error();
    }
    token_url_ = json::parse(resp->body)->getString("token_endpoint");
    return {};
  }

  std::string token_url_;
  std::string discovery_base_;
  std::string client_id_;
  JwtSigner signer_;
  std::string kid_;
  std::string scope_;
};

class RefreshTokenAuth final : public BearerAuth {
 public:
  RefreshTokenAuth(AuthDeps deps, std::string token_url, std::string client_id,
                   std::string secret, std::string seed)
      : BearerAuth(std::move(deps)),
        token_url_(std::move(token_url)),
        client_id_(std::move(client_id)),
        secret_(std::move(secret)),
        seed_(std::move(seed)) {}
  std::string describe() const override {
    return "OAuth2 refresh token (rotating) as client " + client_id_;
  }

 protected:
  Result<TokenAnswer> fetch() override {
    if (!loaded_) {
      PSA_TRY(loadCurrent());
    }
    if (current_.empty()) {
      return Error(Errc::unauthorized,
                   "no refresh token: set auth.refresh_token (or refresh_token_file) after "
                   "authorising the agent in the PMS");
    }
    auto t = fetchToken(*deps_.token_client, "token refresh", [this]() -> Result<HttpRequest> {
      return formPost(token_url_, {{"grant_type", "refresh_token"},
                                   {"refresh_token", current_},
                                   {"client_id", client_id_},
                                   {"client_secret", secret_}});
    });
    if (!t) {
      if (t.error().is(Errc::unauthorized)) {
        return Error(Errc::unauthorized,
                     t.error().message +
                         " - refresh token revoked or already used: re-authorise the agent in the "
                         "PMS admin page and set a new auth.refresh_token");
      }
      return t;
    }
    if (!t->refresh_token.empty() && t->refresh_token != current_) {
      // Rotation: the old token is dead from now on. Persist the new one durably before the
      // access token is used, so a crash at any point leaves us holding the live token.
      json::Value v = json::Value::object();
      v.set("token", json::Value::string(t->refresh_token));
      v.set("seed", json::Value::string(sha256Hex(seed_)));
      if (auto st = deps_.vault.save("auth:refresh_token", json::serialize(v)); !st) {
        return Error(st.error().code,
                     "could not persist the rotated refresh token: " + st.error().message);
      }
      current_ = t->refresh_token;
    }
    return t;
  }

 private:
  Status loadCurrent() {
    current_ = seed_;
    if (deps_.vault.load) {
      auto stored = deps_.vault.load("auth:refresh_token");
      if (!stored) {
        return stored.error();
      }
      if (stored->has_value()) {
        auto doc = json::parse(**stored);
        // The stored (rotated) token wins unless a technician configured a different seed
        // since it was stored.
        if (doc && doc->isObject() &&
            (seed_.empty() || doc->getString("seed") == sha256Hex(seed_))) {
          current_ = doc->getString("token");
        }
      }
    }
    loaded_ = true;
    return {};
  }

  std::string token_url_;
  std::string client_id_;
  std::string secret_;
  std::string seed_;
  std::string current_;
  bool loaded_ = false;
};

class NextGenAuth final : public ClientCredentialsAuth {
 public:
  NextGenAuth(AuthDeps deps, std::string token_url, std::string client_id, std::string secret,
              std::string site_id, std::string session_url, std::string enterprise_id,
              std::string practice_id, std::string session_id)
      : ClientCredentialsAuth(std::move(deps), std::move(token_url), std::move(client_id),
                              std::move(secret), false, "", {{"site_id", std::move(site_id)}}),
        session_url_(std::move(session_url)),
        enterprise_id_(std::move(enterprise_id)),
        practice_id_(std::move(practice_id)),
        session_(std::move(session_id)) {}
  std::string describe() const override {
    return "NextGen GSA client credentials + X-NG-SessionId as client " + client_id_;
  }

 protected:
  Status extra(HttpRequest& req) override {
    if (session_.empty()) {
      // The session id is deterministic per enterprise+practice and never expires: fetch once.
      std::string bearer = token_.access_token;
      ApiClient::Call call;
      call.what = "login-defaults";
      call.authenticate = false;
      call.build = [&]() -> Result<HttpRequest> {
        HttpRequest r;
        r.method = "PUT";
        r.url = session_url_;
        r.headers = {{"Content-Type", "application/json"},
                     {"Accept", "application/json"},
                     {"Authorization", "Bearer " + bearer}};
        json::Value body = json::Value::object();
        body.set("enterpriseId", json::Value::string(enterprise_id_));
        body.set("practiceId", json::Value::string(practice_id_));
        r.body = json::serialize(body);
        return r;
      };
      auto resp = deps_.token_client->call(call);
      if (!resp) {
        return Error(Errc::unauthorized, resp.error().message);
      }
      auto sid = resp->header("x-ng-sessionid");
      if (!sid || sid->empty()) {
        return Error(Errc::unauthorized, "login-defaults answered without x-ng-sessionid");
      }
      session_ = *sid;
    }
    req.headers.emplace_back("X-NG-SessionId", session_);
    return {};
  }

 private:
  std::string session_url_;
  std::string enterprise_id_;
  std::string practice_id_;
  std::string session_;
};

}  // namespace

class UnityAuth final : public AuthStrategy {
 public:
  UnityAuth(AuthDeps deps, std::string token_url, std::string user, std::string password,
            std::string appname)
      : deps_(std::move(deps)),
        token_url_(std::move(token_url)),
        user_(std::move(user)),
        password_(std::move(password)),
        appname_(std::move(appname)) {}
  Status apply(HttpRequest&) override {
    auto t = token();
    if (!t) {
      return t.error();
    }
    return {};
  }
  void invalidate() override {
    std::lock_guard lock(mu_);
    token_.clear();
  }
  std::string describe() const override { return "Unity GetToken as " + user_ + " (" + appname_ + ")"; }

  Result<std::string> token() {
    std::lock_guard lock(mu_);
    if (!token_.empty()) {
      return token_;
    }
    ApiClient::Call call;
    call.what = "GetToken";
    call.authenticate = false;
    call.build = [this]() -> Result<HttpRequest> {
      HttpRequest r;
      r.method = "POST";
      r.url = token_url_;
      r.headers = {{"Content-Type", "application/json"}};
      json::Value body = json::Value::object();
      body.set("Username", json::Value::string(user_));
      body.set("Password", json::Value::string(password_));
      body.set("Appname", json::Value::string(appname_));
      r.body = json::serialize(body);
      return r;
    };
    auto resp = deps_.token_client->call(call);
    if (!resp) {
      return std::move(resp).error();
    }
    std::string body = resp->body;
    while (!body.empty() && (body.back() == '\n' || body.back() == '\r' || body.back() == ' ')) {
      body.pop_back();
    }
    if (body.size() >= 2 && body.front() == '"' && body.back() == '"') {
      body = body.substr(1, body.size() - 2);
    }
    if (body.empty() || body.find("error:") != std::string::npos) {
      return Error(Errc::unauthorized, "GetToken refused: " + printable(body));
    }
    token_ = body;
    return token_;
  }
  const std::string& appname() const { return appname_; }
  std::string cached() {
    std::lock_guard lock(mu_);
    return token_;
  }

 private:
  AuthDeps deps_;
  std::string token_url_;
  std::string user_;
  std::string password_;
  std::string appname_;
  std::mutex mu_;
  std::string token_;
};

namespace {

class KareoAuth final : public AuthStrategy {
 public:
  explicit KareoAuth(KareoCredentials c) : creds_(std::move(c)) {}
  Status apply(HttpRequest&) override { return {}; }
  void invalidate() override {}
  std::string describe() const override { return "Kareo RequestHeader as " + creds_.user; }
  const KareoCredentials& creds() const { return creds_; }

 private:
  KareoCredentials creds_;
};

}  // namespace

Result<TokenAnswer> parseTokenAnswer(std::string_view body) {
  auto doc = json::parse(body);
  if (!doc || !doc->isObject()) {
    return Error(Errc::invalid_input, "token answer is not a JSON object");
  }
  TokenAnswer t;
  t.access_token = doc->getString("access_token");
  if (t.access_token.empty()) {
    return Error(Errc::invalid_input, "token answer without access_token");
  }
  if (const json::Value* e = doc->find("expires_in"); e != nullptr) {
    if (e->isNumber()) {
      t.expires_in_s = e->asInt();
    } else if (e->isString()) {
      t.expires_in_s = std::strtoll(e->asString().c_str(), nullptr, 10);
    }
  }
  if (t.expires_in_s <= 0) {
    t.expires_in_s = 300;
  }
  t.refresh_token = doc->getString("refresh_token");
  t.scope = doc->getString("scope");
  return t;
}

std::chrono::seconds refreshMargin(int64_t expires_in_s) {
  if (expires_in_s > 300) {
    return std::chrono::seconds(expires_in_s - 60);
  }
  return std::chrono::seconds(std::max<int64_t>(1, expires_in_s * 8 / 10));
}

Result<std::string> secretFrom(const json::Value& auth, const std::string& name,
                               const std::filesystem::path& state_dir) {
  const std::string inline_value = auth.getString(name);
  if (!inline_value.empty()) {
    return inline_value;
  }
  const std::string file = auth.getString(name + "_file");
  if (file.empty()) {
    return std::string();
  }
  auto s = os::readSecretLine(os::resolveUtf8Path(state_dir, file));
  if (!s) {
    return Error(s.error().code, "auth." + name + "_file: " + s.error().message);
  }
  return s;
}

Result<AuthStrategyPtr> makeAuthStrategy(const json::Value& auth, AuthDeps deps,
                                         const std::string& token_url_fallback,
                                         const std::string& api_base) {
  const std::string type = auth.getString("type", "none");
  std::string token_url = auth.getString("token_url");
  if (token_url.empty()) {
    token_url = token_url_fallback;
  }
  auto secret = [&](const std::string& name) { return secretFrom(auth, name, deps.state_dir); };
  auto need = [&](const std::string& value, const std::string& name) -> Status {
    if (value.empty()) {
      return Error(Errc::invalid_argument, "auth." + name + " is required for auth type " + type);
    }
    return {};
  };
  if (type == "none") {
    return AuthStrategyPtr(std::make_shared<NoAuth>());
  }
  const std::string client_id = auth.getString("client_id");
  if (type == "oauth2-client-credentials") {
    auto s = secret("client_secret");
    if (!s) {
      return std::move(s).error();
    }
    PSA_TRY(need(client_id, "client_id"));
    PSA_TRY(need(*s, "client_secret"));
    PSA_TRY(need(token_url, "token_url"));
    return AuthStrategyPtr(std::make_shared<ClientCredentialsAuth>(
        std::move(deps), token_url, client_id, *s, auth.getString("client_auth", "basic") == "basic",
        auth.getString("scope"), Params{}));
  }
  if (type == "smart-backend") {
    PSA_TRY(need(client_id, "client_id"));
    const std::string key_file = auth.getString("private_key_file");
    PSA_TRY(need(key_file, "private_key_file"));
    auto alg = parseJwsAlg(auth.getString("alg", "RS384"));
    if (!alg) {
      return Error(alg.error().code, "auth.alg: " + alg.error().message);
    }
    auto signer = JwtSigner::fromPemFile(os::resolveUtf8Path(deps.state_dir, key_file), *alg);
    if (!signer) {
      return Error(signer.error().code, "auth.private_key_file: " + signer.error().message);
    }
    return AuthStrategyPtr(std::make_shared<SmartBackendAuth>(
        std::move(deps), token_url, api_base, client_id, std::move(signer).value(),
        auth.getString("kid"), auth.getString("scope", "system/*.read")));
  }
  if (type == "oauth2-refresh") {
    auto s = secret("client_secret");
    if (!s) {
      return std::move(s).error();
    }
    auto seed = secret("refresh_token");
    if (!seed) {
      return std::move(seed).error();
    }
    PSA_TRY(need(client_id, "client_id"));
    PSA_TRY(need(*s, "client_secret"));
    PSA_TRY(need(token_url, "token_url"));
    return AuthStrategyPtr(
        std::make_shared<RefreshTokenAuth>(std::move(deps), token_url, client_id, *s, *seed));
  }
  if (type == "nextgen") {
    auto s = secret("client_secret");
    if (!s) {
      return std::move(s).error();
    }
    PSA_TRY(need(client_id, "client_id"));
    PSA_TRY(need(*s, "client_secret"));
    PSA_TRY(need(token_url, "token_url"));
    const std::string site = auth.getString("site_id");
    PSA_TRY(need(site, "site_id"));
    std::string session_url = auth.getString("session_url");
    if (session_url.empty()) {
      session_url = api_base + "/users/me/login-defaults";
    }
    return AuthStrategyPtr(std::make_shared<NextGenAuth>(
        std::move(deps), token_url, client_id, *s, site, session_url,
        auth.getString("enterprise_id"), auth.getString("practice_id"),
        auth.getString("session_id")));
  }
  if (type == "unity") {
    auto pw = secret("password");
    if (!pw) {
      return std::move(pw).error();
    }
    const std::string user = auth.getString("username");
    PSA_TRY(need(user, "username"));
    PSA_TRY(need(*pw, "password"));
    const std::string app = auth.getString("appname");
    PSA_TRY(need(app, "appname"));
    PSA_TRY(need(token_url, "token_url"));
    return AuthStrategyPtr(std::make_shared<UnityAuth>(std::move(deps), token_url, user, *pw, app));
  }
  if (type == "kareo") {
    KareoCredentials c;
    auto key = secret("customer_key");
    if (!key) {
      return std::move(key).error();
    }
    auto pw = secret("password");
    if (!pw) {
      return std::move(pw).error();
    }
    c.customer_key = *key;
    c.user = auth.getString("username");
    c.password = *pw;
    PSA_TRY(need(c.customer_key, "customer_key"));
    PSA_TRY(need(c.user, "username"));
    PSA_TRY(need(c.password, "password"));
    return AuthStrategyPtr(std::make_shared<KareoAuth>(std::move(c)));
  }
  return Error(Errc::invalid_argument, "unknown auth.type \"" + type + "\"");
}

Result<std::string> unityToken(AuthStrategy& auth) {
  auto* u = dynamic_cast<UnityAuth*>(&auth);
  if (u == nullptr) {
    return Error(Errc::invalid_argument, "the Unity API needs auth.type \"unity\"");
  }
  return u->token();
}

std::string unityCachedToken(AuthStrategy& auth) {
  auto* u = dynamic_cast<UnityAuth*>(&auth);
  return u == nullptr ? std::string() : u->cached();
}

std::string unityAppname(AuthStrategy& auth) {
  auto* u = dynamic_cast<UnityAuth*>(&auth);
  return u == nullptr ? std::string() : u->appname();
}

const KareoCredentials* kareoCredentials(AuthStrategy& auth) {
  auto* k = dynamic_cast<KareoAuth*>(&auth);
  return k == nullptr ? nullptr : &k->creds();
}

}  // namespace psa::adapters::api
