// Hostile and odd inputs for the HL7 parser: control bytes as delimiters, limit boundaries,
// huge fields, 64-byte block alignment of the vectorised scanner, and agreement between the
// batched fast path and the checked slow path.
#include <gtest/gtest.h>

#include <limits>
#include <string>

#include "psa/adapters/hl7/ack.h"
#include "psa/adapters/hl7/inspect.h"
#include "psa/adapters/hl7/message.h"
#include "psa/adapters/hl7/validate.h"

namespace hl7 = psa::adapters::hl7;
using hl7::Message;
using psa::Errc;

namespace {

// The structure of a parsed message as text: segment texts and field offsets.
std::string shape(const Message& m) {
  std::string out;
  for (size_t s = 0; s < m.segmentCount(); ++s) {
    out += std::to_string(m.segmentOffset(s)) + ":" + std::to_string(m.segmentText(s).size()) + "[";
    for (int f = 1; f <= m.fieldCount(s); ++f) {
      hl7::Element e = m.field(s, f);
      out +=
          std::to_string(e.raw.data() - m.text().data()) + "+" + std::to_string(e.raw.size()) + ",";
    }
    out += "]";
  }
  return out;
}

// Small nesting limits force the one-event-at-a-time path.
hl7::Limits slowPathLimits() {
  hl7::Limits l;
  l.max_repetitions = 50;
  l.max_components = 50;
  l.max_subcomponents = 50;
  return l;
}

const std::string kAdt =
    "MSH|^~\\&|SENDAPP|SENDFAC|RECVAPP|RECVFAC|20240105083000||ADT^A01^ADT_A01|CTRL0001|P|2.5.1\r"
    "EVN|A01|20240105083000\r"
    "PID|1||MRN1^^^FAC^MR~ALT2^^^FAC2^PI||DOE^JANE^Q||19800101|F|||1 MAIN ST^^TOWN^ST^00000\r"
    "PV1|1|O|CLINIC^^^FAC||||1234^WELBY^MARCUS\r";

}  // namespace

TEST(Hl7Hostile, FastAndSlowPathsAgreeAtEveryAlignment) {
  // Leading line breaks shift the message against the 64-byte blocks; terminator styles vary.
  for (const char* term : {"\r", "\n", "\r\n"}) {
    std::string body = kAdt;
    if (std::string_view(term) != "\r") {
      body.clear();
      for (char c : kAdt) {
        if (c == '\r') {
          body += term;
        } else {
          body.push_back(c);
        }
      }
    }
    for (size_t shift = 0; shift < 70; ++shift) {
      std::string text = std::string(shift, '\n') + body;
      Message fast;
      Message slow;
      ASSERT_TRUE(fast.parse(text).ok());
      ASSERT_TRUE(slow.parse(text, slowPathLimits()).ok());
      EXPECT_EQ(shape(fast), shape(slow)) << "shift " << shift;
      EXPECT_EQ(fast.segmentCount(), 4u);
      EXPECT_EQ(fast.get("PV1-7.3").raw, "MARCUS");
      // Truncating at every length never crashes and keeps both paths in agreement.
      if (shift == 0) {
        for (size_t len = 0; len <= text.size(); ++len) {
          std::string_view cut(text.data(), len);
          Message a;
          Message b;
          bool ok_a = a.parse(cut).ok();
          bool ok_b = b.parse(cut, slowPathLimits()).ok();
          ASSERT_EQ(ok_a, ok_b) << len;
          if (ok_a) {
            EXPECT_EQ(shape(a), shape(b)) << len;
          }
        }
      }
    }
  }
}

TEST(Hl7Hostile, ControlBytesAsDelimiters) {
  std::string text(
      "MSH\0^~\\&\0A\0B\rPID\0"
      "1\0x\r",
      21);
  Message m;
  ASSERT_TRUE(m.parse(text).ok());
  EXPECT_EQ(m.delimiters().field, '\0');
  EXPECT_EQ(m.get("MSH-3").raw, "A");
  EXPECT_EQ(m.get("PID-2").raw, "x");
  auto issues = hl7::validate(m);
  ASSERT_FALSE(issues.empty());
  EXPECT_EQ(issues[0].code, hl7::ErrorCode::data_type);
  EXPECT_EQ(issues[0].location.toString(), "MSH-1");
  // The ACK falls back to |^~\& and is a valid message.
  std::string ack = hl7::AckBuilder().build(m, hl7::outcomeFor(issues), issues);
  Message a;
  ASSERT_TRUE(a.parse(ack).ok());
  EXPECT_EQ(a.delimiters(), hl7::Delimiters::standard());
  EXPECT_EQ(a.get("MSA-1").raw, "AE");

  std::string high =
      "MSH\xff^~\\&\xff"
      "A\xff"
      "B\r";
  ASSERT_TRUE(m.parse(high).ok());
  EXPECT_EQ(m.get("MSH-4").raw, "B");
  EXPECT_NE(hl7::inspectJson(m).find("\"value\":\"B\""), std::string::npos);
}

