// CSV reader: valid per-entity exports (quoting, BOM, CRLF, delimiters, Windows-1252,
// trimming) and broken inputs with their exact errors, lines and byte offsets.
#include <gtest/gtest.h>

#include "file_parse_util.h"
#include "psa/adapters/file/csv.h"

namespace psa::adapters::file {
namespace {

using test::CsvEvent;
using test::fixture;
using test::parseCsv;
using Kind = CsvEvent::Kind;

CsvOptions opts(char delimiter = ',', TextEncoding enc = TextEncoding::utf8,
                CsvTrim trim = CsvTrim::none) {
  CsvOptions o;
  o.delimiter = delimiter;
  o.encoding = enc;
  o.trim = trim;
  return o;
}

TEST(CsvParser, PatientsQuotedCommasDoubledQuotesAndNewlines) {
  auto ev = parseCsv(fixture("csv/patients.csv"), opts());
  ASSERT_EQ(ev.size(), 4u);
  for (const auto& e : ev) {
    EXPECT_EQ(e.kind, Kind::row) << e;
  }
  EXPECT_EQ(ev[0].json,
            R"({"PatientId":"1001","MRN":"MRN0001001","LastName":"DOE","FirstName":"JANE",)"
            R"("MiddleName":"Q","DOB":"03/14/1980","Sex":"F","Address1":"123 Main St, Apt 4",)"
            R"("City":"Springfield","State":"IL","Zip":"62701","Phone":"(217) 555-0101",)"
            R"("Email":"jane.doe@example.com","PrimaryInsurance":"Acme Health PPO"})");
  EXPECT_EQ(ev[0].number, 1u);
  EXPECT_EQ(ev[0].line, 2u);
  EXPECT_EQ(ev[1].fields[7], "45 \"Old\" Mill Rd");
  EXPECT_NE(ev[1].json.find(R"("Address1":"45 \"Old\" Mill Rd")"), std::string::npos);
  // Row 3 has a newline inside quotes: lines 4..5, and the JSON escapes it.
  EXPECT_EQ(ev[2].line, 4u);
  EXPECT_EQ(ev[2].end_line, 5u);
  EXPECT_EQ(ev[2].fields[2], "GARCÍA");
  EXPECT_EQ(ev[2].fields[7], "77 Elm St\nUnit 2");
  EXPECT_NE(ev[2].json.find(R"("Address1":"77 Elm St\nUnit 2")"), std::string::npos);
  EXPECT_EQ(ev[2].fields[13], "");
  EXPECT_EQ(ev[3].line, 6u);
  EXPECT_EQ(ev[3].fields[2], "Müller");
  EXPECT_EQ(ev[3].fields[13], "Blue Cross \"Gold\", PPO");
  // Offsets: consecutive rows tile the file after the header.
  const std::string data = fixture("csv/patients.csv");
  EXPECT_EQ(ev[0].begin, data.find('\n') + 1);
  for (size_t i = 1; i < ev.size(); ++i) {
    EXPECT_EQ(ev[i].begin, ev[i - 1].end);
  }
  EXPECT_EQ(ev.back().end, data.size());
  EXPECT_EQ(ev[1].raw, data.substr(ev[1].begin, ev[1].end - ev[1].begin - 1));
}

TEST(CsvParser, AppointmentsBomCrlfBlankLineAndNoFinalNewline) {
  const std::string data = fixture("csv/appointments.csv");
  auto ev = parseCsv(data, opts());
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_EQ(ev[0].json,
            R"({"AppointmentId":"A-20240102-0001","PatientId":"1001","ProviderId":"P100",)"
            R"("Resource":"Room 1","StartDateTime":"2024-01-02T09:00:00",)"
            R"("StopDateTime":"2024-01-02T09:30:00","LengthMinutes":"30","Type":"Follow-up",)"
            R"("Status":"Scheduled","Location":"Main Clinic","Notes":""})");
  EXPECT_EQ(ev[0].begin, 116u);  // BOM (3) + header (111) + CRLF
  EXPECT_EQ(ev[0].line, 2u);
  EXPECT_EQ(ev[1].fields[10], "Pt requests interpreter, Spanish");
  EXPECT_EQ(ev[1].begin, 226u);
  EXPECT_EQ(ev[1].end, 372u);
  // Line 4 is blank; row 3 starts on line 5 and its quoted CRLF ends on line 6.
  EXPECT_EQ(ev[2].number, 3u);
  EXPECT_EQ(ev[2].line, 5u);
  EXPECT_EQ(ev[2].end_line, 6u);
  EXPECT_EQ(ev[2].begin, 374u);
  EXPECT_EQ(ev[2].end, data.size());
  EXPECT_EQ(ev[2].fields[7], "Lab, fasting");
  EXPECT_EQ(ev[2].fields[10], "Said \"call me back\"\r\nre: time");
  EXPECT_NE(ev[2].json.find(R"("Notes":"Said \"call me back\"\r\nre: time")"), std::string::npos);
}

TEST(CsvParser, SemicolonTabAndPipeDelimiters) {
  auto charges = parseCsv(fixture("csv/charges.csv"), opts(';'));
  ASSERT_EQ(charges.size(), 3u);
  EXPECT_EQ(charges[1].json,
            R"({"ChargeId":"C0002","PatientId":"1002","EncounterId":"E5002",)"
            R"("ServiceDate":"01/02/2024","CPT":"99204","Modifier1":"25","ICD10_1":"Z00.00",)"
            R"("ICD10_2":"","Units":"1","Amount":"210,50","RenderingNPI":"1234567893"})");
  EXPECT_EQ(charges[0].fields[9], "125,00");

  auto providers = parseCsv(fixture("csv/providers.csv"), opts('\t'));
  ASSERT_EQ(providers.size(), 3u);
  EXPECT_EQ(providers[1].fields[4], "DO, FACP");
  EXPECT_EQ(providers[2].fields[5], "");
  EXPECT_EQ(providers[2].json,
            R"({"ProviderId":"P102","NPI":"1234567895","LastName":"OKAFOR","FirstName":"CHIDI",)"
            R"("Credentials":"NP","Specialty":"","Taxonomy":"363L00000X","Active":"N"})");

  // Pipe with padding, no trimming: every byte is data; the space before the quote makes
  // the second row's description an unquoted field with a quote in it.
  auto raw = parseCsv(fixture("csv/inventory.csv"), opts('|'));
  ASSERT_EQ(raw.size(), 4u);
  EXPECT_EQ(raw[0].kind, Kind::row);
  EXPECT_EQ(raw[0].fields[1], " Influenza vaccine, quadrivalent ");
  EXPECT_NE(raw[0].json.find(R"("ItemId ":"INV-001 ")"), std::string::npos);
  EXPECT_EQ(raw[1].kind, Kind::bad_row);
  EXPECT_EQ(raw[1].code, "quote_in_unquoted_field");
  // Line 4 ("   ") is not blank without trimming: one field, header has seven.
  EXPECT_EQ(raw[2].kind, Kind::bad_row);
  EXPECT_EQ(raw[2].code, "ragged_row");
  EXPECT_EQ(raw[2].message, "line 4, byte 247: row 3 has 1 fields, header has 7");
  EXPECT_EQ(raw[3].kind, Kind::row);
}

TEST(CsvParser, TrimAllRemovesPaddingOutsideQuotesAndSkipsWhitespaceLines) {
  auto ev = parseCsv(fixture("csv/inventory.csv"), opts('|', TextEncoding::utf8, CsvTrim::all));
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_EQ(ev[0].json,
            R"({"ItemId":"INV-001","Description":"Influenza vaccine, quadrivalent",)"
            R"("Lot":"L1234","ExpirationDate":"2025-06-30","QuantityOnHand":"40",)"
            R"("Unit":"dose","Location":"Fridge A"})");
  EXPECT_EQ(ev[1].fields[1], "  Gauze 4x4 | sterile  ");  // quoted: inner padding kept
  EXPECT_EQ(ev[2].number, 3u);
  EXPECT_EQ(ev[2].line, 5u);
  EXPECT_EQ(ev[2].fields[1], "Lidocaine 1%");
}

TEST(CsvParser, TrimHeadersOnly) {
  auto ev = parseCsv("Id , Name\n1 , Ann \n", opts(',', TextEncoding::utf8, CsvTrim::headers));
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].json, R"({"Id":"1 ","Name":" Ann "})");
}

TEST(CsvParser, Windows1252ConvertedToUtf8) {
  auto ev = parseCsv(fixture("csv/patients_1252.csv"), opts(',', TextEncoding::windows1252));
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].json,
            "{\"PatientId\":\"2001\",\"LastName\":\"M\xC3\xBCller\",\"FirstName\":\"J\xC3\xBCrgen\","
            "\"Note\":\"Copay 20\xE2\x82\xAC\"}");
  EXPECT_EQ(ev[1].fields[1], "Do\xC3\xB1" "a");
  EXPECT_EQ(ev[1].fields[2], "Ren\xC3\xA9" "e");
  EXPECT_EQ(ev[1].fields[3], "\xE2\x80\x9CVIP\xE2\x80\x9D \xE2\x80\x93 call first");
}

