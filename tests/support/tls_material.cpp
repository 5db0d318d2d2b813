#include "tls_material.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cctype>
#include <memory>
#include <stdexcept>
#include <vector>

#include "psa/store/os/durable_file.h"
#include "psa/store/os/utf8_path.h"

namespace psa::test {
namespace fs = std::filesystem;

namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error("tls_material: " + what);
}

PkeyPtr newKey() {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  if (key == nullptr) {
    fail("EVP_EC_gen failed");
  }
  return PkeyPtr(key);
}

void addExt(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) {
    fail("extension " + value);
  }
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

struct CertSpec {
  std::string cn;
  bool is_ca = false;
  std::string san;             ///< e.g. "DNS:localhost,IP:127.0.0.1"
  std::string extended_usage;  ///< e.g. "serverAuth"
  long not_before_s = -3600;   ///< relative to now
  long not_after_s = 3650L * 24 * 3600;
};

/// Issues a certificate for `key`; self-signed when issuer is null.
X509Ptr issue(const CertSpec& spec, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key) {
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  unsigned char serial_bytes[16];
  RAND_bytes(serial_bytes, sizeof serial_bytes);
  serial_bytes[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial_bytes, sizeof serial_bytes, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), spec.not_before_s);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), spec.not_after_s);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("psa-test"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(spec.cn.c_str()), -1, -1, 0);
  X509* signer = issuer != nullptr ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
  if (spec.is_ca) {
    addExt(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE");
    addExt(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    addExt(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE");
    addExt(cert.get(), signer, NID_key_usage, "critical,digitalSignature,keyEncipherment");
    if (!spec.extended_usage.empty()) {
      addExt(cert.get(), signer, NID_ext_key_usage, spec.extended_usage);
    }
  }
  addExt(cert.get(), signer, NID_subject_key_identifier, "hash");
  if (issuer != nullptr) {
    addExt(cert.get(), signer, NID_authority_key_identifier, "keyid:always");
  }
  if (!spec.san.empty()) {
    addExt(cert.get(), signer, NID_subject_alt_name, spec.san);
  }
  if (X509_sign(cert.get(), issuer_key != nullptr ? issuer_key : key, EVP_sha256()) == 0) {
    fail("X509_sign failed for " + spec.cn);
  }
  return cert;
}

void writeCert(const fs::path& path, X509* cert) {
  BIO* bio = BIO_new_file(psa::os::pathToUtf8(path).c_str(), "w");
  if (bio == nullptr || PEM_write_bio_X509(bio, cert) != 1) {
    BIO_free(bio);
    fail("cannot write " + path.string());
  }
  BIO_free(bio);
}

void writeKey(const fs::path& path, EVP_PKEY* key) {
  BIO* bio = BIO_new_file(psa::os::pathToUtf8(path).c_str(), "w");
  if (bio == nullptr ||
      PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    BIO_free(bio);
    fail("cannot write " + path.string());
  }
  BIO_free(bio);
  (void)os::restrictToOwner(path);
}

X509Ptr readCert(const fs::path& path) {
  BIO* bio = BIO_new_file(psa::os::pathToUtf8(path).c_str(), "r");
  if (bio == nullptr) {
    fail("cannot read " + path.string());
  }
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (cert == nullptr) {
    fail("cannot parse " + path.string());
  }
  return X509Ptr(cert);
}

PkeyPtr readKey(const fs::path& path) {
  BIO* bio = BIO_new_file(psa::os::pathToUtf8(path).c_str(), "r");
  if (bio == nullptr) {
    fail("cannot read " + path.string());
  }
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (key == nullptr) {
    fail("cannot parse " + path.string());
  }
  return PkeyPtr(key);
}

CertFiles makeCa(const fs::path& dir, const std::string& stem, const std::string& cn) {
  PkeyPtr key = newKey();
  CertSpec spec;
  spec.cn = cn;
  spec.is_ca = true;
  X509Ptr cert = issue(spec, key.get(), nullptr, nullptr);
  CertFiles files{dir / (stem + ".pem"), dir / (stem + ".key")};
  writeCert(files.cert, cert.get());
  writeKey(files.key, key.get());
  return files;
}

CertFiles makeLeaf(const fs::path& dir, const std::string& stem, const CertSpec& spec,
                   const CertFiles& ca) {
  X509Ptr ca_cert = readCert(ca.cert);
  PkeyPtr ca_key = readKey(ca.key);
  PkeyPtr key = newKey();
  X509Ptr cert = issue(spec, key.get(), ca_cert.get(), ca_key.get());
  CertFiles files{dir / (stem + ".pem"), dir / (stem + ".key")};
  writeCert(files.cert, cert.get());
  writeKey(files.key, key.get());
  return files;
}

std::string safeStem(const std::string& identity) {
  std::string s;
  for (char c : identity) {
    s.push_back((std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_') ? c
                                                                                           : '_');
  }
  return s;
}

CertSpec serverSpec() {
  CertSpec server;
  server.cn = "localhost";
  server.san = "DNS:localhost,IP:127.0.0.1";
  server.extended_usage = "serverAuth";
  return server;
}

}  // namespace

TlsMaterial::TlsMaterial(fs::path dir) : dir_(std::move(dir)) {
  fs::create_directories(dir_);
  ca_ = makeCa(dir_, "ca", "psa-test-ca");
  other_ca_ = makeCa(dir_, "other-ca", "psa-unrelated-ca");

  CertSpec server = serverSpec();
  server_ = makeLeaf(dir_, "server", server, ca_);

  CertSpec expired = server;
  expired.not_before_s = -30L * 24 * 3600;
  expired.not_after_s = -24L * 3600;
  server_expired_ = makeLeaf(dir_, "server-expired", expired, ca_);

  CertSpec wrong = server;
  wrong.cn = "wrong-host.example";
  wrong.san = "DNS:wrong-host.example";
  server_wrong_host_ = makeLeaf(dir_, "server-wrong-host", wrong, ca_);
}

const CertFiles& TlsMaterial::serverFor(const std::string& dns_name) {
  auto it = named_servers_.find(dns_name);
  if (it != named_servers_.end()) {
    return it->second;
  }
  CertSpec spec = serverSpec();
  spec.cn = dns_name;
  spec.san = "DNS:" + dns_name;
  const std::string stem = "server-for-" + std::to_string(named_servers_.size());
  return named_servers_[dns_name] = makeLeaf(dir_, stem, spec, ca_);
}

const CertFiles& TlsMaterial::client(const std::string& identity) {
  auto it = clients_.find(identity);
  if (it != clients_.end()) {
    return it->second;
  }
  CertSpec spec;
  spec.cn = identity;
  spec.extended_usage = "clientAuth";
  return clients_[identity] = makeLeaf(dir_, "client-" + safeStem(identity), spec, ca_);
}

const CertFiles& TlsMaterial::clientFromOtherCa(const std::string& identity) {
  auto it = foreign_clients_.find(identity);
  if (it != foreign_clients_.end()) {
    return it->second;
  }
  CertSpec spec;
  spec.cn = identity;
  spec.extended_usage = "clientAuth";
  return foreign_clients_[identity] =
             makeLeaf(dir_, "foreign-client-" + safeStem(identity), spec, other_ca_);
}

const CertFiles& TlsMaterial::serverExpiringIn(int days) {
  const std::string stem = "server-expiring-" + std::to_string(days) + "d";
  auto it = expiring_.find(stem);
  if (it != expiring_.end()) {
    return it->second;
  }
  CertSpec spec = serverSpec();
  spec.not_after_s = static_cast<long>(days) * 24 * 3600;
  return expiring_[stem] = makeLeaf(dir_, stem, spec, ca_);
}

const CertFiles& TlsMaterial::clientExpiringIn(const std::string& identity, int days) {
  const std::string stem =
      "client-" + safeStem(identity) + "-expiring-" + std::to_string(days) + "d";
  auto it = expiring_.find(stem);
  if (it != expiring_.end()) {
    return it->second;
  }
  CertSpec spec;
  spec.cn = identity;
  spec.extended_usage = "clientAuth";
  spec.not_after_s = static_cast<long>(days) * 24 * 3600;
  return expiring_[stem] = makeLeaf(dir_, stem, spec, ca_);
}

namespace {

ClientKey writeKey(EVP_PKEY* key, const fs::path& dir, const std::string& name) {
  if (key == nullptr) {
    throw std::runtime_error("key generation failed");
  }
  ClientKey out{dir / (name + ".key.pem"), dir / (name + ".pub.pem")};
  BIO* bio = BIO_new_file(psa::os::pathToUtf8(out.private_pem).c_str(), "w");
  const bool wrote_private = bio != nullptr && PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr,
                                                                        0, nullptr, nullptr) == 1;
  BIO_free(bio);
  if (!wrote_private) {
    throw std::runtime_error("cannot write private key");
  }
  (void)psa::os::restrictToOwner(out.private_pem);
  bio = BIO_new_file(psa::os::pathToUtf8(out.public_pem).c_str(), "w");
  const bool wrote_public = bio != nullptr && PEM_write_bio_PUBKEY(bio, key) == 1;
  BIO_free(bio);
  if (!wrote_public) {
    throw std::runtime_error("cannot write public key");
  }
  EVP_PKEY_free(key);
  return out;
}

}  // namespace

ClientKey makeRsaClientKey(const fs::path& dir, const std::string& name) {
  return writeKey(EVP_RSA_gen(2048), dir, name);
}

ClientKey makeEcP384ClientKey(const fs::path& dir, const std::string& name) {
  return writeKey(EVP_EC_gen("P-384"), dir, name);
}

}  // namespace psa::test
