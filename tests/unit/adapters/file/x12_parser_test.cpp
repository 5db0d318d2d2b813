// X12 reader: 837P/835 interchanges with several groups and sets, custom delimiters, the
// self-describing record payload, and broken envelopes with their exact errors.
#include <gtest/gtest.h>

#include "file_parse_util.h"
#include "psa/adapters/file/x12.h"

namespace psa::adapters::file {
namespace {

using test::fixture;
using test::parseX12;
using test::X12Event;
using Kind = X12Event::Kind;

const std::string kIsa101 =
    "ISA*00*          *00*          *ZZ*SUBMITTER01    *ZZ*RECEIVER01     *240102*1200*^*00501*"
    "000000101*0*P*:~";
const std::string kGs101 = "GS*HC*SUBMITTERID*RECEIVERID*20240102*1200*101*X*005010X222A1~";
const std::string kGs102 = "GS*HC*SUBMITTERID*RECEIVERID*20240102*1200*102*X*005010X222A1~";

TEST(X12Parser, Claims837WithTwoGroups) {
  const std::string data = fixture("x12/837p_multi.x12");
  auto ev = parseX12(data);
  ASSERT_EQ(ev.size(), 3u);
  for (const auto& e : ev) {
    EXPECT_EQ(e.kind, Kind::set) << e;
    EXPECT_EQ(e.tsid, "837");
    EXPECT_EQ(e.convention, "005010X222A1");
    EXPECT_EQ(e.functional_id, "HC");
    EXPECT_EQ(e.interchange_control, "000000101");
    EXPECT_EQ(e.sender, "SUBMITTERID");
    EXPECT_EQ(e.receiver, "RECEIVERID");
  }
  EXPECT_EQ(ev[0].number, 1u);
  EXPECT_EQ(ev[0].control, "0001");
  EXPECT_EQ(ev[0].group_control, "101");
  EXPECT_EQ(ev[0].line, 3u);
  EXPECT_EQ(ev[0].end_line, 26u);
  EXPECT_EQ(ev[0].begin, 170u);
  EXPECT_EQ(ev[0].end, 810u);
  EXPECT_EQ(ev[0].first_segment, 3u);
  EXPECT_EQ(ev[0].segment_count, 24u);
  EXPECT_EQ(ev[0].body, data.substr(170, 810 - 170));
  EXPECT_EQ(ev[0].body.substr(0, 26), "ST*837*0001*005010X222A1~\n");
  EXPECT_EQ(ev[0].body.substr(ev[0].body.size() - 11), "SE*24*0001~");
  EXPECT_EQ(ev[1].control, "0002");
  EXPECT_EQ(ev[1].segment_count, 27u);
  EXPECT_EQ(ev[2].control, "0003");
  EXPECT_EQ(ev[2].group_control, "102");
  EXPECT_EQ(ev[2].first_segment, 56u);
  EXPECT_EQ(ev[2].begin, 1583u);
  EXPECT_EQ(ev[2].end, 2224u);
  // The record payload: that one set re-enveloped with the original ISA/GS and control
  // numbers, in the file's delimiters and line breaks.
  EXPECT_EQ(ev[2].payload, kIsa101 + "\n" + kGs102 + "\n" + data.substr(1583, 2224 - 1583) +
                               "\nGE*1*102~\nIEA*1*000000101~\n");
  EXPECT_EQ(ev[0].payload, kIsa101 + "\n" + kGs101 + "\n" + ev[0].body +
                               "\nGE*1*101~\nIEA*1*000000101~\n");
  EXPECT_NE(ev[0].body.find("NM1*85*2*ACME FAMILY PRACTICE*****XX*1234567893~"),
            std::string::npos);
  EXPECT_NE(ev[1].body.find("SV1*HC:36415*15*UN*1***1:2~\nDTP*472*D8*20240102~"),
            std::string::npos);
}

TEST(X12Parser, PayloadIsItselfAValidInterchange) {
  for (const char* file : {"x12/837p_multi.x12", "x12/835_remit.x12",
                           "x12/837p_pipe_newline.x12", "x12/837p_caret_crlf.x12",
                           "x12/two_interchanges.x12"}) {
    SCOPED_TRACE(file);
    const auto ev = parseX12(fixture(file));
    ASSERT_FALSE(ev.empty());
    for (const auto& e : ev) {
      const auto again = parseX12(e.payload);
      ASSERT_EQ(again.size(), 1u);
      EXPECT_EQ(again[0].kind, Kind::set);
      EXPECT_EQ(again[0].body, e.body);
      EXPECT_EQ(again[0].tsid, e.tsid);
      EXPECT_EQ(again[0].convention, e.convention);
      EXPECT_EQ(again[0].group_control, e.group_control);
      EXPECT_EQ(again[0].interchange_control, e.interchange_control);
      EXPECT_EQ(again[0].payload, e.payload);
    }
  }
}

TEST(X12Parser, Remittance835OnOneLine) {
  const std::string data = fixture("x12/835_remit.x12");
  auto ev = parseX12(data);
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].tsid, "835");
  EXPECT_EQ(ev[0].control, "1001");
  EXPECT_EQ(ev[0].convention, "005010X221A1");
  EXPECT_EQ(ev[0].functional_id, "HP");
  EXPECT_EQ(ev[0].group_control, "201");
  EXPECT_EQ(ev[0].begin, 166u);
  EXPECT_EQ(ev[0].end, 688u);
  EXPECT_EQ(ev[0].line, 1u);
  EXPECT_EQ(ev[0].end_line, 1u);
  EXPECT_EQ(ev[0].segment_count, 20u);
  EXPECT_NE(ev[0].body.find("BPR*I*132*C*ACH*CCP*01*999999992*DA*123456*1512345678**01*"
                            "999988880*DA*98765*20240115~TRN*1*EFT0001*1512345678~"),
            std::string::npos);
  EXPECT_NE(ev[0].body.find("N1*PR*EXAMPLE PAYER~"), std::string::npos);
  EXPECT_NE(ev[0].body.find("N1*PE*ACME FAMILY PRACTICE*XX*1234567893~"), std::string::npos);
  EXPECT_NE(ev[0].body.find("CLP*PCN0001*1*125*100*25*12*ICNPCN0001*11*1~"), std::string::npos);
  EXPECT_NE(ev[0].body.find("CAS*CO*45*25~"), std::string::npos);
  EXPECT_NE(ev[0].body.find("SVC*HC:99213*125*100**1~"), std::string::npos);
  EXPECT_NE(ev[0].body.find("PLB*1234567893*20241231*WO:ABC123*-32~"), std::string::npos);
  EXPECT_EQ(ev[1].control, "1002");
  EXPECT_EQ(ev[1].segment_count, 27u);
  EXPECT_EQ(ev[1].end, 1373u);
  // No line breaks in the file, none in the payload.
  EXPECT_EQ(ev[1].payload.find('\n'), std::string::npos);
  EXPECT_EQ(ev[1].payload.substr(ev[1].payload.size() - 25), "GE*1*201~IEA*1*000000201~");
}

