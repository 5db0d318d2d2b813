// The key file's protection on Windows: DPAPI (machine scope) around the key text, and an ACL of
// SYSTEM, Administrators and the service account; a key file other users may read is refused
// with the icacls command that fixes it.
#include <gtest/gtest.h>

#include "psa/store/os/durable_file.h"
#include "psa/store/os/secret_file.h"
#include "psa/store/os/win32.h"
#include "psa/store/sqlite_store.h"
#include "store_test_helpers.h"
#include "test_support.h"

namespace psa::store {
namespace {

using testing::appendOne;
using testing::openOk;
using testing::optionsIn;
namespace fs = std::filesystem;

TEST(StoreSecurityWin, KeyFileIsDpapiSealedAtRest) {
  psa::test::TempDir dir;
  auto store = openOk(optionsIn(dir));
  ASSERT_TRUE(store);
  const std::string id = appendOne(*store, "sealed");
  store.reset();
  const std::string raw = psa::test::readFile(dir / "queue.key");
  EXPECT_EQ(raw.rfind("pms-agent-dpapi-v1\n", 0), 0u) << "the key file is DPAPI-protected";
  EXPECT_EQ(raw.find("key 1 "), std::string::npos) << "no key in clear on disk";
  EXPECT_NE(testing::keyFileText(dir / "queue.key").find("\nkey 1 "), std::string::npos);
  auto again = openOk(optionsIn(dir));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->reveal(id)->reveal(), "sealed");
}

TEST(StoreSecurityWin, PlainKeyFileIsAcceptedAndResealedAtRotation) {
  psa::test::TempDir dir;
  { openOk(optionsIn(dir)); }
  const std::string plain = testing::keyFileText(dir / "queue.key");
  // As a copied Linux key file: the text in clear, the file private to this user.
  ASSERT_TRUE(os::writeFileDurably(dir / "queue.key", plain, os::FileAccess::owner_only).ok());
  auto store = openOk(optionsIn(dir));
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->rotateKey().ok());
  EXPECT_EQ(psa::test::readFile(dir / "queue.key").rfind("pms-agent-dpapi-v1\n", 0), 0u);
}

TEST(StoreSecurityWin, KeyFileUsersMayReadIsRefused) {
  psa::test::TempDir dir;
  { openOk(optionsIn(dir)); }
  const fs::path key = dir / "queue.key";
  // Grant BUILTIN\Users read access, as a careless copy into a shared folder would.
  os::win::LocalPtr<PSECURITY_DESCRIPTOR> sd;
  ASSERT_TRUE(::ConvertStringSecurityDescriptorToSecurityDescriptorW(
      L"D:P(A;;FA;;;SY)(A;;FA;;;BA)(A;;FR;;;BU)", SDDL_REVISION_1, sd.out(), nullptr));
  BOOL present = FALSE;
  BOOL defaulted = FALSE;
  PACL dacl = nullptr;
  ASSERT_TRUE(::GetSecurityDescriptorDacl(sd.get(), &present, &dacl, &defaulted));
  std::wstring name = key.wstring();
  ASSERT_EQ(::SetNamedSecurityInfoW(name.data(), SE_FILE_OBJECT,
                                    DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
                                    nullptr, nullptr, dacl, nullptr),
            static_cast<DWORD>(ERROR_SUCCESS));
  const os::SecretFileInfo info = os::describeSecretFile(key);
  if (info.problem.empty()) {
    GTEST_SKIP() << "this file system keeps no ACLs (Wine without extended attributes): "
                 << info.permissions;
  }
  // Windows names BUILTIN\Users; Wine, which keeps ACLs as file modes, names Everyone.
  EXPECT_NE(info.problem.find(" may read it"), std::string::npos) << info.problem;
  auto r = SqliteStore::open(optionsIn(dir));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.error().is(Errc::key_file));
  EXPECT_NE(r.error().message.find("icacls"), std::string::npos) << r.error().message;
  // Private again (written as the store writes it: Wine, which keeps ACLs as file modes, does
  // not narrow an existing file's mode through SetNamedSecurityInfoW).
  const std::string text = psa::test::readFile(key);
  fs::remove(key);
  ASSERT_TRUE(os::writeFileDurably(key, text, os::FileAccess::owner_only).ok());
  EXPECT_EQ(os::describeSecretFile(key).problem, "");
  auto fixed = SqliteStore::open(optionsIn(dir));
  EXPECT_TRUE(fixed.ok()) << (fixed ? "" : fixed.error().describe());
}

}  // namespace
}  // namespace psa::store
