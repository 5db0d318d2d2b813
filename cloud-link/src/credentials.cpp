#include "credentials.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>

#include "psa/store/os/utf8_path.h"
#include "psa/store/os/secret_file.h"

namespace psa::cloudlink::detail {

CredentialSources credentialSources(const CloudLinkOptions& o) {
  return CredentialSources{o.username, o.password_file, o.username_from_certificate, o.cert_file};
}

Result<std::string> certificateCommonName(const std::filesystem::path& cert_file) {
  std::unique_ptr<BIO, decltype(&BIO_free)> in(
      BIO_new_file(os::pathToUtf8(cert_file).c_str(), "r"), &BIO_free);
  if (!in) {
    ERR_clear_error();
    return Error(Errc::io, "cannot read cloud.cert_file " + cert_file.string());
  }
  std::unique_ptr<X509, decltype(&X509_free)> cert(
      PEM_read_bio_X509(in.get(), nullptr, nullptr, nullptr), &X509_free);
  ERR_clear_error();
  if (!cert) {
    return Error(Errc::invalid_input,
                 "cloud.cert_file " + cert_file.string() + " holds no PEM certificate");
  }
  X509_NAME* subject = X509_get_subject_name(cert.get());
  const int at = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (at < 0) {
    return Error(Errc::invalid_input,
                 "cloud.username_from_certificate: the certificate's subject has no common name");
  }
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, at));
  unsigned char* utf8 = nullptr;
  const int n = ASN1_STRING_to_UTF8(&utf8, data);
  if (n <= 0) {
    return Error(Errc::invalid_input,
                 "cloud.username_from_certificate: the certificate's common name is not text");
  }
  std::string cn(reinterpret_cast<const char*>(utf8), static_cast<size_t>(n));
  OPENSSL_free(utf8);
  return cn;
}

Result<MqttCredentials> loadCredentials(const CredentialSources& s) {
  MqttCredentials out;
  if (s.username_from_certificate) {
    auto cn = certificateCommonName(s.cert_file);
    if (!cn) {
      return cn.error();
    }
    out.username = std::move(cn).value();
  } else if (!s.username.empty()) {
    out.username = s.username;
  }
  if (!s.password_file.empty()) {
    if (auto st = os::checkSecretFile(s.password_file, "cloud.password_file"); !st) {
      return st.error();
    }
    auto password = os::readSecretLine(s.password_file);
    if (!password) {
      return Error(password.error().code,
                   "cloud.password_file " + s.password_file.string() + ": " +
                       password.error().message);
    }
    out.password = std::move(password).value();
  }
  return out;
}

}  // namespace psa::cloudlink::detail