TEST(X12Parser, PipeElementsAndNewlineTerminator) {
  const std::string data = fixture("x12/837p_pipe_newline.x12");
  auto created = X12Parser::create({});
  ASSERT_TRUE(created.ok());
  created->feed(data);
  created->finish();
  auto r = created->next();
  ASSERT_TRUE(r.ok()) << r.error().describe();
  ASSERT_EQ(*r, X12Parser::Step::transaction);
  const auto& t = created->transaction();
  EXPECT_EQ(t.delimiters, (X12Delimiters{'|', '>', '^', '\n'}));
  EXPECT_EQ(t.transaction_set_id, "837");
  EXPECT_EQ(t.line, 3u);
  EXPECT_EQ(t.end_line, 26u);
  EXPECT_NE(t.body.find("SV1|HC>99213|125|UN|1|||1>2\n"), std::string::npos);
  EXPECT_EQ(t.payload.substr(t.payload.size() - 26), "\nGE|1|101\nIEA|1|000000301\n");

  auto ev = parseX12(data);
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_EQ(ev[2].group_control, "102");
}

TEST(X12Parser, CaretComponentsAndCrlfBetweenSegments) {
  auto ev = parseX12(fixture("x12/837p_caret_crlf.x12"));
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_NE(ev[0].body.find("SV1*HC^99213*125*UN*1***1^2~\r\nDTP"), std::string::npos);
  EXPECT_EQ(ev[0].line, 3u);
  EXPECT_EQ(ev[0].payload.substr(ev[0].payload.size() - 31),
            "\r\nGE*1*101~\r\nIEA*1*000000302~\r\n");
  auto created = X12Parser::create({});
  ASSERT_TRUE(created.ok());
  created->feed(fixture("x12/837p_caret_crlf.x12"));
  ASSERT_EQ(*created->next(), X12Parser::Step::transaction);
  EXPECT_EQ(created->transaction().delimiters, (X12Delimiters{'*', '^', '{', '~'}));
}

