// HL7 v2 message parser: delimiters, path access, absent/empty/null, decoding, limits.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "hl7_samples.h"
#include "psa/adapters/hl7/message.h"
#include "test_support.h"

namespace hl7 = psa::adapters::hl7;
using hl7::Element;
using hl7::ErrorCode;
using hl7::Message;
using hl7::Presence;
using psa::Errc;

namespace {

const std::string& corpus(const std::string& name) { return psa::test::hl7Corpus(name); }

// Builds a CR-terminated message from lines.
std::string msg(std::initializer_list<std::string_view> segments) {
  std::string out;
  for (auto s : segments) {
    out.append(s);
    out.push_back('\r');
  }
  return out;
}

const std::string kAdt = msg({
    R"(MSH|^~\&|SENDAPP|SENDFAC|RECVAPP|RECVFAC|20240105083000||ADT^A01^ADT_A01|CTRL0001|P|2.5.1)",
    R"(EVN|A01|20240105083000)",
    R"(PID|1||MRN1^^^FAC^MR~ALT2^^^FAC2^PI&X&Y||DOE^JANE^Q~DOE^JANIE||19800101|""|||)",
    R"(OBX|1|NM|GLU||95)",
    R"(OBX|2|NM|NA||140)",
    R"(OBX|3|ST|CMT||a\F\b\S\c\T\d\R\e\E\f)",
});

Message parsed(std::string_view text) {
  Message m;
  auto st = m.parse(text);
  EXPECT_TRUE(st.ok()) << (st.ok() ? "" : st.error().describe());
  return m;
}

}  // namespace

TEST(Hl7Message, SegmentsAndFields) {
  Message m = parsed(kAdt);
  ASSERT_EQ(m.segmentCount(), 6u);
  EXPECT_EQ(m.segmentId(0), "MSH");
  EXPECT_EQ(m.segmentId(2), "PID");
  EXPECT_EQ(m.segmentText(1), "EVN|A01|20240105083000");
  EXPECT_EQ(m.segmentOffset(0), 0u);
  EXPECT_EQ(m.countSegments("OBX"), 3u);
  EXPECT_EQ(m.findSegment("OBX", 2).value(), 4u);
  EXPECT_FALSE(m.findSegment("OBX", 4).has_value());
  EXPECT_FALSE(m.findSegment("ZZZ").has_value());
  EXPECT_EQ(m.occurrenceOf(5), 3);
  EXPECT_EQ(m.fieldCount(0), 12);  // MSH-1 counts
  EXPECT_EQ(m.fieldCount(1), 2);
  EXPECT_EQ(m.fieldCount(2), 11);  // trailing empty fields are present
}

TEST(Hl7Message, MshShortcutsAndSpecialFields) {
  Message m = parsed(kAdt);
  EXPECT_EQ(m.get("MSH-1").raw, "|");
  EXPECT_EQ(m.get("MSH-2").raw, "^~\\&");
  // MSH-2 is atomic: never split on its own characters.
  EXPECT_EQ(m.get("MSH-2.1").raw, "^~\\&");
  EXPECT_TRUE(m.get("MSH-2.2").absent());
  EXPECT_TRUE(m.get("MSH-2[2]").absent());
  EXPECT_EQ(m.get("MSH-3").raw, "SENDAPP");
  EXPECT_EQ(m.get("MSH-9.2").raw, "A01");
  EXPECT_EQ(m.messageType(), "ADT");
  EXPECT_EQ(m.triggerEvent(), "A01");
  EXPECT_EQ(m.messageStructure(), "ADT_A01");
  EXPECT_EQ(m.controlId(), "CTRL0001");
  EXPECT_EQ(m.processingId(), "P");
  EXPECT_EQ(m.version(), "2.5.1");
  EXPECT_EQ(m.acceptAckType(), "");
  EXPECT_EQ(m.delimiters(), hl7::Delimiters::standard());
  EXPECT_EQ(m.charset(), hl7::Charset::ascii);
}

