#include "net/client_tls.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <boost/asio/ip/address.hpp>
#include <cerrno>
#include <fstream>

#include "api/system_trust.h"
#include "psa/store/os/system_error.h"
#include "psa/store/os/utf8_path.h"

namespace psa::adapters::net {

namespace ssl = boost::asio::ssl;
using boost::system::error_code;

Status configureClientTls(ssl::context& ctx, const ClientTlsFiles& files) {
  if (files.cert_file.empty() != files.key_file.empty()) {
    return Error(Errc::invalid_argument, "a client certificate needs both cert and key files");
  }
  for (const auto* file : {&files.ca_file, &files.cert_file, &files.key_file}) {
    if (!file->empty() && !std::ifstream(*file, std::ios::binary)) {
      return Error(Errc::io, "cannot read " + file->string() + ": " + os::errnoText(errno));
    }
  }
  SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
  error_code ec;
  if (files.ca_file.empty()) {
    PSA_TRY(api::loadSystemTrust(ctx.native_handle()));
  } else {
    ctx.load_verify_file(os::pathToUtf8(files.ca_file), ec);
    if (ec) {
      return Error(Errc::io, "CA file " + files.ca_file.string() + ": " + ec.message());
    }
  }
  if (!files.cert_file.empty()) {
    ctx.use_certificate_chain_file(os::pathToUtf8(files.cert_file), ec);
    if (ec) {
      return Error(Errc::io, "certificate file " + files.cert_file.string() + ": " + ec.message());
    }
    ctx.use_private_key_file(os::pathToUtf8(files.key_file), ssl::context::pem, ec);
    if (ec) {
      return Error(Errc::io, "key file " + files.key_file.string() + ": " + ec.message());
    }
  }
  ctx.set_verify_mode(ssl::verify_peer);
  return {};
}

void expectServerName(SSL* ssl_handle, const std::string& name) {
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl_handle);
  error_code addr_ec;
  boost::asio::ip::make_address(name, addr_ec);
  if (!addr_ec) {
    X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str());
  } else {
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    X509_VERIFY_PARAM_set1_host(param, name.c_str(), 0);
    SSL_set_tlsext_host_name(ssl_handle, name.c_str());
  }
}

std::string handshakeFailure(SSL* ssl_handle, const error_code& ec) {
  std::string why = ec.message();
  const long verify = SSL_get_verify_result(ssl_handle);
  if (verify != X509_V_OK) {
    why = std::string("certificate verify failed: ") + X509_verify_cert_error_string(verify);
  }
  std::string more;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    more += more.empty() ? "" : "; ";
    more += buf;
  }
  return more.empty() ? why : why + " (" + more + ")";
}

}  // namespace psa::adapters::net
