// What the agent and the upgrade helper hand each other (agent/src/upgrade_files.h), on real
// files: a request the helper would act on must name a staged file (never a path) and carry the
// signed command; events come back in the order written, survive as files until deleted, and
// a torn or foreign file is never mistaken for one.
#include "upgrade_files.h"

#include <gtest/gtest.h>

#include "psa/store/os/durable_file.h"
#include "test_support.h"

namespace psa::agent::upgrade {
namespace {

namespace fs = std::filesystem;

TEST(UpgradeFiles, InstallRequestRoundTripsAndNamesOnlyAStagedFile) {
  Request r;
  r.action = "install";
  r.command = "{\"payload\":\"x\",\"sig\":\"y\",\"key_id\":\"z\"}";
  r.package = "pms-agent_1.2.3.deb";
  r.requested_by = "cloud";
  r.at_ms = 42;
  auto back = requestFromJson(toJson(r));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->package, r.package);
  EXPECT_EQ(back->command, r.command);
  EXPECT_EQ(back->at_ms, 42);

  for (const char* bad : {"../etc/passwd", "/tmp/x.deb", "sub/x.deb", ".hidden", "a\\b.msi", ""}) {
    Request b = r;
    b.package = bad;
    auto parsed = requestFromJson(toJson(b));
    ASSERT_FALSE(parsed) << bad;
    EXPECT_TRUE(parsed.error().is(Errc::invalid_input));
    EXPECT_NE(parsed.error().message.find("package"), std::string::npos);
  }
  Request no_command = r;
  no_command.command.clear();
  EXPECT_FALSE(requestFromJson(toJson(no_command)));
  Request other = r;
  other.action = "format-disk";
  EXPECT_FALSE(requestFromJson(toJson(other)));
}

TEST(UpgradeFiles, RollbackRequestNeedsNoPackage) {
  Request r;
  r.action = "rollback";
  r.requested_by = "uid:0";
  auto back = requestFromJson(toJson(r));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->action, "rollback");
  EXPECT_EQ(back->requested_by, "uid:0");
}

TEST(UpgradeFiles, EventsComeBackInTheOrderWrittenAndIgnoreForeignFiles) {
  test::TempDir tmp("psa-upgrade-events");
  const fs::path dir = tmp.path() / "events";
  EXPECT_TRUE(pendingEvents(dir).empty());  // no directory yet: nothing, no error
  const char* stages[] = {kStageHealthCheck, kStageRolledBack, kStageUpgraded};
  for (int i = 0; i < 3; ++i) {
    Event e;
    e.id = "cmd-" + std::to_string(i);
    e.stage = stages[i];
    e.version = "1.0." + std::to_string(i);
    e.reason = i == 1 ? "health_check" : "";
    e.at_ms = 1'700'000'000'000;  // the same millisecond: the counter orders them
    ASSERT_TRUE(appendEvent(dir, e));
  }
  // A temporary file of an interrupted write and a stranger are not events.
  ASSERT_TRUE(os::writeFileDurably(dir / "x.json.tmp-99", "{", os::FileAccess::normal));
  ASSERT_TRUE(os::writeFileDurably(dir / "notes.txt", "hello", os::FileAccess::normal));
  const auto files = pendingEvents(dir);
  ASSERT_EQ(files.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    auto doc = readJsonObject(files[i]);
    ASSERT_TRUE(doc);
    const Event e = eventFromJson(*doc);
    EXPECT_EQ(e.id, "cmd-" + std::to_string(i));
    EXPECT_EQ(e.stage, stages[i]);
    EXPECT_EQ(e.version, "1.0." + std::to_string(i));
  }
  EXPECT_EQ(eventFromJson(*readJsonObject(files[1])).reason, "health_check");
}

TEST(UpgradeFiles, ReadJsonObjectRefusesWhatIsNotAnObject) {
  test::TempDir tmp("psa-upgrade-json");
  EXPECT_FALSE(readJsonObject(tmp.path() / "missing.json"));
  ASSERT_TRUE(os::writeFileDurably(tmp.path() / "a.json", "[1,2]", os::FileAccess::normal));
  EXPECT_FALSE(readJsonObject(tmp.path() / "a.json"));
  ASSERT_TRUE(os::writeFileDurably(tmp.path() / "b.json", "{\"cur", os::FileAccess::normal));
  EXPECT_FALSE(readJsonObject(tmp.path() / "b.json"));
  ASSERT_TRUE(os::writeFileDurably(tmp.path() / "c.json", "{\"current\":\"1.2\"}",
                                   os::FileAccess::normal));
  EXPECT_EQ(readJsonObject(tmp.path() / "c.json")->getString("current"), "1.2");
}

}  // namespace
}  // namespace psa::agent::upgrade
