// The since-list strategy (DrChrono, NextGen) against an in-process vendor and the real store:
// next-link paging with the server-time watermark, resuming a listing from its cursor, OData
// keyset paging, and reconciliation carrying each vanished record exactly once.
#include <algorithm>
#include <set>

#include "rest_sync_fixture.h"

namespace psa::test {
namespace {

constexpr const char* kIsoFormat = "%Y-%m-%dT%H:%M:%S";

TEST(SyncSinceList, PagesByNextLinkAndTakesTheWatermarkFromTheServerClock) {
  StrategyHarness h("drchrono", R"({"name":"drc","base_url":"https://pms.test/api/",
                                    "collections":["patients"],"page_size":2})");
  const std::string page2 = "https://pms.test/api/patients?page=2&page_size=2";
  h.vendor().answer = [&](const api::HttpRequest& r) {
    if (r.url == page2) {
      return ok(R"({"results":[{"id":3,"updated_at":"x","deleted_flag":true}],"next":null})");
    }
    return ok(R"({"results":[{"id":1,"updated_at":"x"},{"id":2,"updated_at":"x"}],"next":")" +
              page2 + R"("})");
  };
  ASSERT_TRUE(h.run());
  const auto urls = h.vendor().urls();
  ASSERT_EQ(urls.size(), 2u);
  EXPECT_EQ(urls[0], "https://pms.test/api/patients?page_size=2");  // no `since` on the first run
  EXPECT_EQ(urls[1], page2);
  EXPECT_EQ(h.vendor().seen()[0].method, "GET");
  EXPECT_EQ(api::findHeader(h.vendor().seen()[0].headers, "Accept"), "application/json");
  EXPECT_EQ(h.host().carried.size(), 3u);
  EXPECT_EQ(h.host().counts["deletions"], 1u);  // the tombstone
  EXPECT_EQ(h.host().counts["c:patients"], 3u);
  // Server time minus one second and the 2 s overlap; the cursor is gone with the listing.
  EXPECT_EQ(h.watermark("since:patients"), h.serverMinus(3, kIsoFormat));
  EXPECT_EQ(h.watermark("cursor:patients"), std::nullopt);

  // The next run asks for what changed since then; the same bytes again are duplicates.
  h.vendor().clearSeen();
  h.vendor().answer = [](const api::HttpRequest&) {
    return ok(R"({"results":[{"id":1,"updated_at":"x"}],"next":null})");
  };
  ASSERT_TRUE(h.run());
  ASSERT_EQ(h.vendor().urls().size(), 1u);
  EXPECT_EQ(api::queryParam(h.vendor().urls()[0], "since"), h.serverMinus(3, kIsoFormat));
  EXPECT_EQ(h.host().carried.size(), 3u);
}

TEST(SyncSinceList, AFailedPageLeavesTheWatermarkAndTheNextRunResumesAtItsCursor) {
  StrategyHarness h("drchrono", R"({"name":"drc","base_url":"https://pms.test/api",
                                    "collections":["patients"],"page_size":2})");
  const std::string page2 = "https://pms.test/api/patients?page=2&page_size=2";
  bool broken = true;
  h.vendor().answer = [&](const api::HttpRequest& r) {
    if (r.url == page2) {
      return broken ? api::HttpResponse{500, {}, "{}"}
                    : ok(R"({"results":[{"id":3,"updated_at":"x"}],"next":null})");
    }
    return ok(R"({"results":[{"id":1,"updated_at":"x"},{"id":2,"updated_at":"x"}],"next":")" +
              page2 + R"("})");
  };
  auto st = h.run();
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("patients watermark unchanged"), std::string::npos)
      << st.error().message;
  EXPECT_EQ(h.watermark("since:patients"), std::nullopt);
  const auto cursor = api::Cursor::decode(h.watermark("cursor:patients").value_or(""));
  EXPECT_EQ(cursor.url, page2);
  EXPECT_EQ(cursor.run_wm, h.serverMinus(3, kIsoFormat));
  EXPECT_EQ(h.host().carried.size(), 2u);

  broken = false;
  h.vendor().clearSeen();
  ASSERT_TRUE(h.run());
  EXPECT_EQ(h.vendor().urls(), std::vector<std::string>{page2});
  EXPECT_EQ(h.host().carried.size(), 3u);
  EXPECT_EQ(h.watermark("since:patients"), h.serverMinus(3, kIsoFormat));
}

// NextGen's persons: keyset pages ($orderby id, "id gt '<last>'" merged into the since filter).
class NextGenPersons {
 public:
  std::set<std::string> live = {"a", "b", "c"};

  api::HttpResponse operator()(const api::HttpRequest& r) const {
    const std::string filter = api::queryParam(r.url, "$filter");
    std::string after;
    if (auto pos = filter.find("personId gt '"); pos != std::string::npos) {
      after = filter.substr(pos + 13, filter.find('\'', pos + 13) - pos - 13);
    }
    std::string items;
    size_t n = 0;
    for (const auto& id : live) {
      if (id > after && n < 2) {
        items += std::string(n++ == 0 ? "" : ",") + R"({"personId":")" + id +
                 R"(","modifyTimestamp":"2023-01-01T00:00:00"})";
      }
    }
    return ok(R"({"items":[)" + items + "]}");
  }
};

TEST(SyncSinceList, KeysetPagingAndReconcileCarryEachVanishedRecordOnce) {
  StrategyHarness h("nextgen", R"({"name":"ng","base_url":"https://pms.test/ng",
                                   "collections":["persons"],"page_size":2,"reconcile_s":0})");
  NextGenPersons persons;
  h.vendor().answer = [&](const api::HttpRequest& r) { return persons(r); };
  ASSERT_TRUE(h.run());
  auto urls = h.vendor().urls();
  ASSERT_EQ(urls.size(), 2u);
  EXPECT_EQ(api::queryParam(urls[0], "$filter"),
            "modifyTimestamp ge datetime'1900-01-01T00:00:00'");
  EXPECT_EQ(api::queryParam(urls[0], "$orderby"), "personId asc");
  EXPECT_EQ(api::queryParam(urls[0], "$top"), "2");
  EXPECT_EQ(api::queryParam(urls[1], "$filter"),
            "(modifyTimestamp ge datetime'1900-01-01T00:00:00') and (personId gt 'b')");
  EXPECT_EQ(h.host().carried.size(), 3u);
  EXPECT_EQ(h.watermark("known:persons/b"), "1");
  EXPECT_TRUE(h.watermark("reconcile:last").has_value());  // loaded: the clock starts now

  persons.live.erase("b");
  ASSERT_TRUE(h.run());
  std::vector<std::string> deletions;
  for (const auto& p : h.host().payloads()) {
    if (p.find("psa_deleted") != std::string::npos) {
      deletions.push_back(p);
    }
  }
  ASSERT_EQ(deletions.size(), 1u);
  auto doc = json::parse(deletions[0]);
  ASSERT_TRUE(doc);
  EXPECT_EQ(doc->find("psa_deleted")->getString("collection"), "persons");
  EXPECT_EQ(doc->find("psa_deleted")->getString("id"), "b");
  EXPECT_EQ(h.watermark("known:persons/b"), std::nullopt);
  EXPECT_EQ(h.watermark("known:persons/a"), "1");

  const size_t carried = h.host().carried.size();
  ASSERT_TRUE(h.run());
  EXPECT_EQ(h.host().carried.size(), carried);  // nothing vanished since: no second deletion
}

}  // namespace
}  // namespace psa::test
