// The discovery listener refuses the port of a configured MLLP adapter, naming it and why.
#include <gtest/gtest.h>

#include "psa/adapters/discover/mllp_capture.h"
#include "psa/store/json.h"

namespace discover = psa::adapters::discover;
namespace json = psa::json;

namespace {

TEST(DiscoverPortGuard, RefusesAPortAnMllpAdapterListensOnAndSaysWhich) {
  const json::Value config = *json::parse(R"({"adapters":[
    {"name":"drop","type":"file-drop","path":"/x"},
    {"name":"cerner-adt","type":"hl7-mllp","listen":"0.0.0.0:2575"},
    {"name":"labs","type":"hl7-mllp","listen":["127.0.0.1:2600","[::]:2601"]}]})");
  EXPECT_EQ(discover::livePortConflict(config, 2575).value_or(""),
            "adapter cerner-adt listens on 0.0.0.0:2575; discovery must not take a live feed's "
            "port");
  EXPECT_NE(discover::livePortConflict(config, 2601).value_or("").find("adapter labs"),
            std::string::npos);
  EXPECT_FALSE(discover::livePortConflict(config, 2599).has_value());
  EXPECT_FALSE(discover::livePortConflict(json::Value::object(), 2575).has_value());
}

}  // namespace