TEST(Hl7Message, RepetitionsComponentsSubcomponents) {
  Message m = parsed(kAdt);
  EXPECT_EQ(m.get("PID-3").raw, "MRN1^^^FAC^MR~ALT2^^^FAC2^PI&X&Y");  // whole field
  EXPECT_EQ(m.get("PID-3[1]").raw, "MRN1^^^FAC^MR");
  EXPECT_EQ(m.get("PID-3.1").raw, "MRN1");  // component without [rep]: repetition 1
  EXPECT_EQ(m.get("PID-3[2].1").raw, "ALT2");
  EXPECT_EQ(m.get("PID-3[2].5").raw, "PI&X&Y");
  EXPECT_EQ(m.get("PID-3[2].5.1").raw, "PI");
  EXPECT_EQ(m.get("PID-3[2].5.3").raw, "Y");
  EXPECT_TRUE(m.get("PID-3[2].5.4").absent());
  EXPECT_EQ(m.get("PID-5[2].1").raw, "DOE");
  EXPECT_EQ(m.get("PID-5[2].2").raw, "JANIE");
  EXPECT_EQ(m.get("PID-5.3").raw, "Q");
  EXPECT_EQ(m.get("OBX[3]-5").raw, "a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f");
  EXPECT_EQ(m.get("OBX[2]-3").raw, "NA");
  EXPECT_EQ(m.get("OBX-3").raw, "GLU");
  EXPECT_EQ(m.repetitionCount(2, 3), 2);
  EXPECT_EQ(m.componentCount(2, 3, 2), 5);
  EXPECT_EQ(m.subcomponentCount(2, 3, 2, 5), 3);
  EXPECT_EQ(m.repetitionCount(2, 99), 0);
  // Numeric access equals path access.
  EXPECT_EQ(m.get(2, 3, 2, 5, 2).raw, "X");
  EXPECT_EQ(m.get(2, 3, 0, 1).raw, "MRN1");
  EXPECT_EQ(m.get(2, 3, 0, 0, 1).raw, "MRN1");
}

TEST(Hl7Message, AbsentEmptyNull) {
  Message m = parsed(kAdt);
  // PID|1||MRN..||DOE..||19800101|""|||   -> fields 1..11 present
  Element pid2 = m.get("PID-2");
  EXPECT_TRUE(pid2.empty());
  EXPECT_TRUE(pid2.present());
  EXPECT_FALSE(pid2.hasValue());
  Element pid8 = m.get("PID-8");
  EXPECT_TRUE(pid8.isNull());
  EXPECT_EQ(pid8.raw, "\"\"");
  EXPECT_TRUE(m.get("PID-8.1").isNull());
  EXPECT_EQ(m.decode(pid8), "");
  EXPECT_TRUE(m.get("PID-11").empty());   // last separator: present, empty
  EXPECT_TRUE(m.get("PID-12").absent());  // beyond the last field
  EXPECT_TRUE(m.get("PID-2.1").empty());  // a present field has a first component
  EXPECT_TRUE(m.get("PID-2.2").absent());
  EXPECT_TRUE(m.get("PID-5.4").absent());
  EXPECT_TRUE(m.get("PID-3[3]").absent());
  EXPECT_TRUE(m.get("PID-3[1].2").empty());
  EXPECT_TRUE(m.get("ZZZ-1").absent());
  EXPECT_EQ(m.get("#3-5.2").raw, "JANE");  // by position: PID is the third segment
  EXPECT_TRUE(m.get("#7-1").absent());
  EXPECT_TRUE(m.get("not a path").absent());
  EXPECT_EQ(m.get("PID-7").presence, Presence::value);
}

TEST(Hl7Message, DecodeEscapes) {
  Message m = parsed(kAdt);
  EXPECT_EQ(m.decode(m.get("OBX[3]-5")), "a|b^c&d~e\\f");
  EXPECT_EQ(m.decode(m.get("PID-5.1")), "DOE");
  EXPECT_EQ(m.decode(m.get("PID-99")), "");
}

TEST(Hl7Message, LineEndingsBomAndBlankLines) {
  for (const char* term : {"\r", "\n", "\r\n"}) {
    std::string text = "\xEF\xBB\xBF";
    text += std::string(term) + "MSH|^~\\&|A|B|C|D|20240101||ADT^A04|1|P|2.5" + term + term +
            "PID|1" + term + "   " + term + "PV1|1|O" + term + term;
    Message m = parsed(text);
    ASSERT_EQ(m.segmentCount(), 3u) << "terminator " << int(term[0]);
    EXPECT_EQ(m.segmentId(2), "PV1");
    EXPECT_EQ(m.get("PV1-2").raw, "O");
    EXPECT_EQ(m.content().substr(0, 3), "MSH");
    EXPECT_EQ(m.content().substr(m.content().size() - 7), "PV1|1|O");
  }
}

