// The file-drop adapter on Windows: a file the PMS still holds open for writing (a sharing
// violation for our read-only, write-denying open) is never read half-written; it is taken,
// whole, once the writer closes it.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include "file_drop_env.h"
#include "psa/adapters/source.h"
#include "psa/store/os/win32.h"
#include "test_support.h"

namespace adapters = psa::adapters;
using file_drop_test::Env;
using namespace std::chrono_literals;

namespace {

const adapters::SourceFactory& fileDrop() {
  static adapters::SourceRegistry registry = [] {
    adapters::SourceRegistry r;
    adapters::registerBuiltinSources(r);
    return r;
  }();
  return *registry.find("file-drop");
}

bool writeAll(HANDLE h, std::string_view data) {
  DWORD wrote = 0;
  return ::WriteFile(h, data.data(), static_cast<DWORD>(data.size()), &wrote, nullptr) &&
         wrote == data.size();
}

}  // namespace

TEST(FileDropSourceWin, FileStillOpenForWritingIsTakenWholeOnceClosed) {
  Env env;
  adapters::SourceContext ctx{env.io, *env.store, psa::Clock::system(), env.tmp.path()};
  auto src = fileDrop().create(env.config(), ctx);
  ASSERT_TRUE(src.ok()) << src.error().message;
  auto& s = **src;
  ASSERT_TRUE(s.start().ok());
  // The PMS opens the export for writing and lets others read, as exporters do.
  const std::filesystem::path file = env.inbox / "visits.csv";
  psa::os::win::UniqueHandle writer(::CreateFileW(file.c_str(), GENERIC_WRITE,
                                                  FILE_SHARE_READ | FILE_SHARE_DELETE, nullptr,
                                                  CREATE_NEW, FILE_ATTRIBUTE_NORMAL, nullptr));
  ASSERT_TRUE(writer.valid());
  ASSERT_TRUE(writeAll(writer.get(), "Id,Name\r\n1,A\r\n"));
  // Size and time stay put past stable_ms, so only the sharing violation holds the file back.
  ASSERT_TRUE(psa::test::waitFor([&] { return s.status().counters["files_busy"] >= 2; }, 30s));
  EXPECT_EQ(s.status().counters["files_ingested"], 0u);
  EXPECT_EQ(s.status().counters["records"], 0u);
  ASSERT_TRUE(writeAll(writer.get(), "2,B\r\n3,C\r\n"));
  writer.reset();
  ASSERT_TRUE(psa::test::waitFor([&] { return s.status().counters["files_ingested"] == 1; }, 30s));
  EXPECT_EQ(s.status().counters["records"], 3u) << "all rows, not the half written first";
  std::atomic<int> stopped{0};
  s.stop([&] { ++stopped; });
  ASSERT_TRUE(psa::test::waitFor([&] { return stopped == 1; }, 10s));
}
