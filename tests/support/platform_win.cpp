#include <stdlib.h>

#include "psa/store/os/win32.h"
#include "test_support.h"

namespace psa::test {

bool runningUnderWine() {
  const HMODULE ntdll = ::GetModuleHandleW(L"ntdll.dll");
  return ntdll != nullptr && ::GetProcAddress(ntdll, "wine_get_version") != nullptr;
}

void setEnvironment(const std::string& name, const std::string& value) {
  // The CRT's copy (getenv) and, through it, the process environment a child inherits.
  ::_putenv_s(name.c_str(), value.c_str());
}

}  // namespace psa::test