TEST(Hl7Message, NoTrailingTerminator) {
  Message m = parsed("MSH|^~\\&|A|B|C|D|1||ADT^A04|1|P|2.5\rPID|1||X");
  ASSERT_EQ(m.segmentCount(), 2u);
  EXPECT_EQ(m.get("PID-3").raw, "X");
}

TEST(Hl7Message, CustomDelimitersFromMsh) {
  Message m = parsed(corpus("adt_a08_v24_custom_delims.hl7"));
  const hl7::Delimiters& d = m.delimiters();
  EXPECT_EQ(d.field, '#');
  EXPECT_EQ(d.component, '$');
  EXPECT_EQ(d.repetition, '@');
  EXPECT_EQ(d.escape, '!');
  EXPECT_EQ(d.subcomponent, '%');
  EXPECT_EQ(d.truncation, 0);
  EXPECT_EQ(m.get("MSH-1").raw, "#");
  EXPECT_EQ(m.get("MSH-2").raw, "$@!%");
  EXPECT_EQ(m.messageType(), "ADT");
  EXPECT_EQ(m.triggerEvent(), "A08");
  EXPECT_EQ(m.get("PID-3[2].1").raw, "ALT77");
  EXPECT_EQ(m.get("PID-5.2").raw, "PAT");
  EXPECT_EQ(m.get("PID-5.3").raw, "!F!");
  EXPECT_EQ(m.get("PID-5.5").raw, "JR");
  EXPECT_EQ(m.decode(m.get("PID-5.3")), "#");  // escaped field separator
  EXPECT_EQ(m.decode(m.get("PID-5.4")), "$");  // escaped component separator
}

TEST(Hl7Message, TruncationCharacter) {
  Message m = parsed(corpus("siu_s26_v27_truncation.hl7"));
  EXPECT_EQ(m.delimiters().truncation, '#');
  EXPECT_EQ(m.get("MSH-2").raw, "^~\\&#");
  EXPECT_EQ(m.version(), "2.7");
  EXPECT_EQ(m.decode(m.get("NTE-3")), "Reason text was trunc#");
}

TEST(Hl7Message, Charsets) {
  Message latin = parsed(corpus("adt_a28_v25_latin1.hl7"));
  EXPECT_EQ(latin.charset(), hl7::Charset::latin1);
  EXPECT_EQ(latin.get("PID-5.1").raw, "M\xDCLLER");  // raw bytes untouched
  EXPECT_EQ(latin.decode(latin.get("PID-5.1")), "M\xC3\x9CLLER");
  EXPECT_EQ(latin.decode(latin.get("PID-11.3")), "K\xC3\xB6ln");
  EXPECT_EQ(latin.decode(latin.get("NK1-2.2")), "JOS\xC3\x89");

  Message utf8 = parsed(corpus("adt_a31_v251_utf8.hl7"));
  EXPECT_EQ(utf8.charset(), hl7::Charset::utf8);
  EXPECT_EQ(utf8.decode(utf8.get("PID-5[1].1")), "\xE5\xB1\xB1\xE7\x94\xB0");  // 山田
  EXPECT_EQ(utf8.decode(utf8.get("PID-5[2].2")), "TARO");
  EXPECT_EQ(utf8.decode(utf8.get("NK1-2.2")), "ZO\xC3\x8B");
}

TEST(Hl7Message, ParseNeverModifiesInput) {
  std::string text = corpus("oru_r01_v251_many_obx.hl7");
  const std::string copy = text;
  Message m = parsed(text);
  for (size_t s = 0; s < m.segmentCount(); ++s) {
    for (int f = 1; f <= m.fieldCount(s); ++f) {
      (void)m.decode(m.field(s, f));
    }
  }
  EXPECT_EQ(text, copy);
  EXPECT_EQ(m.text().data(), text.data());
  EXPECT_EQ(m.countSegments("OBX"), 41u);
}