TEST(X12Parser, TwoInterchangesInOneFile) {
  auto ev = parseX12(fixture("x12/two_interchanges.x12"));
  ASSERT_EQ(ev.size(), 4u);
  EXPECT_EQ(ev[2].interchange_control, "000000401");
  EXPECT_EQ(ev[3].interchange_control, "000000402");
  EXPECT_EQ(ev[3].tsid, "835");
  EXPECT_EQ(ev[3].functional_id, "HP");
  EXPECT_EQ(ev[3].number, 4u);
}

/// A minimal interchange around `body` (segments separated by "~\n").
std::string wrap(const std::string& body, const std::string& isa = kIsa101) {
  return isa + "\nGS*HC*S*R*20240102*1200*7*X*005010X222A1~\n" + body + "GE*1*7~\nIEA*1*000000101~\n";
}

TEST(X12Parser, Version004010IsaHasNoRepetitionSeparator) {
  std::string isa = kIsa101;
  isa.replace(82, 1, "U");
  isa.replace(84, 5, "00401");
  auto created = X12Parser::create({});
  ASSERT_TRUE(created.ok());
  created->feed(wrap("ST*837*0001~\nSE*2*0001~\n", isa));
  created->finish();
  ASSERT_EQ(*created->next(), X12Parser::Step::transaction);
  EXPECT_EQ(created->transaction().delimiters.repetition, '\0');
  EXPECT_EQ(created->transaction().implementation_convention, "005010X222A1");  // GS-08
  EXPECT_EQ(*created->next(), X12Parser::Step::end);
  EXPECT_EQ(created->interchangesClosed(), 1u);
}

TEST(X12Parser, ToleratesWhitespaceAroundInterchangeTa1AndZeroPaddedControls) {
  const std::string data = "\r\n  " + kIsa101 + "\r\nTA1*000000099*240102*1200*A*000~\r\n" +
                           "GS*HC*S*R*20240102*1200*0007*X*005010X222A1~\r\n"
                           "ST*837*0001~\r\nSE*2*0001~\r\nGE*1*7~\r\nIEA*1*101~\r\n\r\n";
  auto ev = parseX12(data);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, Kind::set);
  EXPECT_EQ(ev[0].line, 5u);
}

// ---- broken envelopes -----------------------------------------------------------------

TEST(X12ParserErrors, SeCountMismatchIsPerTransactionSet) {
  auto ev = parseX12(fixture("x12/se_count_mismatch.x12"));
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_EQ(ev[0].kind, Kind::set);
  EXPECT_EQ(ev[1].kind, Kind::bad_set);
  EXPECT_EQ(ev[1].code, "se_count_mismatch");
  EXPECT_EQ(ev[1].err_segment, 53u);
  EXPECT_EQ(ev[1].err_line, 53u);
  EXPECT_EQ(ev[1].err_offset, 1498u);
  EXPECT_EQ(ev[1].message,
            "segment 53 (line 53, byte 1498): SE-01 is 28 but transaction set 0002 (ST at "
            "segment 27) has 27 segments (ST..SE)");
  EXPECT_FALSE(ev[1].payload.empty());  // dead-letter material
  EXPECT_EQ(ev[2].kind, Kind::set);
}

