// Moving a queue to another server with `pms-agent keys export` / `keys import`: refused while
// the agent runs, the export is private and audited, the imported keys decrypt the moved queue
// (payloads revealed through the new server's agent), and keys that do not open a queue change
// nothing.
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "ops_harness.h"

namespace psa::test {
namespace {

namespace fs = std::filesystem;

// An entry `action` by this process's uid.
bool hasAudit(const fs::path& state, const std::string& action) {
  for (const auto& e : auditEntriesOf(state)) {
    if (e.action == action && e.actor == "uid:" + std::to_string(::getuid())) {
      return true;
    }
  }
  return false;
}

TEST(OpsKeys, ExportThenImportMovesTheQueueToAnotherServer) {
  TempDir tmp("psa-ops-keys");
  const std::string marker = uniqueMarker();
  const fs::path old_state = tmp / "old";
  const Prefilled pre = prefillStore(old_state, 12, 0, marker);
  const fs::path exported = tmp / "moving" / "keys.txt";
  fs::create_directories(exported.parent_path());

  AgentProcess old_agent(old_state, baseConfig());
  ASSERT_TRUE(old_agent.start()) << old_agent.log();
  auto r = old_agent.cli({"keys", "export", "--out", exported.string()});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("the agent is running; stop it first"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(exported));
  ASSERT_EQ(old_agent.stop(), 0);

  r = old_agent.cli({"keys", "export", "--out", exported.string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.rfind("OK    keys export", 0), 0u) << r.output;
  struct stat st {};
  ASSERT_EQ(::stat(exported.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const std::string keys = readFile(exported);
  EXPECT_NE(keys.find("\nkey 1 "), std::string::npos);
  EXPECT_TRUE(filesContaining(old_agent.logFile(), "key 1 ").empty()) << "no key in the log";
  EXPECT_TRUE(hasAudit(old_state, "cli.keys.export"));

  // The new server: the queue copied over, a key file that is not the old one.
  const fs::path new_state = tmp / "new";
  fs::create_directories(new_state);
  for (const char* f : {"queue.db", "queue.db-wal"}) {
    if (fs::exists(old_state / f)) {
      fs::copy_file(old_state / f, new_state / f);
    }
  }
  AgentProcess new_agent(new_state, baseConfig());
  new_agent.writeConfig();
  r = new_agent.cli({"keys", "import", exported.string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.rfind("OK    keys import", 0), 0u) << r.output;
  ASSERT_EQ(::stat((new_state / "queue.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_TRUE(new_agent.start()) << new_agent.log();
  r = new_agent.cli({"queue", "show", pre.queued.front(), "--reveal"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(marker), std::string::npos) << "the moved record decrypts";
  EXPECT_EQ(new_agent.stop(), 0);
  EXPECT_TRUE(hasAudit(new_state, "cli.keys.import"));
}

TEST(OpsKeys, KeysThatDoNotOpenTheQueueChangeNothing) {
  TempDir tmp("psa-ops-keys");
  const std::string marker = uniqueMarker();
  prefillStore(tmp / "a", 3, 0, marker);
  prefillStore(tmp / "b", 3, 0, marker);  // another queue, another key
  AgentProcess a(tmp / "a", baseConfig());
  a.writeConfig();
  ASSERT_EQ(a.cli({"keys", "export", "--out", (tmp / "a-keys.txt").string()}).exit_code, 0);
  const std::string before = readFile(tmp / "b" / "queue.key");
  AgentProcess b(tmp / "b", baseConfig());
  b.writeConfig();
  auto r = b.cli({"keys", "import", (tmp / "a-keys.txt").string()});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("do not open the queue"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("nothing was changed"), std::string::npos) << r.output;
  EXPECT_EQ(readFile(tmp / "b" / "queue.key"), before);
  EXPECT_FALSE(fs::exists(tmp / "b" / "queue.key.import"));
  psa::test::writeFile(tmp / "junk.txt", "not a key file\n");
  r = b.cli({"keys", "import", (tmp / "junk.txt").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("junk.txt line 1: expected 'key <id> <64 hex digits>'"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(readFile(tmp / "b" / "queue.key"), before);
}

}  // namespace
}  // namespace psa::test
