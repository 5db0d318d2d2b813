// ACK generation: original and enhanced mode, byte-exact with an injected clock and id source.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "hl7_samples.h"
#include "psa/adapters/hl7/ack.h"
#include "psa/adapters/hl7/validate.h"
#include "test_support.h"

namespace hl7 = psa::adapters::hl7;
using hl7::AckBuilder;
using hl7::AckMode;
using hl7::Message;
using hl7::Outcome;

namespace {

class FixedClock : public psa::Clock {
 public:
  explicit FixedClock(int64_t ms) : ms_(ms) {}
  std::chrono::system_clock::time_point now() const override {
    return std::chrono::system_clock::time_point(std::chrono::milliseconds(ms_));
  }
  std::chrono::steady_clock::time_point steady() const override {
    return std::chrono::steady_clock::time_point(std::chrono::milliseconds(ms_));
  }

 private:
  int64_t ms_;
};

// 2024-01-05T08:30:00.250Z
constexpr int64_t kNowMs = 1704443400250;
constexpr const char* kTs = "20240105083000+0000";

AckBuilder builder(AckMode mode = AckMode::automatic) {
  hl7::AckOptions options;
  options.mode = mode;
  options.clock = std::make_shared<FixedClock>(kNowMs);
  options.control_id = [](std::string& out) { out += "ACK0001"; };
  return AckBuilder(options);
}

const std::string& corpus(const std::string& name) { return psa::test::hl7Corpus(name); }

// Parses a corpus file; the text must outlive the message, so keep both.
struct Parsed {
  std::string text;
  Message msg;
  explicit Parsed(const std::string& file) : text(corpus(file)) {
    EXPECT_TRUE(msg.parse(text).ok()) << file;
  }
  explicit Parsed(std::string raw, bool) : text(std::move(raw)) {
    EXPECT_TRUE(msg.parse(text).ok());
  }
};

std::string lines(std::initializer_list<std::string_view> segments) {
  std::string out;
  for (auto s : segments) {
    out.append(s);
    out.push_back('\r');
  }
  return out;
}

}  // namespace

TEST(Hl7Ack, OriginalAccept) {
  Parsed p("adt_a01_v231.hl7");
  EXPECT_EQ(builder().modeFor(p.msg), AckMode::original);
  EXPECT_TRUE(builder().shouldSend(p.msg, Outcome::accept));
  EXPECT_EQ(builder().build(p.msg, Outcome::accept),
            lines({std::string("MSH|^~\\&|PSAGENT|PRACTICE0042|REGADT|GOODHEALTH|") + kTs +
                       "||ACK^A01^ACK|ACK0001|P|2.3.1",
                   "MSA|AA|MSG00001"}));
}

TEST(Hl7Ack, OriginalErrorWithErr25) {
  Parsed p("broken_missing_control_id.hl7");
  auto issues = hl7::validate(p.msg);
  ASSERT_EQ(hl7::outcomeFor(issues), Outcome::error);
  EXPECT_EQ(builder().build(p.msg, hl7::outcomeFor(issues), issues),
            lines({std::string("MSH|^~\\&|PSAGENT|PRACTICE0042|REGADT|GOODHEALTH|") + kTs +
                       "||ACK^A04^ACK|ACK0001|P|2.5.1",
                   "MSA|AE||message control id missing",
                   "ERR||MSH^1^10|101^Required field missing^HL70357|E"}));
}

TEST(Hl7Ack, OriginalRejectWithComponentLocation) {
  Parsed p("broken_bad_version.hl7");
  auto issues = hl7::validate(p.msg);
  ASSERT_EQ(hl7::outcomeFor(issues), Outcome::reject);
  EXPECT_EQ(builder().build(p.msg, Outcome::reject, issues),
            lines({std::string("MSH|^~\\&|PSAGENT|PRACTICE0042|REGADT|GOODHEALTH|") + kTs +
                       "||ACK^A08^ACK|ACK0001|P|3.0",
                   "MSA|AR|MSG90005|version id not supported",
                   "ERR||MSH^1^12^1^1|203^Unsupported version id^HL70357|E"}));
}