TEST(X12ParserErrors, SeControlMismatchIsPerTransactionSet) {
  auto ev = parseX12(fixture("x12/se_control_mismatch.x12"));
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_EQ(ev[0].code, "se_control_mismatch");
  EXPECT_EQ(ev[0].message,
            "segment 26 (line 26, byte 799): SE-02 '0009' does not match ST-02 '0001'");
  EXPECT_EQ(ev[1].kind, Kind::set);
  EXPECT_EQ(ev[2].kind, Kind::set);
}

TEST(X12ParserErrors, GroupTrailerMismatchesAreFatal) {
  auto ctrl = parseX12(fixture("x12/ge_control_mismatch.x12"));
  ASSERT_EQ(ctrl.size(), 3u);
  EXPECT_EQ(ctrl[2].kind, Kind::fatal);
  EXPECT_EQ(ctrl[2].code, "ge_control_mismatch");
  EXPECT_EQ(ctrl[2].message,
            "segment 54 (line 54, byte 1510): GE-02 '999' does not match GS-06 '101'");

  auto count = parseX12(fixture("x12/ge_count_mismatch.x12"));
  ASSERT_EQ(count.size(), 3u);
  EXPECT_EQ(count[2].code, "ge_count_mismatch");
  EXPECT_EQ(count[2].message,
            "segment 54 (line 54, byte 1510): GE-01 is 3 but functional group 101 (GS at "
            "segment 2) has 2 transaction sets");
}

TEST(X12ParserErrors, InterchangeTrailerMismatchesAreFatal) {
  auto ctrl = parseX12(fixture("x12/iea_control_mismatch.x12"));
  ASSERT_EQ(ctrl.size(), 4u);
  EXPECT_EQ(ctrl[3].code, "iea_control_mismatch");
  EXPECT_EQ(ctrl[3].message,
            "segment 81 (line 81, byte 2235): IEA-02 '000000999' does not match ISA-13 "
            "'000000101'");
  auto count = parseX12(fixture("x12/iea_count_mismatch.x12"));
  ASSERT_EQ(count.size(), 4u);
  EXPECT_EQ(count[3].code, "iea_count_mismatch");
  EXPECT_EQ(count[3].message,
            "segment 81 (line 81, byte 2235): IEA-01 is 1 but interchange 000000101 (ISA at "
            "segment 1) has 2 functional groups");
}

TEST(X12ParserErrors, MissingTrailers) {
  auto iea = parseX12(fixture("x12/missing_iea.x12"));
  ASSERT_EQ(iea.size(), 4u);
  EXPECT_EQ(iea[3].code, "missing_iea");
  EXPECT_EQ(iea[3].message,
            "segment 81 (line 81, byte 2235): end of file: interchange 000000101 (ISA at "
            "segment 1) has no IEA");

  auto se = parseX12(fixture("x12/missing_se.x12"));
  ASSERT_EQ(se.size(), 1u);
  EXPECT_EQ(se[0].code, "missing_se");
  EXPECT_EQ(se[0].message,
            "segment 26 (line 26, byte 799): ST before the SE of transaction set 0001 (ST at "
            "segment 3)");

  auto ge = parseX12(kIsa101 + "\nGS*HC*S*R*20240102*1200*7*X*005010X222A1~\nST*837*0001~\n"
                               "SE*2*0001~\nIEA*1*000000101~\n");
  ASSERT_EQ(ge.size(), 2u);
  EXPECT_EQ(ge[1].code, "missing_ge");
  EXPECT_EQ(ge[1].message,
            "segment 5 (line 5, byte 173): IEA before the GE of functional group 7 (GS at "
            "segment 2)");

  auto eof_in_set = parseX12(kIsa101 + "\nGS*HC*S*R*20240102*1200*7*X*005010X222A1~\nST*837*0001~\n");
  ASSERT_EQ(eof_in_set.size(), 1u);
  EXPECT_EQ(eof_in_set[0].message,
            "segment 4 (line 4, byte 162): end of file: transaction set 0001 (ST at segment 3) "
            "has no SE");

  auto eof_in_segment =
      parseX12(kIsa101 + "\nGS*HC*S*R*20240102*1200*7*X*005010X222A1~\nST*837*00");
  ASSERT_EQ(eof_in_segment.size(), 1u);
  EXPECT_EQ(eof_in_segment[0].code, "unterminated_segment");
  EXPECT_EQ(eof_in_segment[0].message,
            "segment 3 (line 3, byte 149): end of file inside a segment (no segment terminator)");
}

