#include "psa/adapters/net/server_tls.h"

#include <openssl/ssl.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <optional>
#include <utility>

#include "psa/store/os/system_error.h"
#include "psa/store/os/utf8_path.h"
#include "psa/store/schema.h"

namespace psa::adapters::net {
namespace {

namespace ssl = boost::asio::ssl;
using boost::system::error_code;

// "No such file or directory" and friends before OpenSSL turns them into "asio.ssl error".
std::optional<std::string> unreadable(const std::filesystem::path& file) {
  std::ifstream f(file, std::ios::binary);
  if (!f) {
    return os::errnoText(errno);
  }
  return std::nullopt;
}

std::optional<std::string> checkNonEmpty(const json::Value& v) {
  if (v.asString().empty()) {
    return "must not be empty";
  }
  return std::nullopt;
}

}  // namespace

schema::ObjectSchemaPtr serverTlsSchema() {
  using schema::Field;
  static const schema::ObjectSchemaPtr tls = [] {
    auto s = std::make_shared<schema::ObjectSchema>();
    s->fields = {
        Field::str("cert_file").req().verify(checkNonEmpty).describe("server certificate (PEM, chain)"),
        Field::str("key_file").req().verify(checkNonEmpty).describe("server private key (PEM)"),
        Field::str("client_ca_file")
            .verify(checkNonEmpty)
            .describe("CA for client certificates; when set, a client certificate is required"),
        Field::str("min_version").def(json::Value::string("1.2")).oneOf({"1.2", "1.3"}),
    };
    return s;
  }();
  return tls;
}

Result<ServerTlsSettings> readServerTls(const json::Value& tls,
                                        const std::filesystem::path& state_dir) {
  if (tls.getString("cert_file").empty() || tls.getString("key_file").empty()) {
    return Error(Errc::invalid_argument, "tls: cert_file and key_file are required");
  }
  ServerTlsSettings t;
  t.cert_file = os::resolveUtf8Path(state_dir, tls.getString("cert_file"));
  t.key_file = os::resolveUtf8Path(state_dir, tls.getString("key_file"));
  if (std::string ca = tls.getString("client_ca_file"); !ca.empty()) {
    t.client_ca_file = os::resolveUtf8Path(state_dir, ca);
  }
  t.min_version = tls.getString("min_version", "1.2");
  return t;
}

std::unique_ptr<ssl::context> makeServerTls(const ServerTlsSettings& t, std::string& error) {
  for (const auto& [key, file] :
       {std::pair<const char*, const std::filesystem::path*>{"tls.cert_file", &t.cert_file},
        {"tls.key_file", &t.key_file},
        {"tls.client_ca_file", &t.client_ca_file}}) {
    if (file->empty()) {
      continue;
    }
    if (auto why = unreadable(*file)) {
      error = std::string(key) + " " + file->string() + ": " + *why;
      return nullptr;
    }
  }
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                   ssl::context::single_dh_use);
  SSL_CTX_set_min_proto_version(ctx->native_handle(),
                                t.min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION);
  SSL_CTX_set_mode(ctx->native_handle(), SSL_MODE_RELEASE_BUFFERS);
  error_code ec;
  ctx->use_certificate_chain_file(os::pathToUtf8(t.cert_file), ec);
  if (ec) {
    error = "tls.cert_file " + t.cert_file.string() + ": " + ec.message();
    return nullptr;
  }
  ctx->use_private_key_file(os::pathToUtf8(t.key_file), ssl::context::pem, ec);
  if (ec) {
    error = "tls.key_file " + t.key_file.string() + ": " + ec.message();
    return nullptr;
  }
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
    error = "tls.key_file " + t.key_file.string() + " does not match tls.cert_file";
    return nullptr;
  }
  if (!t.client_ca_file.empty()) {
    ctx->load_verify_file(os::pathToUtf8(t.client_ca_file), ec);
    if (ec) {
      error = "tls.client_ca_file " + t.client_ca_file.string() + ": " + ec.message();
      return nullptr;
    }
    if (STACK_OF(X509_NAME)* names =
            SSL_load_client_CA_file(os::pathToUtf8(t.client_ca_file).c_str())) {
      SSL_CTX_set_client_CA_list(ctx->native_handle(), names);
    }
    ctx->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
  } else {
    ctx->set_verify_mode(ssl::verify_none);
  }
  return ctx;
}

}  // namespace psa::adapters::net