TEST(Hl7Ack, PreV25ErrUsesErr1Repetitions) {
  Parsed p("broken_missing_type.hl7");  // v2.4, two issues
  auto issues = hl7::validate(p.msg);
  ASSERT_EQ(issues.size(), 2u);
  EXPECT_EQ(builder().build(p.msg, Outcome::error, issues),
            lines({std::string("MSH|^~\\&|PSAGENT|PRACTICE0042|REGADT|GOODHEALTH|") + kTs +
                       "||ACK^^ACK|ACK0001|P|2.4",
                   "MSA|AE|MSG90003|message type missing",
                   "ERR|MSH^1^9^101&Required field missing&HL70357~"
                   "MSH^1^9^101&Required field missing&HL70357"}));
}

TEST(Hl7Ack, MessageTypeFormByVersion) {
  Parsed v23("siu_s14_v23.hl7");
  EXPECT_EQ(builder().build(v23.msg, Outcome::accept),
            lines({std::string("MSH|^~\\&|PSAGENT|PRACTICE0042|SCHED|GOODHEALTH|") + kTs +
                       "||ACK^S14|ACK0001|P|2.3",
                   "MSA|AA|MSG00012"}));
  Parsed v21("adt_a08_v21.hl7");
  EXPECT_EQ(builder().build(v21.msg, Outcome::accept),
            lines({std::string("MSH|^~\\&|PSAGENT|PRACTICE0042|OLDADT|MAINFRAME|") + kTs +
                       "||ACK|ACK0001|P|2.1",
                   "MSA|AA|MSG00008"}));
}

TEST(Hl7Ack, OwnDelimitersAreUsed) {
  Parsed p("adt_a08_v24_custom_delims.hl7");
  EXPECT_EQ(builder().build(p.msg, Outcome::error, {}, "bad # text $ here"),
            lines({std::string("MSH#$@!%#PSAGENT#PRACTICE0042#LEGACYREG#OLDHOSP#") + kTs +
                       "##ACK$A08$ACK#ACK0001#P#2.4",
                   "MSA#AE#MSG00003#bad !F! text !S! here"}));
  Parsed t("siu_s26_v27_truncation.hl7");
  std::string ack = builder().build(t.msg, Outcome::accept);
  EXPECT_EQ(ack.substr(0, 9), "MSH|^~\\&#");
}

TEST(Hl7Ack, UnusableDelimitersFallBackToStandard) {
  Parsed p("broken_duplicate_encoding_chars.hl7");
  auto issues = hl7::validate(p.msg);
  EXPECT_EQ(builder().build(p.msg, hl7::outcomeFor(issues), issues),
            lines({std::string("MSH|^~\\&|PSAGENT|PRACTICE0042|REGADT|GOODHEALTH|") + kTs +
                       "||ACK^^ACK|ACK0001|P|2.5.1",
                   "MSA|AE|MSG90009|encoding characters must be 4 or 5 distinct symbols",
                   "ERR||MSH^1^2|102^Data type error^HL70357|E",
                   "ERR||MSH^1^9^1^2|101^Required field missing^HL70357|E"}));
}

TEST(Hl7Ack, EnhancedCommitAcceptEchoesCharset) {
  Parsed p("adt_a01_v28_enhanced_nulls.hl7");  // MSH-15 AL, MSH-16 NE, MSH-18 UNICODE UTF-8
  EXPECT_EQ(builder().modeFor(p.msg), AckMode::enhanced);
  EXPECT_TRUE(builder().shouldSend(p.msg, Outcome::accept));
  EXPECT_EQ(builder().build(p.msg, Outcome::accept),
            lines({std::string("MSH|^~\\&|PSAGENT|PRACTICE0042|NEWREG|GOODHEALTH|") + kTs +
                       "||ACK^A01^ACK|ACK0001|P|2.8||||||UNICODE UTF-8",
                   "MSA|CA|MSG00007"}));
  EXPECT_EQ(builder().build(p.msg, Outcome::reject).find("MSA|CR|MSG00007\r") != std::string::npos,
            true);
  EXPECT_EQ(builder().build(p.msg, Outcome::error).find("MSA|CE|MSG00007\r") != std::string::npos,
            true);
}

