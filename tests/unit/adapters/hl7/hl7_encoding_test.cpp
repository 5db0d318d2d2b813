// HL7 escape sequences, character sets, escaping and transcoding.
#include <gtest/gtest.h>

#include <string>

#include "psa/adapters/hl7/encoding.h"

namespace hl7 = psa::adapters::hl7;
using hl7::Charset;
using hl7::Delimiters;

namespace {

std::string unescape(std::string_view raw, const Delimiters& d = Delimiters::standard()) {
  std::string out;
  hl7::unescapeTo(raw, d, out);
  return out;
}

std::string utf8(std::string_view bytes, Charset cs) {
  std::string out;
  hl7::toUtf8To(bytes, cs, out);
  return out;
}

std::string escape(std::string_view text, const Delimiters& d = Delimiters::standard()) {
  std::string out;
  hl7::escapeTo(text, d, out);
  return out;
}

}  // namespace

TEST(Hl7Encoding, DelimiterEscapes) {
  EXPECT_EQ(unescape(R"(\F\\S\\T\\R\\E\)"), "|^&~\\");
  EXPECT_EQ(unescape(R"(a\F\b)"), "a|b");
  EXPECT_EQ(unescape("plain"), "plain");
  EXPECT_EQ(unescape(""), "");
}

TEST(Hl7Encoding, HexAndLineBreak) {
  EXPECT_EQ(unescape(R"(\X0D0A\)"), "\r\n");
  EXPECT_EQ(unescape(R"(x\X41ff\y)"), "xA\xFFy");
  EXPECT_EQ(unescape(R"(one\.br\two)"), "one\ntwo");
}

TEST(Hl7Encoding, PassThrough) {
  // Highlighting, charset switches, formatting, local and malformed escapes stay as they are.
  EXPECT_EQ(unescape(R"(\H\bold\N\)"), R"(\H\bold\N\)");
  EXPECT_EQ(unescape(R"(\C2842\x)"), R"(\C2842\x)");
  EXPECT_EQ(unescape(R"(\.sp\)"), R"(\.sp\)");
  EXPECT_EQ(unescape(R"(\Zlocal\)"), R"(\Zlocal\)");
  EXPECT_EQ(unescape(R"(\X0\)"), R"(\X0\)");    // odd number of hex digits
  EXPECT_EQ(unescape(R"(\XZZ\)"), R"(\XZZ\)");  // not hex
  EXPECT_EQ(unescape(R"(\X\)"), R"(\X\)");
  EXPECT_EQ(unescape(R"(\\)"), R"(\\)");
  EXPECT_EQ(unescape(R"(tail\F)"), R"(tail\F)");  // unterminated
  EXPECT_EQ(unescape(R"(\P\)"), R"(\P\)");        // no truncation character defined
}

TEST(Hl7Encoding, CustomDelimitersAndTruncation) {
  Delimiters d{'#', '$', '@', '!', '%', '*'};
  EXPECT_EQ(unescape("!F!!S!!T!!R!!E!!P!", d), "#$%@!*");
  EXPECT_EQ(unescape(R"(\F\)", d), R"(\F\)");  // backslash is data here
  Delimiters none{'|', 0, 0, 0, 0, 0};
  EXPECT_EQ(unescape(R"(\F\)", none), R"(\F\)");  // no escape character: nothing to resolve
}

TEST(Hl7Encoding, CharsetNames) {
  EXPECT_EQ(hl7::charsetFromName(""), Charset::ascii);
  EXPECT_EQ(hl7::charsetFromName("ASCII"), Charset::ascii);
  EXPECT_EQ(hl7::charsetFromName("8859/1"), Charset::latin1);
  EXPECT_EQ(hl7::charsetFromName(" iso-8859-1 "), Charset::latin1);
  EXPECT_EQ(hl7::charsetFromName("Latin1"), Charset::latin1);
  EXPECT_EQ(hl7::charsetFromName("8859/15"), Charset::latin9);
  EXPECT_EQ(hl7::charsetFromName("UNICODE UTF-8"), Charset::utf8);
  EXPECT_EQ(hl7::charsetFromName("UNICODE"), Charset::utf8);
  EXPECT_EQ(hl7::charsetFromName("utf-8"), Charset::utf8);
  EXPECT_EQ(hl7::charsetFromName("UTF8"), Charset::utf8);
  EXPECT_EQ(hl7::charsetFromName("CP1252"), Charset::windows1252);
  EXPECT_EQ(hl7::charsetFromName("ISO IR87"), Charset::unknown);
  EXPECT_EQ(hl7::charsetFromName(std::string(100, 'A')), Charset::unknown);
  EXPECT_EQ(hl7::charsetName(Charset::latin1), "8859/1");
  EXPECT_EQ(hl7::charsetName(Charset::utf8), "UNICODE UTF-8");
}

