// Windows keeps its trusted roots in the "ROOT" system store, not in files OpenSSL could read:
// copy each certificate into the context's X509_STORE. (Windows may fetch a root it lacks on
// demand while CryptoAPI builds a chain; OpenSSL cannot trigger that, so a site whose root is
// missing from the store sets ca_file.)
//
// Order matters: wincrypt.h needs windows.h first and must come before OpenSSL's headers (they
// #undef the names it defines as macros, X509_NAME among them).
// clang-format off
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX  // mingw's libstdc++ defines it already (the project-wide -include utility)
#define NOMINMAX
#endif
#include <windows.h>
#include <wincrypt.h>

#include <openssl/err.h>
#include <openssl/x509.h>
// clang-format on

#include <string>

#include "system_trust.h"

namespace psa::adapters::api {
namespace {

// GetLastError() in words (UTF-8), e.g. "Access is denied. (5)".
std::string lastErrorText(DWORD code) {
  wchar_t* buf = nullptr;
  const DWORD n = FormatMessageW(
      FORMAT_MESSAGE_ALLOCATE_BUFFER | FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS,
      nullptr, code, 0, reinterpret_cast<wchar_t*>(&buf), 0, nullptr);
  std::string text;
  if (n > 0 && buf != nullptr) {
    const int len =
        WideCharToMultiByte(CP_UTF8, 0, buf, static_cast<int>(n), nullptr, 0, nullptr, nullptr);
    if (len > 0) {
      text.resize(static_cast<size_t>(len));
      WideCharToMultiByte(CP_UTF8, 0, buf, static_cast<int>(n), text.data(), len, nullptr, nullptr);
    }
  }
  if (buf != nullptr) {
    LocalFree(buf);
  }
  while (!text.empty() &&
         (text.back() == '\n' || text.back() == '\r' || text.back() == ' ' || text.back() == '.')) {
    text.pop_back();
  }
  return (text.empty() ? std::string("error") : text) + " (" + std::to_string(code) + ")";
}

// Owns an HCERTSTORE.
class CertStore {
 public:
  explicit CertStore(HCERTSTORE handle) : handle_(handle) {}
  ~CertStore() {
    if (handle_ != nullptr) {
      CertCloseStore(handle_, 0);
    }
  }
  CertStore(const CertStore&) = delete;
  CertStore& operator=(const CertStore&) = delete;
  HCERTSTORE get() const { return handle_; }

 private:
  HCERTSTORE handle_;
};

}  // namespace

Status loadSystemTrust(SSL_CTX* ctx) {
  CertStore store(CertOpenSystemStoreW(0, L"ROOT"));
  if (store.get() == nullptr) {
    return Error(Errc::io, "cannot open the Windows ROOT certificate store: " +
                               lastErrorText(GetLastError()));
  }
  X509_STORE* trusted = SSL_CTX_get_cert_store(ctx);
  size_t added = 0;
  // CertEnumCertificatesInStore frees the context it is given and returns the next one; the
  // last call returns null having freed the final one, so nothing is left to free.
  PCCERT_CONTEXT cert = nullptr;
  while ((cert = CertEnumCertificatesInStore(store.get(), cert)) != nullptr) {
    const unsigned char* der = cert->pbCertEncoded;
    X509* x509 = d2i_X509(nullptr, &der, static_cast<long>(cert->cbCertEncoded));
    if (x509 == nullptr) {
      continue;  // a certificate OpenSSL cannot parse: skip it, the others still count
    }
    if (X509_STORE_add_cert(trusted, x509) == 1) {
      ++added;
    }
    X509_free(x509);  // the store holds its own reference
  }
  ERR_clear_error();  // unparsable or duplicate certificates left errors on the queue
  if (added == 0) {
    return Error(Errc::io,
                 "the Windows ROOT certificate store has no certificate OpenSSL can use; set "
                 "ca_file");
  }
  return {};
}

}  // namespace psa::adapters::api
