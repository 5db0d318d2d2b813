// Field-by-field rendering for `pms-agent hl7 inspect`.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "hl7_samples.h"
#include "psa/adapters/hl7/inspect.h"
#include "test_support.h"

namespace hl7 = psa::adapters::hl7;

namespace {

const std::string& corpus(const std::string& name) { return psa::test::hl7Corpus(name); }

const std::string kMsg =
    "MSH|^~\\&|APP|FAC|R|RF|20240101||ADT^A04|C1|P|2.5\r"
    "PID|1||MRN1^^^F^MR~ALT&X^^^F2||DOE^JANE||\"\"|M\\F\\F\r"
    "OBX|1|TX|N||line1\\.br\\line2\r"
    "OBX|2|ST|N||caf\\XC3A9\\\r";

}  // namespace

TEST(Hl7Inspect, Text) {
  hl7::Message m;
  ASSERT_TRUE(m.parse(kMsg).ok());
  EXPECT_EQ(hl7::inspectText(m),
            "MSH-1 = |\n"
            "MSH-2 = ^~\\&\n"
            "MSH-3 = APP\n"
            "MSH-4 = FAC\n"
            "MSH-5 = R\n"
            "MSH-6 = RF\n"
            "MSH-7 = 20240101\n"
            "MSH-9.1 = ADT\n"
            "MSH-9.2 = A04\n"
            "MSH-10 = C1\n"
            "MSH-11 = P\n"
            "MSH-12 = 2.5\n"
            "PID-1 = 1\n"
            "PID-3[1].1 = MRN1\n"
            "PID-3[1].4 = F\n"
            "PID-3[1].5 = MR\n"
            "PID-3[2].1.1 = ALT\n"
            "PID-3[2].1.2 = X\n"
            "PID-3[2].4 = F2\n"
            "PID-5.1 = DOE\n"
            "PID-5.2 = JANE\n"
            "PID-7 = \"\"\n"
            "PID-8 = M|F\n"
            "OBX[1]-1 = 1\n"
            "OBX[1]-2 = TX\n"
            "OBX[1]-3 = N\n"
            "OBX[1]-5 = line1\\nline2\n"
            "OBX[2]-1 = 2\n"
            "OBX[2]-2 = ST\n"
            "OBX[2]-3 = N\n"
            "OBX[2]-5 = caf\xC3\xA9\n");
}

TEST(Hl7Inspect, IncludeEmpty) {
  hl7::Message m;
  ASSERT_TRUE(m.parse("MSH|^~\\&|A\rPID|1||X^\r").ok());
  hl7::InspectOptions options;
  options.include_empty = true;
  EXPECT_EQ(hl7::inspectText(m, options),
            "MSH-1 = |\nMSH-2 = ^~\\&\nMSH-3 = A\nPID-1 = 1\nPID-2 = \nPID-3.1 = X\n"
            "PID-3.2 = \n");
}

TEST(Hl7Inspect, Json) {
  hl7::Message m;
  ASSERT_TRUE(
      m.parse("MSH|^~\\&|A\"B|F|||||ADT^A04^ADT_A01|C1|P|2.5\rPID|1||\"\"|x\\X01\\y\r").ok());
  EXPECT_EQ(
      hl7::inspectJson(m),
      "{\"type\":\"ADT\",\"trigger\":\"A04\",\"structure\":\"ADT_A01\",\"control_id\":\"C1\","
      "\"version\":\"2.5\",\"charset\":\"ASCII\",\"delimiters\":\"|^~\\\\&\",\"segments\":2,"
      "\"fields\":[{\"path\":\"MSH-1\",\"value\":\"|\"},{\"path\":\"MSH-2\",\"value\":\"^~\\\\&\"},"
      "{\"path\":\"MSH-3\",\"value\":\"A\\\"B\"},{\"path\":\"MSH-4\",\"value\":\"F\"},"
      "{\"path\":\"MSH-9.1\",\"value\":\"ADT\"},{\"path\":\"MSH-9.2\",\"value\":\"A04\"},"
      "{\"path\":\"MSH-9.3\",\"value\":\"ADT_A01\"},{\"path\":\"MSH-10\",\"value\":\"C1\"},"
      "{\"path\":\"MSH-11\",\"value\":\"P\"},{\"path\":\"MSH-12\",\"value\":\"2.5\"},"
      "{\"path\":\"PID-1\",\"value\":\"1\"},{\"path\":\"PID-3\",\"value\":null},"
      "{\"path\":\"PID-4\",\"value\":\"x\\u0001y\"}]}");
}

TEST(Hl7Inspect, Latin1DecodedToUtf8) {
  std::string text = corpus("adt_a28_v25_latin1.hl7");
  hl7::Message m;
  ASSERT_TRUE(m.parse(text).ok());
  std::string out = hl7::inspectText(m);
  EXPECT_NE(out.find("PID-5.1 = M\xC3\x9CLLER\n"), std::string::npos);
  EXPECT_NE(out.find("PID-11.1 = Stra\xC3\x9F"
                     "e 1\n"),
            std::string::npos);
  std::string json = hl7::inspectJson(m);
  EXPECT_NE(json.find("\"charset\":\"8859/1\""), std::string::npos);
  EXPECT_NE(json.find("{\"path\":\"NK1-2.1\",\"value\":\"GARC\xC3\x8D"
                      "A\"}"),
            std::string::npos);
}

TEST(Hl7Inspect, MalformedSegmentIdsAreNamedByPosition) {
  hl7::Message m;
  ASSERT_TRUE(m.parse("MSH|^~\\&|A\rpid|1|x\rline break text|y\r").ok());
  EXPECT_EQ(hl7::inspectText(m),
            "MSH-1 = |\nMSH-2 = ^~\\&\nMSH-3 = A\n#2-1 = 1\n#2-2 = x\n#3-1 = y\n");
  EXPECT_EQ(m.get("#3-1").raw, "y");
}

TEST(Hl7Inspect, JsonString) {
  EXPECT_EQ(hl7::jsonString("a\"b\\c\n\x1f\x7f"), "\"a\\\"b\\\\c\\n\\u001f\\u007f\"");
}