TEST(X12ParserErrors, SegmentsOutsideTheirEnvelope) {
  auto stray = parseX12(fixture("x12/unexpected_segment.x12"));
  ASSERT_EQ(stray.size(), 3u);
  EXPECT_EQ(stray[2].code, "unexpected_segment");
  EXPECT_EQ(stray[2].message,
            "segment 55 (line 55, byte 1520): CLM outside a functional group (expected GS or "
            "IEA)");

  auto outside_set = parseX12(kIsa101 + "\nGS*HC*S*R*20240102*1200*7*X*005010X222A1~\nCLM*1~\n");
  ASSERT_EQ(outside_set.size(), 1u);
  EXPECT_EQ(outside_set[0].message,
            "segment 3 (line 3, byte 149): CLM outside a transaction set (expected ST or GE)");

  auto after_iea = parseX12(wrap("ST*837*0001~\nSE*2*0001~\n") + "garbage\n");
  ASSERT_EQ(after_iea.size(), 2u);
  EXPECT_EQ(after_iea[1].code, "unexpected_segment");
  EXPECT_EQ(after_iea[1].message,
            "segment 7 (line 7, byte 198): data after the IEA that is not another ISA");
}

TEST(X12ParserErrors, BadIsa) {
  auto truncated = parseX12(fixture("x12/truncated_isa.x12"));
  ASSERT_EQ(truncated.size(), 1u);
  EXPECT_EQ(truncated[0].code, "truncated_isa");
  EXPECT_EQ(truncated[0].message,
            "segment 1 (line 1, byte 0): truncated ISA: 60 of 106 bytes before end of file");

  auto invalid = parseX12(fixture("x12/invalid_isa.x12"));
  ASSERT_EQ(invalid.size(), 1u);
  EXPECT_EQ(invalid[0].code, "invalid_isa");
  EXPECT_EQ(invalid[0].message,
            "segment 1 (line 1, byte 0): ISA is not the fixed 106-byte layout: element "
            "separator expected at byte 50 of the ISA");

  auto not_x12 = parseX12(fixture("x12/not_x12.x12"));
  ASSERT_EQ(not_x12.size(), 1u);
  EXPECT_EQ(not_x12[0].code, "not_x12");
  EXPECT_EQ(not_x12[0].message,
            "segment 1 (line 1, byte 0): the file does not start with an ISA segment");

  auto empty = parseX12("\n\n");
  ASSERT_EQ(empty.size(), 1u);
  EXPECT_EQ(empty[0].message,
            "segment 1 (line 3, byte 2): end of file: no ISA segment (the file is empty)");

  std::string same = kIsa101;
  same[104] = '*';  // component separator equal to element separator
  auto dup = parseX12(same + "\n");
  ASSERT_EQ(dup.size(), 1u);
  EXPECT_EQ(dup[0].message, "segment 1 (line 1, byte 0): ISA delimiters are not distinct");

  std::string letters = kIsa101;
  letters[90] = 'X';  // ISA-13 not numeric
  auto ctl = parseX12(letters + "\n");
  ASSERT_EQ(ctl.size(), 1u);
  EXPECT_EQ(ctl[0].message,
            "segment 1 (line 1, byte 0): ISA-13 (interchange control number) is not 9 digits");
}