TEST(CsvParser, Windows1252FileReadAsUtf8IsInvalidPerRow) {
  auto ev = parseCsv(fixture("csv/patients_1252.csv"), opts());
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].kind, Kind::bad_row);
  EXPECT_EQ(ev[0].code, "invalid_utf8");
  EXPECT_EQ(ev[0].message, "line 2, byte 41: invalid UTF-8 (row 1)");  // the 0xFC of Müller
  EXPECT_EQ(ev[1].code, "invalid_utf8");
}

TEST(CsvParser, AutoDetectDecidesPerRow) {
  const std::string data = "Id,Name\n1,M\xC3\xBCller\n2,M\xFCller\n";
  auto ev = parseCsv(data, opts(',', TextEncoding::auto_detect));
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].fields[1], "M\xC3\xBCller");
  EXPECT_EQ(ev[1].fields[1], "M\xC3\xBCller");
}

TEST(CsvParser, Utf8BomOverridesWindows1252) {
  const std::string data = "\xEF\xBB\xBFId,Name\n1,M\xC3\xBCller\n";
  auto ev = parseCsv(data, opts(',', TextEncoding::windows1252));
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].fields[1], "M\xC3\xBCller");
  auto ck = CsvCheckpoint::deserialize(ev[0].checkpoint);
  ASSERT_TRUE(ck.ok());
  EXPECT_EQ(ck->encoding, TextEncoding::utf8);
}

