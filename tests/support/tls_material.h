// Test PKI generated with the OpenSSL C API: a CA, a broker certificate for localhost, client
// certificates (CN = identity), and the broken variants the TLS failure tests need (an
// unrelated CA, an expired broker certificate, a broker certificate for the wrong host name,
// a client certificate signed by the unrelated CA). Keys are EC P-256, written 0600.
#pragma once

#include <filesystem>
#include <map>
#include <string>

namespace psa::test {

/// A certificate (PEM) and its private key (PEM, unencrypted).
struct CertFiles {
  std::filesystem::path cert;
  std::filesystem::path key;
};

/// Generates the whole set into `dir` on construction. Not thread-safe. Throws
/// std::runtime_error if OpenSSL fails (a test-environment problem).
class TlsMaterial {
 public:
  explicit TlsMaterial(std::filesystem::path dir);

  const std::filesystem::path& dir() const { return dir_; }
  /// The trusted CA (give it to clients as ca_file and to the broker as cafile).
  const CertFiles& ca() const { return ca_; }
  /// A second CA that signed nothing the broker trusts.
  const CertFiles& otherCa() const { return other_ca_; }
  /// Broker certificate: CN=localhost, SAN DNS:localhost, IP:127.0.0.1, signed by ca().
  const CertFiles& server() const { return server_; }
  /// Like server() but expired yesterday.
  const CertFiles& serverExpired() const { return server_expired_; }
  /// Signed by ca() but only valid for "wrong-host.example".
  const CertFiles& serverWrongHost() const { return server_wrong_host_; }

  /// A broker certificate signed by ca() for `dns_name` alone (SAN DNS:<dns_name>, which may
  /// hold a wildcard such as "*.psa.test" or "broker*.psa.test"); generated once per name.
  const CertFiles& serverFor(const std::string& dns_name);
  /// A client certificate with CN = `identity`, signed by ca(); generated once and cached.
  const CertFiles& client(const std::string& identity);
  /// A client certificate with CN = `identity` signed by otherCa() (the broker rejects it).
  const CertFiles& clientFromOtherCa(const std::string& identity);
  /// Like server() but valid for only `days` more days; generated once per `days`.
  const CertFiles& serverExpiringIn(int days);
  /// Like client(identity) but valid for only `days` more days; generated once per pair.
  const CertFiles& clientExpiringIn(const std::string& identity, int days);

 private:
  std::filesystem::path dir_;
  CertFiles ca_;
  CertFiles other_ca_;
  CertFiles server_;
  CertFiles server_expired_;
  CertFiles server_wrong_host_;
  std::map<std::string, CertFiles> clients_;
  std::map<std::string, CertFiles> foreign_clients_;
  std::map<std::string, CertFiles> expiring_;
  std::map<std::string, CertFiles> named_servers_;
};

/// A private key (PEM, 0600) and its public key (PEM) for SMART client assertions.
struct ClientKey {
  std::filesystem::path private_pem;
  std::filesystem::path public_pem;
};
/// RSA 2048 (RS384) or EC P-384 (ES384). Throws std::runtime_error on OpenSSL failure.
ClientKey makeRsaClientKey(const std::filesystem::path& dir, const std::string& name);
ClientKey makeEcP384ClientKey(const std::filesystem::path& dir, const std::string& name);

}  // namespace psa::test