TEST(X12ParserErrors, BadSegments) {
  auto lower = parseX12(wrap("ST*837*0001~\nnm1*85~\nSE*3*0001~\n"));
  ASSERT_EQ(lower.size(), 1u);
  EXPECT_EQ(lower[0].code, "invalid_segment");
  EXPECT_EQ(lower[0].message,
            "segment 4 (line 4, byte 162): invalid segment id (expected 2-3 of A-Z, 0-9)");

  auto empty = parseX12(wrap("ST*837*0001~~\nSE*3*0001~\n"));
  ASSERT_EQ(empty.size(), 1u);
  EXPECT_EQ(empty[0].message, "segment 4 (line 3, byte 161): empty segment");

  auto gs = parseX12(kIsa101 + "\nGS*HC*S*R~\n");
  ASSERT_EQ(gs.size(), 1u);
  EXPECT_EQ(gs[0].code, "invalid_element");
  EXPECT_EQ(gs[0].message,
            "segment 2 (line 2, byte 107): GS needs GS-01..GS-08 with a numeric GS-06 (group "
            "control number)");

  auto se = parseX12(wrap("ST*837*0001~\nSE*two*0001~\n"));
  ASSERT_EQ(se.size(), 1u);
  EXPECT_EQ(se[0].code, "se_count_mismatch");
  EXPECT_EQ(se[0].message,
            "segment 4 (line 4, byte 162): SE-01 is not a number but transaction set 0001 (ST "
            "at segment 3) has 2 segments (ST..SE)");
}

TEST(X12ParserErrors, SizeLimits) {
  X12Options o;
  o.max_segment_bytes = 1024;
  o.max_transaction_bytes = 4096;
  auto big_segment = parseX12(wrap("ST*837*0001~\nNTE*" + std::string(2000, 'A') + "~\nSE*3*0001~\n"), o);
  ASSERT_EQ(big_segment.size(), 1u);
  EXPECT_EQ(big_segment[0].code, "segment_too_large");
  EXPECT_EQ(big_segment[0].message,
            "segment 4 (line 4, byte 162): segment is longer than max_segment_bytes (1024)");

  std::string many;
  for (int i = 0; i < 200; ++i) {
    many += "NTE*ADD*" + std::string(40, 'B') + "~\n";
  }
  auto big_set = parseX12(wrap("ST*837*0001~\n" + many + "SE*202*0001~\n"), o);
  ASSERT_EQ(big_set.size(), 1u);
  EXPECT_EQ(big_set[0].code, "transaction_too_large");
  EXPECT_EQ(big_set[0].message,
            "segment 3 (line 3, byte 149): transaction set 0001 (ST at segment 3) is longer than "
            "max_transaction_bytes (4096)");

  auto created = X12Parser::create(o);
  ASSERT_TRUE(created.ok());
  created->feed(wrap("ST*837*0001~\n" + many + "SE*202*0001~\n"));
  auto r = created->next();
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.error().is(Errc::limit));
  EXPECT_EQ(created->fatalIssue()->code, X12Errc::transaction_too_large);
}

TEST(X12ParserErrors, BadOptionsAndCheckpoints) {
  X12Options o;
  o.max_segment_bytes = 10;
  EXPECT_TRUE(X12Parser::create(o).error().is(Errc::invalid_argument));
  X12Checkpoint ck;
  ck.offset = 500;  // no ISA
  EXPECT_TRUE(X12Parser::create({}, ck).error().is(Errc::invalid_argument));
  ck.isa = "ISA*garbage";
  EXPECT_TRUE(X12Parser::create({}, ck).error().is(Errc::invalid_argument));
  ck.isa = kIsa101;
  ck.gs = "GS*HC~";
  EXPECT_TRUE(X12Parser::create({}, ck).error().is(Errc::invalid_argument));
  EXPECT_FALSE(X12Checkpoint::deserialize("5:x12v1").ok());
}

TEST(X12Checkpoint, SerializeRoundTrip) {
  X12Checkpoint c;
  c.offset = 810;
  c.line = 27;
  c.segments = 26;
  c.transactions = 1;
  c.isa = kIsa101;
  c.line_break = "\r\n";
  c.gs = kGs101;
  c.groups = 1;
  c.sets = 1;
  auto back = X12Checkpoint::deserialize(c.serialize());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, c);
  EXPECT_TRUE(X12Parser::create({}, *back).ok());
}

}  // namespace
}  // namespace psa::adapters::file