TEST(CsvParser, LoneCrLineEndings) {
  auto ev = parseCsv(fixture("csv/lone_cr.csv"), opts());
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_EQ(ev[0].line, 2u);
  EXPECT_EQ(ev[1].fields[1], "BRA\rVO");
  EXPECT_EQ(ev[1].line, 3u);
  EXPECT_EQ(ev[1].end_line, 4u);
  EXPECT_EQ(ev[2].line, 5u);
  EXPECT_EQ(ev[2].json, R"({"Id":"3","Name":"CHARLIE"})");
}

TEST(CsvParser, JsonEscapesControlCharactersAndKeys) {
  const std::string data = std::string("a\"b,c\\d\n\"x\ty\",\"") + '\x01' + "\x7f\"\n";
  auto ev = parseCsv(data, opts());
  ASSERT_EQ(ev.size(), 1u) << (ev.empty() ? CsvEvent{} : ev[0]);
  // Header a"b is an unquoted field with a quote: the header is fatal.
  EXPECT_EQ(ev[0].kind, Kind::fatal);
  EXPECT_EQ(ev[0].code, "quote_in_unquoted_field");
  EXPECT_EQ(ev[0].message, "line 1, byte 1: '\"' inside an unquoted field in the header row");

  auto ok = parseCsv(std::string("\"a\"\"b\",c\\d\n\"x\ty\",\"") + '\x01' + "\x7f\"\n", opts());
  ASSERT_EQ(ok.size(), 1u);
  EXPECT_EQ(ok[0].json, "{\"a\\\"b\":\"x\\ty\",\"c\\\\d\":\"\\u0001\x7f\"}");
}