TEST(Hl7Ack, EnhancedAcceptAckTypes) {
  auto make = [](std::string_view msh15, std::string_view msh16) {
    return "MSH|^~\\&|S|F|R|RF|20240101||ADT^A04|C1|P|2.5|||" + std::string(msh15) + "|" +
           std::string(msh16) + "\rPID|1\r";
  };
  struct Row {
    const char* msh15;
    const char* msh16;
    bool accept;
    bool error;
    bool reject;
  };
  for (const Row& r : {Row{"AL", "", true, true, true}, Row{"NE", "AL", false, false, false},
                       Row{"ER", "", false, true, true}, Row{"SU", "", true, false, false},
                       Row{"", "AL", true, true, true}, Row{"XX", "", true, true, true}}) {
    Parsed p(make(r.msh15, r.msh16), true);
    SCOPED_TRACE(std::string(r.msh15) + "/" + r.msh16);
    AckBuilder b = builder();
    EXPECT_EQ(b.modeFor(p.msg), AckMode::enhanced);
    EXPECT_EQ(b.shouldSend(p.msg, Outcome::accept), r.accept);
    EXPECT_EQ(b.shouldSend(p.msg, Outcome::error), r.error);
    EXPECT_EQ(b.shouldSend(p.msg, Outcome::reject), r.reject);
    // Forced original mode always answers, with AA/AE/AR.
    AckBuilder o = builder(AckMode::original);
    EXPECT_TRUE(o.shouldSend(p.msg, Outcome::accept));
    EXPECT_NE(o.build(p.msg, Outcome::accept).find("\rMSA|AA|C1\r"), std::string::npos);
  }
  // Null values ("") do not request enhanced mode.
  Parsed n(make("\"\"", "\"\""), true);
  EXPECT_EQ(builder().modeFor(n.msg), AckMode::original);
  // Forced enhanced mode on a message without MSH-15: commit ACK, always sent.
  Parsed plain(make("", ""), true);
  AckBuilder e = builder(AckMode::enhanced);
  EXPECT_TRUE(e.shouldSend(plain.msg, Outcome::accept));
  EXPECT_NE(e.build(plain.msg, Outcome::accept).find("\rMSA|CA|C1\r"), std::string::npos);
}

TEST(Hl7Ack, VxuErOnlyOnError) {
  Parsed p("vxu_v04_v251_crlf.hl7");  // MSH-15 ER, MSH-16 AL
  EXPECT_FALSE(builder().shouldSend(p.msg, Outcome::accept));
  EXPECT_TRUE(builder().shouldSend(p.msg, Outcome::error));
}

TEST(Hl7Ack, MsaTextIsEscaped) {
  Parsed p("adt_a04_v251_cr.hl7");
  std::string ack = builder().build(p.msg, Outcome::reject, {}, "store full | retry ^ later\r");
  EXPECT_NE(ack.find("\rMSA|AR|MSG00002|store full \\F\\ retry \\S\\ later\\X0D\\\r"),
            std::string::npos);
}

TEST(Hl7Ack, ErrSegmentsAreCapped) {
  Parsed p("adt_a04_v251_cr.hl7");
  std::vector<hl7::Issue> issues(40);
  for (auto& i : issues) {
    i.code = hl7::ErrorCode::data_type;
    i.text = "x";
  }
  std::string ack = builder().build(p.msg, Outcome::error, issues);
  size_t errs = 0;
  for (size_t pos = 0; (pos = ack.find("\rERR|", pos)) != std::string::npos; ++pos) {
    ++errs;
  }
  EXPECT_EQ(errs, 16u);
}

