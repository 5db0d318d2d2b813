#include <vector>

#include "psa/store/os/win32.h"

namespace psa::os::win {

std::wstring widen(std::string_view utf8) {
  if (utf8.empty()) {
    return {};
  }
  const int n =
      ::MultiByteToWideChar(CP_UTF8, 0, utf8.data(), static_cast<int>(utf8.size()), nullptr, 0);
  std::wstring out(static_cast<size_t>(n > 0 ? n : 0), L'\0');
  if (n > 0) {
    ::MultiByteToWideChar(CP_UTF8, 0, utf8.data(), static_cast<int>(utf8.size()), out.data(), n);
  }
  return out;
}

std::string narrow(std::wstring_view utf16) {
  if (utf16.empty()) {
    return {};
  }
  const int n = ::WideCharToMultiByte(CP_UTF8, 0, utf16.data(), static_cast<int>(utf16.size()),
                                      nullptr, 0, nullptr, nullptr);
  std::string out(static_cast<size_t>(n > 0 ? n : 0), '\0');
  if (n > 0) {
    ::WideCharToMultiByte(CP_UTF8, 0, utf16.data(), static_cast<int>(utf16.size()), out.data(), n,
                          nullptr, nullptr);
  }
  return out;
}

std::string errorText(DWORD code) {
  LocalPtr<wchar_t*> buf;
  const DWORD n = ::FormatMessageW(
      FORMAT_MESSAGE_ALLOCATE_BUFFER | FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS,
      nullptr, code, MAKELANGID(LANG_NEUTRAL, SUBLANG_DEFAULT), reinterpret_cast<LPWSTR>(buf.out()),
      0, nullptr);
  std::string text = n > 0 ? narrow(std::wstring_view(buf.get(), n)) : std::string();
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.pop_back();
  }
  if (text.empty()) {
    text = "Windows error";
  }
  return text + " (error " + std::to_string(code) + ")";
}

std::string currentUserSid() {
  HANDLE raw = nullptr;
  if (!::OpenProcessToken(::GetCurrentProcess(), TOKEN_QUERY, &raw)) {
    return {};
  }
  UniqueHandle token(raw);
  DWORD size = 0;
  ::GetTokenInformation(token.get(), TokenUser, nullptr, 0, &size);
  std::vector<unsigned char> buf(size);
  if (size == 0 || !::GetTokenInformation(token.get(), TokenUser, buf.data(), size, &size)) {
    return {};
  }
  const auto* user = reinterpret_cast<const TOKEN_USER*>(buf.data());
  LocalPtr<wchar_t*> text;
  if (!::ConvertSidToStringSidW(user->User.Sid, text.out())) {
    return {};
  }
  return narrow(text.get());
}

std::string accountName(const std::string& sid) {
  LocalPtr<PSID> psid;
  if (!::ConvertStringSidToSidW(widen(sid).c_str(), psid.out())) {
    return sid;
  }
  wchar_t name[256];
  wchar_t domain[256];
  DWORD name_len = 256;
  DWORD domain_len = 256;
  SID_NAME_USE use{};
  if (!::LookupAccountSidW(nullptr, psid.get(), name, &name_len, domain, &domain_len, &use)) {
    return sid;
  }
  std::string out = narrow(std::wstring_view(domain, domain_len));
  if (!out.empty()) {
    out += "\\";
  }
  return out + narrow(std::wstring_view(name, name_len));
}

std::string serviceAccountSid() {
  unsigned char sid[SECURITY_MAX_SID_SIZE];
  DWORD sid_len = sizeof sid;
  wchar_t domain[256];
  DWORD domain_len = 256;
  SID_NAME_USE use{};
  if (!::LookupAccountNameW(nullptr, L"NT SERVICE\\pms-agent", sid, &sid_len, domain, &domain_len,
                            &use)) {
    return {};
  }
  LocalPtr<wchar_t*> text;
  if (!::ConvertSidToStringSidW(sid, text.out())) {
    return {};
  }
  return narrow(text.get());
}

std::wstring ownerOnlySddl(bool directory) {
  // P: protected (nothing inherited from the parent). OICI: files and folders created inside
  // inherit the same entries.
  const std::wstring flags = directory ? L"OICI" : L"";
  std::wstring sddl = L"D:P(A;" + flags + L";FA;;;SY)(A;" + flags + L";FA;;;BA)";
  for (const std::string& sid : {currentUserSid(), serviceAccountSid()}) {
    if (!sid.empty() && sid != "S-1-5-18" && sid != "S-1-5-32-544") {
      sddl += L"(A;" + flags + L";FA;;;" + widen(sid) + L")";
    }
  }
  return sddl;
}

}  // namespace psa::os::win