TEST(CsvParser, HeaderOnlyFileHasNoRows) {
  EXPECT_TRUE(parseCsv("Id,Name\r\n", opts()).empty());
  EXPECT_TRUE(parseCsv("Id,Name", opts()).empty());
}

TEST(CsvParser, TrailingDelimiterIsAnExtraField) {
  auto ev = parseCsv("A,B\n1,2,\n", opts());
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].code, "ragged_row");
  EXPECT_EQ(ev[0].message, "line 2, byte 8: row 1 has 3 fields, header has 2");
}

TEST(CsvParser, QuotedEmptyLineIsARowNotBlank) {
  auto ev = parseCsv("Only\n\"\"\n\nx\n", opts());
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].json, R"({"Only":""})");
  EXPECT_EQ(ev[1].json, R"({"Only":"x"})");
  EXPECT_EQ(ev[1].line, 4u);
}

// ---- broken inputs --------------------------------------------------------------------

TEST(CsvParserErrors, RaggedRowsArePerRowAndParsingContinues) {
  auto ev = parseCsv(fixture("csv/ragged.csv"), opts());
  ASSERT_EQ(ev.size(), 4u);
  EXPECT_EQ(ev[0].kind, Kind::row);
  EXPECT_EQ(ev[1].kind, Kind::bad_row);
  EXPECT_EQ(ev[1].code, "ragged_row");
  EXPECT_EQ(ev[1].err_line, 3u);
  EXPECT_EQ(ev[1].err_offset, 86u);  // first byte of the extra field
  EXPECT_EQ(ev[1].message, "line 3, byte 86: row 2 has 5 fields, header has 4");
  EXPECT_EQ(ev[1].raw, "1002,ROE,RICHARD,07/02/1975,EXTRA");
  EXPECT_TRUE(ev[1].json.empty());
  EXPECT_EQ(ev[2].code, "ragged_row");
  EXPECT_EQ(ev[2].message, "line 4, byte 106: row 3 has 3 fields, header has 4");  // line end
  EXPECT_EQ(ev[3].kind, Kind::row);
  EXPECT_EQ(ev[3].number, 4u);
  EXPECT_EQ(ev[3].json,
            R"({"PatientId":"1004","LastName":"LOE","FirstName":"LINDA","DOB":"01/01/1990"})");
}

TEST(CsvParserErrors, UnterminatedQuoteIsFatalAtTheOpeningQuote) {
  auto ev = parseCsv(fixture("csv/unterminated_quote.csv"), opts());
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].kind, Kind::row);
  EXPECT_EQ(ev[1].kind, Kind::fatal);
  EXPECT_EQ(ev[1].code, "unterminated_quote");
  EXPECT_EQ(ev[1].err_line, 3u);
  EXPECT_EQ(ev[1].err_offset, 57u);
  EXPECT_EQ(ev[1].message,
            "line 3, byte 57: quoted field is not closed before the end of the file");
}

TEST(CsvParserErrors, UnterminatedQuoteHitsRecordLimitWithAHint) {
  CsvOptions o = opts();
  o.max_record_bytes = 64;
  std::string data = "Id,Note\n1,\"open\n";
  for (int i = 0; i < 20; ++i) {
    data += "2,more text\n";
  }
  auto ev = parseCsv(data, o);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].code, "record_too_large");
  EXPECT_EQ(ev[0].err_offset, 8u + 64u);
  EXPECT_EQ(ev[0].err_line, 7u);
  EXPECT_EQ(ev[0].message,
            "line 7, byte 72: record starting at line 2, byte 8 is longer than max_record_bytes "
            "(64); it is inside a quoted field opened at line 2, byte 10 (unterminated quote?)");
  auto created = CsvParser::create(o);
  ASSERT_TRUE(created.ok());
  created->feed(data);
  auto r = created->next();
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.error().is(Errc::limit));
}

