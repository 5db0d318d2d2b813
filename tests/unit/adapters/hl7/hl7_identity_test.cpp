// De-duplication identity: sender + control id + content hash.
#include <gtest/gtest.h>

#include "psa/adapters/hl7/identity.h"
#include "psa/adapters/hl7/mllp.h"
#include "psa/store/digest.h"

namespace hl7 = psa::adapters::hl7;

namespace {

std::string identityOf(std::string_view text) {
  hl7::Message m;
  EXPECT_TRUE(m.parse(text).ok());
  return hl7::dedupeIdentity(m);
}

const std::string kMsg = "MSH|^~\\&|APP|FAC|R|RF|20240101||ADT^A04|CTRL1|P|2.5\rPID|1||MRN1\r";

}  // namespace

TEST(Hl7Identity, Sha256) {
  EXPECT_EQ(psa::sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(psa::sha256Hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Hl7Identity, Format) {
  std::string content = kMsg.substr(0, kMsg.size() - 1);  // without the final CR
  EXPECT_EQ(identityOf(kMsg), "hl7v2:3:APP3:FAC5:CTRL1" + psa::sha256Hex(content));
}

TEST(Hl7Identity, ResendIsTheSameEvenWithOtherFraming) {
  EXPECT_EQ(identityOf(kMsg), identityOf(kMsg + "\r\n"));
  EXPECT_EQ(identityOf(kMsg), identityOf("\r\n" + kMsg));
}

TEST(Hl7Identity, SameControlIdOtherContentDiffers) {
  std::string other = kMsg;
  other.replace(other.find("MRN1"), 4, "MRN2");
  EXPECT_NE(identityOf(kMsg), identityOf(other));
}

TEST(Hl7Identity, SenderIsPartOfIt) {
  std::string a = "MSH|^~\\&|AB|C|R|RF|1||ADT^A04|X|P|2.5\r";
  std::string b = "MSH|^~\\&|A|BC|R|RF|1||ADT^A04|X|P|2.5\r";
  // Length prefixes keep "AB"+"C" and "A"+"BC" apart.
  EXPECT_EQ(identityOf(a).substr(0, 16), "hl7v2:2:AB1:C1:X");
  EXPECT_EQ(identityOf(b).substr(0, 16), "hl7v2:1:A2:BC1:X");
}
