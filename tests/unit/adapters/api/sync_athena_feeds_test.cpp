// The athena-feeds strategy against an in-process athenahealth and the real store: subscribe
// before the initial list, list once (peeking at the feed's tombstones without consuming it),
// then drain the consume-on-read feed, replaying a consuming read whose answer was lost.
#include "rest_sync_fixture.h"

namespace psa::test {
namespace {

constexpr const char* kBase = "https://pms.test/v1/195900";

std::string patient(const std::string& id) {
  return R"({"patientid":")" + id + R"(","lastmodified":"01/01/2023 10:00:00"})";
}

struct Athena {
  bool feed_answer_lost = false;  // the next consuming read's answer never arrives
  std::string changed = patient("4");
  int consuming_reads = 0;
  int replays = 0;

  api::HttpResponse operator()(const api::HttpRequest& r) {
    const std::string base = kBase;
    if (r.method == "POST" && r.url == base + "/patients/changed/subscription") {
      return ok(R"({"status":"ACTIVE"})");
    }
    if (r.url.rfind(base + "/patients/changed?", 0) == 0) {
      if (api::queryParam(r.url, "leaveunprocessed") == "true") {
        return ok(R"({"patients":[],"totalcount":0})");
      }
      if (!api::queryParam(r.url, "showprocessedstartdatetime").empty()) {
        ++replays;
        return ok(R"({"patients":[)" + changed + "]}");
      }
      ++consuming_reads;
      if (feed_answer_lost) {
        feed_answer_lost = false;
        return api::HttpResponse{502, {}, ""};  // consumed on the server, answer lost
      }
      return ok(R"({"patients":[]})");
    }
    if (r.url == base + "/patients?limit=2") {
      return ok(R"({"patients":[)" + patient("1") + "," + patient("2") +
                R"(],"next":"/v1/195900/patients?limit=2&offset=2","totalcount":3})");
    }
    if (r.url == base + "/patients?limit=2&offset=2") {
      return ok(R"({"patients":[)" + patient("3") + R"(],"totalcount":3})");
    }
    return api::HttpResponse{404, {}, R"({"error":"no such path"})"};
  }
};

TEST(SyncAthenaFeeds, SubscribesListsOnceThenReplaysALostConsumingRead) {
  StrategyHarness h("athenahealth", std::string(R"({"name":"ath","base_url":")") + kBase +
                                        R"(","collections":["patients"],"page_size":2})");
  Athena athena;
  h.vendor().answer = [&](const api::HttpRequest& r) { return athena(r); };
  ASSERT_TRUE(h.run());
  const auto seen = h.vendor().seen();
  ASSERT_GE(seen.size(), 4u);
  // Subscribed first, so changes made while listing wait in the feed.
  EXPECT_EQ(seen[0].method, "POST");
  EXPECT_EQ(seen[0].url, std::string(kBase) + "/patients/changed/subscription");
  for (const auto& r : seen) {  // the initial load never consumes the feed
    if (r.url.find("/changed?") != std::string::npos) {
      EXPECT_EQ(api::queryParam(r.url, "leaveunprocessed"), "true") << r.url;
    }
  }
  EXPECT_EQ(h.host().carried.size(), 3u);
  EXPECT_EQ(h.watermark("athena:initial"), "1");
  EXPECT_EQ(h.watermark("athena:subscribed:patients"), "1");
  EXPECT_EQ(h.watermark("athena:listed:patients"), std::nullopt);
  EXPECT_EQ(athena.consuming_reads, 0);

  // The next pass drains the feed; its first answer is lost after the server consumed it.
  athena.feed_answer_lost = true;
  h.vendor().clearSeen();
  ASSERT_TRUE(h.run());
  EXPECT_EQ(athena.consuming_reads, 2);
  EXPECT_EQ(athena.replays, 1);
  std::string replay_from;
  for (const auto& url : h.vendor().urls()) {
    if (const auto v = api::queryParam(url, "showprocessedstartdatetime"); !v.empty()) {
      replay_from = v;
    }
  }
  // From the last good server time, minus 2 s and the overlap, in athena's local format.
  EXPECT_EQ(replay_from, h.serverMinus(4, "%m/%d/%Y %H:%M:%S"));
  ASSERT_EQ(h.host().carried.size(), 4u);
  EXPECT_NE(h.host().payloads().back().find(R"("patientid":"4")"), std::string::npos);
  EXPECT_EQ(h.watermark("athena:inflight:patients"), std::nullopt);
}

TEST(SyncAthenaFeeds, AFailedConsumingReadLeavesTheReplayPointForTheNextPass) {
  StrategyHarness h("athenahealth", std::string(R"({"name":"ath","base_url":")") + kBase +
                                        R"(","collections":["patients"],"page_size":2})");
  Athena athena;
  h.vendor().answer = [&](const api::HttpRequest& r) { return athena(r); };
  ASSERT_TRUE(h.run());
  h.vendor().answer = [](const api::HttpRequest&) { return api::HttpResponse{503, {}, ""}; };
  auto st = h.run();
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("the feed keeps what was not applied"), std::string::npos)
      << st.error().message;
  EXPECT_EQ(h.watermark("athena:inflight:patients"), h.serverMinus(4, "%m/%d/%Y %H:%M:%S"));

  h.vendor().answer = [&](const api::HttpRequest& r) { return athena(r); };
  ASSERT_TRUE(h.run());
  EXPECT_EQ(athena.replays, 1);  // the pending replay runs first
  EXPECT_EQ(h.watermark("athena:inflight:patients"), std::nullopt);
  EXPECT_EQ(h.host().carried.size(), 4u);
}

}  // namespace
}  // namespace psa::test