TEST(CsvParserErrors, RecordLimitIsExactAndExcludesTheLineEnding) {
  CsvOptions o = opts();
  o.max_record_bytes = 16;
  const std::string fits = "A\n1234567890123456\r\n\"123456789\n1234\"\n1234567890123456";
  for (size_t chunk : {size_t{0}, size_t{1}, size_t{5}}) {
    auto ev = parseCsv(fits, o, chunk);
    ASSERT_EQ(ev.size(), 3u);
    EXPECT_EQ(ev[0].fields[0], "1234567890123456");
    EXPECT_EQ(ev[1].fields[0], "123456789\n1234");
    EXPECT_EQ(ev[2].fields[0], "1234567890123456");
  }
  for (const std::string& too_long :
       {std::string("A\n12345678901234567\n"), std::string("A\n12345678901234567"),
        std::string("A\n\"123456789\n12345\"\r\n")}) {
    for (size_t chunk : {size_t{0}, size_t{1}, size_t{5}}) {
      auto ev = parseCsv(too_long, o, chunk);
      ASSERT_EQ(ev.size(), 1u);
      EXPECT_EQ(ev[0].code, "record_too_large");
      EXPECT_EQ(ev[0].err_offset, 18u);
      EXPECT_EQ(ev[0].err_line, too_long[2] == '"' ? 3u : 2u);
    }
  }
}

TEST(CsvParserErrors, InvalidUtf8IsPerRowWithByteOffset) {
  auto ev = parseCsv(fixture("csv/invalid_utf8.csv"), opts());
  ASSERT_EQ(ev.size(), 4u);
  EXPECT_EQ(ev[0].kind, Kind::row);
  EXPECT_EQ(ev[1].code, "invalid_utf8");
  EXPECT_EQ(ev[1].message, "line 3, byte 37: invalid UTF-8 (row 2)");
  EXPECT_EQ(ev[2].code, "invalid_utf8");
  EXPECT_EQ(ev[2].message, "line 4, byte 47: invalid UTF-8 (row 3)");
  EXPECT_EQ(ev[3].kind, Kind::row);
  EXPECT_EQ(ev[3].json, R"({"PatientId":"1004","LastName":"O'NEIL"})");
}

TEST(CsvParserErrors, InvalidUtf8InsideMultilineFieldNamesThePhysicalLine) {
  auto ev = parseCsv("Id,Note\n1,\"first\nsecond \xFF\"\n", opts());
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].message, "line 3, byte 24: invalid UTF-8 (row 1)");
}