TEST(Hl7Ack, RejectForUnparseableBytes) {
  Message m;
  std::string raw = corpus("broken_no_msh.hl7");
  ASSERT_FALSE(m.parse(raw).ok());
  EXPECT_EQ(builder().buildReject(raw, m.failure()),
            lines({std::string("MSH|^~\\&|||||") + kTs + "||ACK^^ACK|ACK0001||2.5.1",
                   "MSA|AR||message does not start with an MSH segment",
                   "ERR|||100^Segment sequence error^HL70357|E"}));
}

TEST(Hl7Ack, RejectForOversizeEchoesHeader) {
  std::string raw =
      "MSH|^~\\&|SND|FAC|RCV|RFAC|2024||ADT^A01|CTRL9|P|2.5|||AL\r" + std::string(200, 'x');
  hl7::Limits limits;
  limits.max_message_bytes = 100;
  Message m;
  ASSERT_FALSE(m.parse(raw, limits).ok());
  EXPECT_EQ(builder().buildReject(raw, m.failure()),
            lines({std::string("MSH|^~\\&|RCV|RFAC|SND|FAC|") + kTs + "||ACK^A01^ACK|ACK0001|P|2.5",
                   "MSA|CR|CTRL9|message is " + std::to_string(raw.size()) + " bytes, limit 100",
                   "ERR|||207^Application internal error^HL70357|E"}));
}

TEST(Hl7Ack, RejectReencodesCustomDelimiters) {
  std::string raw = "MSH#$@!%#S|X#F$1#R#RF#2024##ADT$A04#C|1#P#2.4";
  hl7::Issue failure;
  failure.code = hl7::ErrorCode::application_internal_error;
  failure.text = "receiver busy";
  std::string ack = builder().buildReject(raw, failure);
  EXPECT_EQ(
      ack,
      lines({std::string("MSH|^~\\&|R|RF|S\\F\\X|F^1|") + kTs + "||ACK^A04^ACK|ACK0001|P|2.4",
             "MSA|AR|C\\F\\1|receiver busy", "ERR|^^^207&Application internal error&HL70357"}));
  // Garbage with a plausible start still yields a parseable ACK.
  for (std::string_view junk :
       {std::string_view("MSH"), std::string_view("MSH|"), std::string_view("MSH|^~\\&|a\xff|b"),
        std::string_view(""), std::string_view("\r\n\xEF\xBB\xBFMSH~~~~")}) {
    std::string reject = builder().buildReject(junk, failure);
    Message a;
    ASSERT_TRUE(a.parse(reject).ok()) << reject;
    EXPECT_EQ(a.get("MSA-1").raw, "AR");
    EXPECT_EQ(a.segmentCount(), 3u);
  }
}

TEST(Hl7Ack, DefaultControlIdsAreUnique) {
  hl7::ControlIdFn ids = hl7::defaultControlIds();
  std::set<std::string> seen;
  for (int k = 0; k < 1000; ++k) {
    std::string id;
    ids(id);
    EXPECT_EQ(id.size(), 20u);
    EXPECT_EQ(id[0], 'A');
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
  // A second generator (e.g. after a restart) does not reuse the first one's ids.
  hl7::ControlIdFn other = hl7::defaultControlIds();
  std::string id;
  other(id);
  EXPECT_EQ(seen.count(id), 0u);
}

TEST(Hl7Ack, DefaultBuilderStampsTimeAndId) {
  Parsed p("adt_a04_v251_cr.hl7");
  AckBuilder b;
  Message a;
  std::string ack = b.build(p.msg, Outcome::accept);
  ASSERT_TRUE(a.parse(ack).ok());
  EXPECT_EQ(a.get("MSH-7").raw.size(), 19u);
  EXPECT_EQ(a.controlId().size(), 20u);
  EXPECT_NE(b.build(p.msg, Outcome::accept), ack);  // new control id each time
}

TEST(Hl7Ack, ParseAckMode) {
  EXPECT_EQ(hl7::parseAckMode("auto"), AckMode::automatic);
  EXPECT_EQ(hl7::parseAckMode("original"), AckMode::original);
  EXPECT_EQ(hl7::parseAckMode("enhanced"), AckMode::enhanced);
  EXPECT_FALSE(hl7::parseAckMode("AL").has_value());
}