TEST(Hl7Hostile, HugeFieldsHitNestingLimits) {
  Message m;
  std::string comps = "MSH|^~\\&|A\rOBX|1|TX|C||" + std::string(5000, '^') + "\r";
  auto st = m.parse(comps);
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(st.error().is(Errc::limit));
  EXPECT_EQ(m.failure().text, "field has more than 1000 components");
  EXPECT_EQ(m.failure().location.toString(), "OBX-5");
  EXPECT_EQ(m.failure().byte_offset, comps.find("||") + 2 + 999);  // the 1000th separator

  // A long field without delimiters (a base64 document) is fine.
  std::string doc = "MSH|^~\\&|A\rOBX|1|ED|PDF||" + std::string(3u << 20, 'Q') + "|F\r";
  ASSERT_TRUE(m.parse(doc).ok());
  EXPECT_EQ(m.get("OBX-5").raw.size(), 3u << 20);
  EXPECT_EQ(m.get("OBX-6").raw, "F");

  // Exactly at the limits passes.
  std::string at = "MSH|^~\\&|A\rOBX|1||" + std::string(999, '^') + "|" + std::string(9999, '~') +
                   "|" + std::string(999, '&') + "\r";
  ASSERT_TRUE(m.parse(at).ok()) << m.failure().describe();
  EXPECT_EQ(m.componentCount(1, 3, 1), 1000);
  EXPECT_EQ(m.repetitionCount(1, 4), 10000);
  EXPECT_EQ(m.subcomponentCount(1, 5, 1, 1), 1000);
}

TEST(Hl7Hostile, ManySeparatorsHitFieldLimits) {
  Message m;
  std::string many = "MSH|^~\\&|A\rZZZ" + std::string(100000, '|') + "\r";
  auto st = m.parse(many);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(m.failure().text, "segment has more than 1000 fields");
  EXPECT_EQ(m.failure().location.toString(), "ZZZ");
  EXPECT_EQ(m.failure().byte_offset, many.find("ZZZ") + 3 + 1000);

  std::string lines;
  lines = "MSH|^~\\&|A\r";
  for (int k = 0; k < 2000; ++k) {
    lines += "ZZZ" + std::string(999, '|') + "\r";
  }
  st = m.parse(lines);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(m.failure().text, "message has more than 1048576 fields");

  std::string segs = "MSH|^~\\&|A\r";
  for (int k = 0; k < 100001; ++k) {
    segs += "Z|\r";
  }
  st = m.parse(segs);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(m.failure().text, "more than 100000 segments");
  EXPECT_EQ(m.failure().segment_index, 100000u);
}

TEST(Hl7Hostile, OnlyTerminatorsAndBlanks) {
  Message m;
  std::string text = "MSH|^~\\&|A" + std::string(100000, '\r') + "  \n\t\r\n";
  ASSERT_TRUE(m.parse(text).ok());
  EXPECT_EQ(m.segmentCount(), 1u);
  EXPECT_EQ(m.content(), "MSH|^~\\&|A");
}

TEST(Hl7Hostile, MessageSizeLimitBoundary) {
  hl7::Limits limits;
  limits.max_message_bytes = 4096;
  std::string text = "MSH|^~\\&|A\rOBX|1|TX|||";
  text += std::string(4096 - text.size(), 'x');
  Message m;
  EXPECT_TRUE(m.parse(text, limits).ok());
  text.push_back('x');
  EXPECT_FALSE(m.parse(text, limits).ok());
  EXPECT_TRUE(m.failure().errc == Errc::limit);
}

TEST(Hl7Hostile, ExtremeLimitsDoNotOverflow) {
  hl7::Limits huge;
  huge.max_fields_per_segment = std::numeric_limits<size_t>::max();
  huge.max_total_fields = std::numeric_limits<size_t>::max();
  huge.max_segments = std::numeric_limits<size_t>::max();
  huge.max_repetitions = std::numeric_limits<size_t>::max();
  huge.max_components = std::numeric_limits<size_t>::max();
  huge.max_subcomponents = std::numeric_limits<size_t>::max();
  huge.max_message_bytes = std::numeric_limits<size_t>::max();
  Message m;
  ASSERT_TRUE(m.parse(kAdt, huge).ok());
  EXPECT_EQ(m.get("PID-5.2").raw, "JANE");
  hl7::Limits zero{};
  zero.max_fields_per_segment = 0;
  zero.max_total_fields = 0;
  zero.max_segments = 0;
  zero.max_repetitions = 0;
  zero.max_components = 0;
  zero.max_subcomponents = 0;
  EXPECT_FALSE(m.parse(kAdt, zero).ok());
  EXPECT_TRUE(m.failure().errc == Errc::limit);
}

TEST(Hl7Hostile, CopiedMessageKeepsWorking) {
  Message m;
  ASSERT_TRUE(m.parse(kAdt).ok());
  Message copy = m;
  Message moved = std::move(m);
  EXPECT_EQ(copy.get("PID-5.1").raw, "DOE");
  EXPECT_EQ(moved.get("PID-5.1").raw, "DOE");
  EXPECT_EQ(shape(copy), shape(moved));
  copy = moved;
  EXPECT_EQ(copy.get("PV1-3.4").raw, "FAC");
}