TEST(Hl7Message, ReuseKeepsWorking) {
  Message m;
  ASSERT_TRUE(m.parse(kAdt).ok());
  EXPECT_FALSE(m.parse("garbage").ok());
  EXPECT_FALSE(m.parsed());
  EXPECT_EQ(m.segmentCount(), 0u);
  EXPECT_TRUE(m.get("MSH-9").absent());
  ASSERT_TRUE(m.parse(corpus("siu_s12_v251.hl7")).ok());
  EXPECT_EQ(m.messageType(), "SIU");
  EXPECT_EQ(m.failure().code, ErrorCode::none);
}

TEST(Hl7Message, ParseFailures) {
  Message m;
  auto st = m.parse(corpus("broken_no_msh.hl7"));
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(st.error().is(Errc::invalid_input));
  EXPECT_EQ(m.failure().code, ErrorCode::segment_sequence);
  EXPECT_EQ(m.failure().byte_offset, 0u);
  EXPECT_EQ(st.error().message,
            "HL7 100 (Segment sequence error): message does not start with an MSH segment "
            "[segment 1, byte 0]");

  st = m.parse(corpus("broken_missing_msh1.hl7"));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(m.failure().code, ErrorCode::required_field_missing);
  EXPECT_EQ(m.failure().location.toString(), "MSH-1");
  EXPECT_EQ(m.failure().byte_offset, 3u);

  st = m.parse("");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(m.failure().code, ErrorCode::segment_sequence);
  st = m.parse("\r\n\r\n");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(m.failure().byte_offset, 4u);
  st = m.parse("MSH|");
  EXPECT_TRUE(st.ok());  // the rest is validation's business
}

TEST(Hl7Message, LimitMessageSize) {
  hl7::Limits limits;
  limits.max_message_bytes = 64;
  Message m;
  auto st = m.parse(kAdt, limits);
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(st.error().is(Errc::limit));
  EXPECT_EQ(m.failure().code, ErrorCode::application_internal_error);
  EXPECT_EQ(m.failure().byte_offset, 64u);
  EXPECT_EQ(m.failure().text, "message is " + std::to_string(kAdt.size()) + " bytes, limit 64");
}

TEST(Hl7Message, LimitSegments) {
  hl7::Limits limits;
  limits.max_segments = 3;
  Message m;
  auto st = m.parse(kAdt, limits);
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(st.error().is(Errc::limit));
  EXPECT_EQ(m.failure().segment_index, 3u);
  EXPECT_EQ(m.failure().byte_offset, kAdt.find("OBX|1"));
  EXPECT_EQ(m.failure().text, "more than 3 segments");
}

TEST(Hl7Message, LimitFieldsPerSegment) {
  hl7::Limits limits;
  limits.max_fields_per_segment = 5;
  Message m;
  auto st = m.parse(msg({"MSH|^~\\&|A", "PID|1|2|3|4|5|6"}), limits);
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(st.error().is(Errc::limit));
  EXPECT_EQ(m.failure().segment_index, 1u);
  EXPECT_EQ(m.failure().location.toString(), "PID");
  EXPECT_EQ(m.failure().byte_offset, 11u + 13u);  // the 6th separator of "PID|1|2|3|4|5|6"
  EXPECT_EQ(m.failure().text, "segment has more than 5 fields");
}

TEST(Hl7Message, LimitTotalFields) {
  hl7::Limits limits;
  limits.max_total_fields = 10;
  Message m;
  auto st = m.parse(kAdt, limits);
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(st.error().is(Errc::limit));
  EXPECT_EQ(m.failure().text, "message has more than 10 fields");
}

