// Text encoding helpers used by the CSV reader: UTF-8 validation, Windows-1252 table, JSON
// string escaping.
#include <gtest/gtest.h>

#include <string>

#include "psa/adapters/file/text_encoding.h"

namespace psa::adapters::file {
namespace {

constexpr size_t npos = std::string_view::npos;

TEST(TextEncoding, ValidUtf8) {
  EXPECT_EQ(findInvalidUtf8(""), npos);
  EXPECT_EQ(findInvalidUtf8("plain ASCII text, long enough for the 8-byte path"), npos);
  EXPECT_EQ(findInvalidUtf8("M\xC3\xBCller \xE2\x82\xAC \xF0\x9F\x98\x80 \xEF\xBF\xBF"), npos);
  EXPECT_EQ(findInvalidUtf8("\xF4\x8F\xBF\xBF"), npos);  // U+10FFFF
  EXPECT_EQ(findInvalidUtf8("\xED\x9F\xBF"), npos);      // U+D7FF
  EXPECT_EQ(findInvalidUtf8(std::string(1, '\0')), npos);
}

TEST(TextEncoding, InvalidUtf8ReportsTheFirstBadByte) {
  EXPECT_EQ(findInvalidUtf8("abc\x80"), 3u);                      // lone continuation
  EXPECT_EQ(findInvalidUtf8("abcdefghij\xC3"), 10u);              // truncated at end
  EXPECT_EQ(findInvalidUtf8("\xC3\x28"), 0u);                     // bad continuation
  EXPECT_EQ(findInvalidUtf8("ok\xC0\xAF"), 2u);                   // overlong '/'
  EXPECT_EQ(findInvalidUtf8("\xE0\x80\xAF"), 0u);                 // overlong 3-byte
  EXPECT_EQ(findInvalidUtf8("\xED\xA0\x80"), 0u);                 // surrogate D800
  EXPECT_EQ(findInvalidUtf8("\xF0\x8F\xBF\xBF"), 0u);             // overlong 4-byte
  EXPECT_EQ(findInvalidUtf8("\xF4\x90\x80\x80"), 0u);             // > U+10FFFF
  EXPECT_EQ(findInvalidUtf8("\xF5\x80\x80\x80"), 0u);
  EXPECT_EQ(findInvalidUtf8("\xE2\x82"), 0u);                     // truncated 3-byte
  EXPECT_EQ(findInvalidUtf8("\xE2\x82\x41"), 0u);                 // bad third byte
  EXPECT_EQ(findInvalidUtf8("12345678M\xFCller"), 9u);            // a 1252 byte
}

TEST(TextEncoding, Windows1252Table) {
  EXPECT_EQ(windows1252ToCodePoint(0x41), U'A');
  EXPECT_EQ(windows1252ToCodePoint(0x80), U'\u20AC');
  EXPECT_EQ(windows1252ToCodePoint(0x8A), U'\u0160');
  EXPECT_EQ(windows1252ToCodePoint(0x93), U'\u201C');
  EXPECT_EQ(windows1252ToCodePoint(0x96), U'\u2013');
  EXPECT_EQ(windows1252ToCodePoint(0x9F), U'\u0178');
  EXPECT_EQ(windows1252ToCodePoint(0x81), U'\u0081');  // undefined: C1 control
  EXPECT_EQ(windows1252ToCodePoint(0xA0), U'\u00A0');
  EXPECT_EQ(windows1252ToCodePoint(0xFC), U'\u00FC');
  EXPECT_EQ(windows1252ToCodePoint(0xFF), U'\u00FF');

  std::string out;
  appendWindows1252AsUtf8(out, "M\xFCller \x80 \x93x\x94 \x9F \x81");
  EXPECT_EQ(out, "M\xC3\xBCller \xE2\x82\xAC \xE2\x80\x9Cx\xE2\x80\x9D \xC5\xB8 \xC2\x81");
  // Every byte converts to valid UTF-8.
  std::string all;
  for (int b = 0; b < 256; ++b) {
    all.push_back(static_cast<char>(b));
  }
  std::string conv;
  appendWindows1252AsUtf8(conv, all);
  EXPECT_EQ(findInvalidUtf8(conv), npos);
}

TEST(TextEncoding, JsonEscaping) {
  std::string out;
  appendJsonString(out, std::string("a\"b\\c\n\r\t\b\f") + '\x01' + '\x1f' + "\x7f \xC3\xBC");
  EXPECT_EQ(out, "\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001f\x7f \xC3\xBC\"");
  out.clear();
  appendJsonString(out, "");
  EXPECT_EQ(out, "\"\"");
  out.clear();
  appendJsonString(out, std::string(1, '\0'));
  EXPECT_EQ(out, "\"\\u0000\"");
  out.clear();
  appendJsonStringFromWindows1252(out, "\"M\xFCller\"\n\x80");
  EXPECT_EQ(out, "\"\\\"M\xC3\xBCller\\\"\\n\xE2\x82\xAC\"");
}

TEST(TextEncoding, Names) {
  EXPECT_EQ(parseEncoding("UTF-8"), TextEncoding::utf8);
  EXPECT_EQ(parseEncoding("cp1252"), TextEncoding::windows1252);
  EXPECT_EQ(parseEncoding("Windows-1252"), TextEncoding::windows1252);
  EXPECT_EQ(parseEncoding("auto"), TextEncoding::auto_detect);
  EXPECT_EQ(parseEncoding("latin1"), std::nullopt);
  EXPECT_EQ(encodingName(TextEncoding::windows1252), "windows-1252");
}

}  // namespace
}  // namespace psa::adapters::file