TEST(Hl7Encoding, ToUtf8) {
  EXPECT_EQ(utf8("abc", Charset::latin1), "abc");
  EXPECT_EQ(utf8("\xE9", Charset::latin1), "\xC3\xA9");           // é
  EXPECT_EQ(utf8("\x80", Charset::latin1), "\xE2\x82\xAC");       // read as cp1252 €
  EXPECT_EQ(utf8("\xA4", Charset::latin1), "\xC2\xA4");           // ¤
  EXPECT_EQ(utf8("\xA4", Charset::latin9), "\xE2\x82\xAC");       // € in 8859-15
  EXPECT_EQ(utf8("\x81", Charset::windows1252), "\xEF\xBF\xBD");  // undefined -> U+FFFD
  EXPECT_EQ(utf8("\xC3\xA9", Charset::utf8), "\xC3\xA9");
  EXPECT_EQ(utf8("a\xFF"
                 "b",
                 Charset::utf8),
            "a\xEF\xBF\xBD"
            "b");                                                          // invalid byte
  EXPECT_EQ(utf8("\xC0\xAF", Charset::utf8), "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong
  EXPECT_EQ(utf8("\xED\xA0\x80", Charset::utf8),
            "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");                       // surrogate
  EXPECT_EQ(utf8("\xE2\x82", Charset::utf8), "\xEF\xBF\xBD\xEF\xBF\xBD");  // truncated
  // ASCII / unknown declared: valid UTF-8 kept, else Windows-1252.
  EXPECT_EQ(utf8("\xC3\xA9", Charset::ascii), "\xC3\xA9");
  EXPECT_EQ(utf8("\xE9", Charset::ascii), "\xC3\xA9");
  EXPECT_EQ(utf8("\xE9", Charset::unknown), "\xC3\xA9");
}

TEST(Hl7Encoding, DecodeTextCombinesBoth) {
  EXPECT_EQ(hl7::decodeText(R"(\XE9\t\F\)", Delimiters::standard(), Charset::latin1), "\xC3\xA9t|");
  EXPECT_EQ(hl7::decodeText("M\xDCLLER", Delimiters::standard(), Charset::latin1), "M\xC3\x9CLLER");
}

TEST(Hl7Encoding, EscapeRoundTrip) {
  EXPECT_EQ(escape("a|b^c&d~e\\f"), R"(a\F\b\S\c\T\d\R\e\E\f)");
  EXPECT_EQ(escape("line1\r\nline2"), R"(line1\X0D\\X0A\line2)");
  EXPECT_EQ(escape(std::string("\x01", 1)), R"(\X01\)");
  for (std::string_view text : {"a|b^c&d~e\\f", "x\ry", "plain", "\\F\\"}) {
    EXPECT_EQ(unescape(escape(text)), text);
  }
}

TEST(Hl7Encoding, DelimitersUsable) {
  EXPECT_TRUE(Delimiters::standard().usable());
  EXPECT_TRUE((Delimiters{'#', '$', '@', '!', '%', 0}.usable()));
  EXPECT_TRUE((Delimiters{'|', '^', '~', '\\', '&', '#'}.usable()));
  EXPECT_FALSE((Delimiters{'|', '^', '^', '\\', '&', 0}.usable()));  // duplicate
  EXPECT_FALSE((Delimiters{'|', 'A', '~', '\\', '&', 0}.usable()));  // letter
  EXPECT_FALSE((Delimiters{'|', 0, '~', '\\', '&', 0}.usable()));    // undefined
  EXPECT_FALSE((Delimiters{'|', '^', '~', '\\', '&', '|'}.usable()));
  EXPECT_EQ(Delimiters::standard().encodingCharacters(), "^~\\&");
  EXPECT_EQ((Delimiters{'|', '^', '~', '\\', '&', '#'}.encodingCharacters()), "^~\\&#");
}

TEST(Hl7Encoding, Transcode) {
  Delimiters from{'#', '$', '@', '!', '%', 0};
  Delimiters to = Delimiters::standard();
  std::string out;
  // Structure and escapes map over; data that is a delimiter in `to` gets escaped.
  hl7::transcodeTo("A$B%C@D!F!x|y^z", from, to, out);
  EXPECT_EQ(out, R"(A^B&C~D\F\x\F\y\S\z)");
  out.clear();
  hl7::transcodeTo("same^as~is", to, to, out);
  EXPECT_EQ(out, "same^as~is");
  out.clear();
  hl7::transcodeTo("cr\rlf\n", from, to, out);
  EXPECT_EQ(out, "crlf");
}