TEST(Hl7Message, LimitRepetitionsComponentsSubcomponents) {
  hl7::Limits limits;
  limits.max_repetitions = 2;
  limits.max_components = 3;
  limits.max_subcomponents = 2;
  Message m;
  auto st = m.parse(msg({"MSH|^~\\&|A", "PID|1||a~b~c"}), limits);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(m.failure().text, "field has more than 2 repetitions");
  EXPECT_EQ(m.failure().location.toString(), "PID-3");
  st = m.parse(msg({"MSH|^~\\&|A", "PID|1||a~b", "PV1|1|a^b^c^d"}), limits);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(m.failure().text, "field has more than 3 components");
  EXPECT_EQ(m.failure().location.toString(), "PV1-2");
  EXPECT_EQ(m.failure().segment_index, 2u);
  st = m.parse(msg({"MSH|^~\\&|A", "PID|1||a&b&c"}), limits);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(m.failure().text, "component has more than 2 sub-components");
  // Limits are per field / repetition / component, not per message.
  EXPECT_TRUE(m.parse(msg({"MSH|^~\\&|A", "PID|a~b|c~d|e^f^g~h^i^j|k&l^m&n"}), limits).ok());
}

TEST(Hl7Message, ParsePath) {
  auto p = hl7::parsePath("PID-5[2].1");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->segment, "PID");
  EXPECT_EQ(p->occurrence, 1);
  EXPECT_EQ(p->field, 5);
  EXPECT_EQ(p->repetition, 2);
  EXPECT_EQ(p->component, 1);
  EXPECT_EQ(p->subcomponent, 0);
  EXPECT_EQ(p->toString(), "PID-5[2].1");
  p = hl7::parsePath("obx[3]-5");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->segment, "OBX");
  EXPECT_EQ(p->occurrence, 3);
  EXPECT_EQ(p->toString(), "OBX[3]-5");
  p = hl7::parsePath("PID-3[1].4.2");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->subcomponent, 2);
  p = hl7::parsePath("ZB1-10");
  ASSERT_TRUE(p.ok());
  p = hl7::parsePath("#4-2[3].1");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->position, 4);
  EXPECT_EQ(p->segment, "");
  EXPECT_EQ(p->toString(), "#4-2[3].1");

  struct Bad {
    const char* path;
    const char* error;
  };
  for (const Bad& b : {Bad{"", "path column 1: expected a 3-character segment id"},
                       Bad{"PI-5", "path column 3: expected a 3-character segment id"},
                       Bad{"PID", "path column 4: expected '-' and a field number"},
                       Bad{"PID-", "path column 5: expected a field number 1..99999"},
                       Bad{"PID-0", "path column 6: expected a field number 1..99999"},
                       Bad{"PID-123456", "path column 10: expected a field number 1..99999"},
                       Bad{"PID-5[", "path column 7: expected a repetition 1..99999"},
                       Bad{"PID-5[2", "path column 8: expected ']'"},
                       Bad{"PID[0]-5", "path column 6: expected a segment occurrence 1..99999"},
                       Bad{"PID-5.", "path column 7: expected a component number 1..99999"},
                       Bad{"PID-5.1.", "path column 9: expected a sub-component number 1..99999"},
                       Bad{"PID-5.1.1.1", "path column 10: expected end of path"},
                       Bad{"PID-5 ", "path column 6: expected end of path"},
                       Bad{"#0-1", "path column 3: expected a segment position 1..99999"},
                       Bad{"#2[1]-1", "path column 3: expected '-' and a field number"}}) {
    auto r = hl7::parsePath(b.path);
    ASSERT_FALSE(r.ok()) << b.path;
    EXPECT_TRUE(r.error().is(Errc::invalid_argument));
    EXPECT_EQ(r.error().message, b.error) << b.path;
  }
}

TEST(Hl7Message, V21TriggerFromEvn) {
  Message m = parsed(corpus("adt_a08_v21.hl7"));
  EXPECT_EQ(m.messageType(), "ADT");
  EXPECT_EQ(m.get("MSH-9.2").raw, "");
  EXPECT_EQ(m.triggerEvent(), "A08");
}

TEST(Hl7Message, LaterMshIsAlsoAHeaderSegment) {
  Message m = parsed(corpus("broken_two_msh.hl7"));
  ASSERT_EQ(m.segmentCount(), 4u);
  EXPECT_EQ(m.get("MSH[2]-1").raw, "|");
  EXPECT_EQ(m.get("MSH[2]-10").raw, "MSG90011");
}

TEST(Hl7Message, ParseMessageConvenience) {
  auto r = hl7::parseMessage(kAdt);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->controlId(), "CTRL0001");
  auto bad = hl7::parseMessage("PID|1");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(bad.error().is(Errc::invalid_input));
}