TEST(CsvParserErrors, QuoteErrorsArePerRow) {
  auto ev = parseCsv(fixture("csv/quote_errors.csv"), opts());
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_EQ(ev[0].code, "quote_in_unquoted_field");
  EXPECT_EQ(ev[0].message, "line 2, byte 21: '\"' inside an unquoted field (row 1)");
  EXPECT_EQ(ev[1].code, "text_after_closing_quote");
  EXPECT_EQ(ev[1].message, "line 3, byte 34: text after the closing quote of a field (row 2)");
  EXPECT_EQ(ev[2].kind, Kind::row);
  EXPECT_EQ(ev[2].json, R"({"Id":"3","Height":"5'4","Name":"POE"})");
}

TEST(CsvParserErrors, HeaderProblemsAreFatal) {
  auto dup = parseCsv(fixture("csv/duplicate_header.csv"), opts());
  ASSERT_EQ(dup.size(), 1u);
  EXPECT_EQ(dup[0].code, "duplicate_header_name");
  EXPECT_EQ(dup[0].message,
            "line 1, byte 29: duplicate header name 'LastName' (columns 2 and 4)");

  auto empty = parseCsv(fixture("csv/empty_header.csv"), opts());
  ASSERT_EQ(empty.size(), 1u);
  EXPECT_EQ(empty[0].code, "empty_header_name");
  EXPECT_EQ(empty[0].message, "line 1, byte 10: header column 2 has no name");

  auto blank = parseCsv(fixture("csv/blank_only.csv"), opts());
  ASSERT_EQ(blank.size(), 1u);
  EXPECT_EQ(blank[0].code, "missing_header");
  EXPECT_EQ(blank[0].message, "line 4, byte 4: no header row (the file is empty or blank)");

  auto none = parseCsv("", opts());
  ASSERT_EQ(none.size(), 1u);
  EXPECT_EQ(none[0].message, "line 1, byte 0: no header row (the file is empty or blank)");

  auto utf16 = parseCsv(fixture("csv/utf16.csv"), opts());
  ASSERT_EQ(utf16.size(), 1u);
  EXPECT_EQ(utf16[0].code, "unsupported_encoding");
  EXPECT_EQ(utf16[0].message,
            "line 1, byte 0: UTF-16/UTF-32 byte-order mark; only UTF-8 and Windows-1252 files "
            "are supported");

  auto bad_utf8 = parseCsv("Id,Na\xC0me\n1,2\n", opts());
  ASSERT_EQ(bad_utf8.size(), 1u);
  EXPECT_EQ(bad_utf8[0].message, "line 1, byte 5: invalid UTF-8 in the header row");

  CsvOptions narrow = opts();
  narrow.max_columns = 2;
  auto wide = parseCsv("A,B,C\n1,2,3\n", narrow);
  ASSERT_EQ(wide.size(), 1u);
  EXPECT_EQ(wide[0].code, "too_many_columns");
  EXPECT_EQ(wide[0].message, "line 1, byte 4: header has more than max_columns (2) columns");
}

TEST(CsvParserErrors, FatalErrorIsSticky) {
  auto p = CsvParser::create(opts());
  ASSERT_TRUE(p.ok());
  p->feed("A,B\n1,\"x");
  p->finish();
  auto r1 = p->next();
  ASSERT_FALSE(r1.ok());
  EXPECT_TRUE(r1.error().is(Errc::invalid_input));
  auto r2 = p->next();
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r1.error().message, r2.error().message);
  EXPECT_EQ(r2.error().message,
            "line 2, byte 6: quoted field is not closed before the end of the file");
}

TEST(CsvParserErrors, BadOptionsAndCheckpointsAreRejected) {
  CsvOptions o = opts();
  o.delimiter = 'x';
  EXPECT_TRUE(CsvParser::create(o).error().is(Errc::invalid_argument));
  o = opts();
  o.max_record_bytes = 4;
  EXPECT_TRUE(CsvParser::create(o).error().is(Errc::invalid_argument));
  CsvCheckpoint ck;
  ck.offset = 10;  // no header
  EXPECT_TRUE(CsvParser::create(opts(), ck).error().is(Errc::invalid_argument));
  ck.header = {"A", "A"};
  EXPECT_TRUE(CsvParser::create(opts(), ck).error().is(Errc::invalid_argument));
  EXPECT_FALSE(CsvCheckpoint::deserialize("").ok());
  EXPECT_FALSE(CsvCheckpoint::deserialize("4:csv1").ok());
  EXPECT_FALSE(CsvCheckpoint::deserialize("4:csv11:51:21:01:01:1").ok());
}

TEST(CsvCheckpoint, SerializeRoundTrip) {
  CsvCheckpoint c;
  c.offset = 123456789012ULL;
  c.line = 77;
  c.rows = 70;
  c.header = {"PatientId", "Last:Name", "", "x\n,y"};
  c.encoding = TextEncoding::windows1252;
  auto back = CsvCheckpoint::deserialize(c.serialize());
  ASSERT_TRUE(back.ok()) << back.error().describe();
  EXPECT_EQ(*back, c);
  std::string s = c.serialize();
  s.pop_back();
  EXPECT_FALSE(CsvCheckpoint::deserialize(s).ok());
  EXPECT_FALSE(CsvCheckpoint::deserialize(c.serialize() + "x").ok());
}

}  // namespace
}  // namespace psa::adapters::file
