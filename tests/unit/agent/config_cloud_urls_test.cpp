// cloud.urls through the real loader: several endpoints of one broker cluster in place of
// cloud.url (exactly one of the two), each checked like cloud.url, mapped onto the link's
// options; and remote config can set neither.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config_cloud_support.h"
#include "link_options.h"
#include "psa/agent/config.h"
#include "psa/cloudlink/cloud_link.h"

namespace psa::agent {
namespace {

using test::problems;

ConfigLoad loadCloud(const std::string& keys) { return test::loadCloudSection(keys, false); }

TEST(ConfigCloudUrls, SeveralEndpointsReachTheLink) {
  const ConfigLoad load =
      loadCloud(R"("urls":["mqtts://node-a.example:8883","mqtts://node-b.example:8884"])");
  ASSERT_TRUE(load.config) << problems(load);
  const CloudSettings& c = load.config->cloud;
  EXPECT_EQ(c.urls, (std::vector<std::string>{"mqtts://node-a.example:8883",
                                              "mqtts://node-b.example:8884"}));
  EXPECT_EQ(c.url, "mqtts://node-a.example:8883");  // what one-endpoint readers show
  const cloudlink::CloudLinkOptions o = linkOptions(*load.config);
  EXPECT_EQ(o.url, "");
  EXPECT_EQ(cloudlink::brokerUrls(o), c.urls);
  EXPECT_TRUE(cloudlink::validateOptions(o)) << cloudlink::validateOptions(o).error().message;
}

TEST(ConfigCloudUrls, OneUrlStaysAsItWas) {
  const ConfigLoad load = loadCloud(R"("url":"mqtts://cloud.example:8883")");
  ASSERT_TRUE(load.config) << problems(load);
  EXPECT_TRUE(load.config->cloud.urls.empty());
  const cloudlink::CloudLinkOptions o = linkOptions(*load.config);
  EXPECT_EQ(cloudlink::brokerUrls(o), std::vector<std::string>{"mqtts://cloud.example:8883"});
}

TEST(ConfigCloudUrls, ExactlyOneOfUrlAndUrlsAndEachChecked) {
  EXPECT_NE(problems(loadCloud(R"("url":"mqtts://a:1","urls":["mqtts://b:2"])"))
                .find("give cloud.url or cloud.urls, not both"),
            std::string::npos);
  EXPECT_NE(problems(loadCloud("")).find("missing cloud.url (or cloud.urls, a list of them)"),
            std::string::npos);
  EXPECT_NE(problems(loadCloud(R"("urls":[])")).find("at least one"), std::string::npos);
  const std::string bad = problems(loadCloud(R"("urls":["mqtts://a:1","http://b:2"])"));
  EXPECT_NE(bad.find("cloud.urls: item 2: "), std::string::npos) << bad;
  EXPECT_NE(problems(loadCloud(R"("urls":["mqtts://a:1",7])")).find("item 2: expected"),
            std::string::npos);
}

TEST(ConfigCloudUrls, LinkOptionsRefuseBothAndNameTheBadItem) {
  cloudlink::CloudLinkOptions o;
  o.tenant = "t1";
  o.agent_id = "p1";
  o.ca_file = "ca.pem";
  o.cert_file = "a.pem";
  o.key_file = "a.key";
  o.url = "mqtts://a:1";
  o.urls = {"mqtts://b:2"};
  EXPECT_EQ(cloudlink::validateOptions(o).error().message,
            "cloud.url and cloud.urls: give one of the two");
  o.url.clear();
  o.urls = {"mqtts://b:2", "mqtts://"};
  const Status st = cloudlink::validateOptions(o);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message.rfind("cloud.urls item 2: ", 0), 0u) << st.error().message;
}

}  // namespace
}  // namespace psa::agent
