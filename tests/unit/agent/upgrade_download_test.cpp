// The package download over P/upgrade/chunk (agent/src/upgrade_download.h) on real files: chunks
// in any order with duplicates assemble to the signed package, a restart resumes with the
// chunks already on disk, a new command for another package starts over, and every bad chunk
// is refused with its reason without touching what is stored.
#include "upgrade_download.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "psa/agent/signed_document.h"
#include "psa/store/digest.h"
#include "test_support.h"

namespace psa::agent::upgrade {
namespace {

constexpr int64_t kIssued = 1'796'601'600'000;

std::string chunkPayload(const std::string& version, uint32_t k, uint32_t n, std::string_view bytes,
                         std::string sha = {}) {
  json::Value c = json::Value::object();
  c.set("version", json::Value::string(version));
  c.set("chunk", json::Value::integer(k));
  c.set("chunks", json::Value::integer(n));
  c.set("sha256_chunk", json::Value::string(sha.empty() ? sha256Hex(bytes) : sha));
  c.set("data", json::Value::string(base64Encode(bytes)));
  return json::serialize(c);
}

struct Package {
  std::string bytes;
  SigningKey key = std::move(SigningKey::generate()).value();
  SigningKeys keys;
  json::Value args = json::Value::object();

  explicit Package(std::string version = "1.5.0", size_t size = 10'000) {
    std::mt19937 rng(7);
    for (size_t i = 0; i < size; ++i) {
      bytes.push_back(static_cast<char>(rng()));
    }
    EXPECT_TRUE(keys.addPem(key.publicPem()).ok());
    args.set("version", json::Value::string(version));
    args.set("sha256", json::Value::string(sha256Hex(bytes)));
    args.set("size", json::Value::integer(static_cast<int64_t>(bytes.size())));
    args.set("sig", json::Value::string(base64Encode(key.sign(bytes))));
    args.set("release_key_id", json::Value::string(key.keyId()));
  }
  std::string version() const { return args.getString("version"); }
  // Chunk k (1-based) of n equal parts.
  Chunk chunk(uint32_t k, uint32_t n) const {
    const size_t part = (bytes.size() + n - 1) / n;
    const std::string_view b = std::string_view(bytes).substr((k - 1) * part, part);
    auto c = parseChunk(chunkPayload(version(), k, n, b));
    EXPECT_TRUE(c.ok()) << (c ? "" : c.error().message);
    return c ? std::move(c).value() : Chunk{};
  }
};

Download beginOk(const std::filesystem::path& dir, const Package& p, const std::string& id = "c1") {
  auto d = Download::begin(dir, p.args, kIssued, id);
  EXPECT_TRUE(d.ok()) << (d ? "" : d.error().message);
  return std::move(d).value();
}

TEST(UpgradeDownload, ChunksInAnyOrderWithDuplicatesAssembleToTheSignedPackage) {
  psa::test::TempDir dir;
  const Package p;
  Download d = beginOk(dir / "download", p);
  std::vector<uint32_t> order = {3, 1, 4, 2, 3, 1};
  std::vector<Download::Outcome> outcomes;
  for (uint32_t k : order) {
    outcomes.push_back(d.accept(p.chunk(k, 4)).outcome);
  }
  EXPECT_EQ(outcomes[4], Download::Outcome::duplicate);
  EXPECT_EQ(outcomes[5], Download::Outcome::duplicate);
  EXPECT_EQ(std::count(outcomes.begin(), outcomes.end(), Download::Outcome::stored), 4);
  ASSERT_TRUE(d.complete());
  auto bytes = d.assemble();
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(*bytes, p.bytes);
  const auto args = std::get<Args>(parseArgs(p.args, kIssued));
  EXPECT_FALSE(verifyPackage(*bytes, args, p.keys, SigningKeys()).has_value());
  d.discard();
  EXPECT_FALSE(std::filesystem::exists(dir / "download"));
}

TEST(UpgradeDownload, ARestartResumesWithTheChunksOnDisk) {
  psa::test::TempDir dir;
  const Package p;
  {
    Download d = beginOk(dir / "download", p);
    EXPECT_EQ(d.accept(p.chunk(1, 5)).outcome, Download::Outcome::stored);
    EXPECT_EQ(d.accept(p.chunk(4, 5)).outcome, Download::Outcome::stored);
    EXPECT_FALSE(d.assemble().ok());  // incomplete
  }
  std::optional<Download> resumed = Download::resume(dir / "download");
  ASSERT_TRUE(resumed.has_value());
  EXPECT_EQ(resumed->version(), "1.5.0");
  EXPECT_EQ(resumed->commandId(), "c1");
  EXPECT_EQ(resumed->received(), 2u);
  EXPECT_EQ(resumed->total(), 5u);
  EXPECT_EQ(resumed->missing(10), (std::vector<uint32_t>{2, 3, 5}));
  EXPECT_EQ(resumed->accept(p.chunk(4, 5)).outcome, Download::Outcome::duplicate);

  // The cloud sends the command again (after its own restart): the same package resumes.
  Download again = beginOk(dir / "download", p, "c2");
  EXPECT_EQ(again.received(), 2u);
  EXPECT_EQ(again.commandId(), "c2");
  for (uint32_t k : {2u, 3u, 5u}) {
    EXPECT_EQ(again.accept(p.chunk(k, 5)).outcome, Download::Outcome::stored);
  }
  auto bytes = again.assemble();
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(*bytes, p.bytes);
}

TEST(UpgradeDownload, ACommandForAnotherPackageStartsOver) {
  psa::test::TempDir dir;
  const Package old_one("1.5.0");
  {
    Download d = beginOk(dir / "download", old_one);
    d.accept(old_one.chunk(1, 2));
  }
  const Package newer("1.5.1", 5000);
  Download d = beginOk(dir / "download", newer);
  EXPECT_EQ(d.received(), 0u);
  EXPECT_EQ(d.accept(old_one.chunk(2, 2)).outcome, Download::Outcome::wrong_version);
  EXPECT_FALSE(std::filesystem::exists(dir / "download" / "chunk-1"));
}

TEST(UpgradeDownload, InconsistentChunksAreRefusedAndNothingBeyondTheAnnouncedSizeIsStored) {
  psa::test::TempDir dir;
  const Package p;
  Download d = beginOk(dir / "download", p);
  EXPECT_EQ(d.accept(p.chunk(1, 4)).outcome, Download::Outcome::stored);
  EXPECT_EQ(d.accept(p.chunk(1, 5)).outcome, Download::Outcome::inconsistent);  // count changed
  // A chunk that would carry the package past its announced size.
  auto big = parseChunk(chunkPayload("1.5.0", 2, 4, std::string(9'000, 'x')));
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(d.accept(*big).outcome, Download::Outcome::inconsistent);
  EXPECT_EQ(d.received(), 1u);

  // Too few chunks to carry the package at all.
  psa::test::TempDir other;
  Download d2 = beginOk(other / "download", Package("1.5.0", 9'000'000));
  auto one = parseChunk(chunkPayload("1.5.0", 1, 1, "x"));
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(d2.accept(*one).outcome, Download::Outcome::inconsistent);
}

TEST(UpgradeDownload, BadChunkPayloadsAreRefusedWithTheMember) {
  const std::string data = "some package bytes";
  const struct {
    std::string payload;
    const char* says;
  } cases[] = {
      {"not json", "not JSON"},
      {"[]", "expected an object"},
      {chunkPayload("1.5.0", 1, 1, data, std::string(64, '0')), "damaged in transit"},
      {chunkPayload("1.5.0", 3, 2, data), "chunk: expected 1..chunks"},
      {chunkPayload("1.5.0", 1, 0, data), "chunks: expected"},
      {chunkPayload("v1", 1, 1, data), "version"},
      {R"({"version":"1.5.0","chunk":1,"chunks":1,"sha256_chunk":")" + sha256Hex(data) +
           R"(","data":"not base64!"})",
       "data: expected the base64"},
      {R"({"version":"1.5.0","chunk":1,"chunks":1,"data":"AAAA"})", "sha256_chunk"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.payload.substr(0, 80));
    auto r = parseChunk(c.payload);
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(r.error().is(Errc::invalid_input));
    EXPECT_NE(r.error().message.find(c.says), std::string::npos) << r.error().message;
  }
}

TEST(UpgradeDownload, BeginRefusesInvalidArgs) {
  psa::test::TempDir dir;
  json::Value args = Package().args;
  args.set("size", json::Value::integer(-1));
  auto d = Download::begin(dir / "download", args, kIssued, "c1");
  ASSERT_FALSE(d.ok());
  EXPECT_TRUE(d.error().is(Errc::invalid_argument));
  EXPECT_FALSE(Download::resume(dir / "download").has_value());
}

}  // namespace
}  // namespace psa::agent::upgrade
