// Content hashes: the run-time chosen XXH3 build agrees with the reference
// (xxHash's own portable build, inlined here) however the input is split, and
// a snapshot's hashes identify its data across compression settings.
#include "snapshot/content_hash.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "iqdb/persist.h"
#include "support/mock_indexes.h"
#include "support/test_util.h"

namespace iqdb::persist::test {
namespace {

TEST(ContentHashTest, MatchesTheReferenceXxh3ForAnySplit) {
  EXPECT_EQ(content_hash({}), 0x2D06800538D394C2ull);  // XXH3-64 of no bytes
  const std::vector<std::byte> data = random_bytes(3 << 20, 11);
  for (const std::size_t size : {1ul, 16ul, 17ul, 128ul, 129ul, 240ul, 241ul, 4096ul, 3ul << 20}) {
    const auto input = std::span(data).first(size);
    const std::uint64_t reference = XXH3_64bits(input.data(), input.size());
    EXPECT_EQ(content_hash(input), reference) << size;
    ContentHasher pieces;
    for (std::size_t at = 0; at < size; at += 1000) {
      pieces.update(input.subspan(at, std::min<std::size_t>(1000, size - at)));
    }
    EXPECT_EQ(pieces.digest(), reference) << size;
  }
}

class SnapshotHashTest : public ::testing::Test {
 protected:
  FileHeader save_with(const SectionArrayIndex& index, Compression compression) {
    PersistConfig config(dir_.file("db.iqdb"));
    config.compression = compression;
    auto db = PersistedIndex<SectionArrayIndex>::open_with(index, config, OpenMode::Overwrite);
    EXPECT_THAT(db, IsOk());
    EXPECT_THAT(db.value().save(), IsOk());
    auto header = read_file_header(config.path);
    EXPECT_THAT(header, IsOk());
    return header.value();
  }

  TempDir dir_;
};

TEST_F(SnapshotHashTest, SectionHashesAreOfTheLogicalBytes) {
  const SectionArrayIndex index(8, DistanceMetric::Cosine, make_vectors(1000, 8));
  const FileHeader header = save_with(index, Compression::none());
  EXPECT_EQ(header.find_section("ids")->xxh3, content_hash(std::as_bytes(index.ids())));
  EXPECT_EQ(header.find_section("vectors")->xxh3, content_hash(std::as_bytes(index.vectors())));
  EXPECT_EQ(header.content_hash, snapshot_content_hash(header));
  EXPECT_NE(header.content_hash, 0u);
}

TEST_F(SnapshotHashTest, SameDataHashesAlikeWhateverTheCompression) {
  const SectionArrayIndex index(8, DistanceMetric::Cosine, make_vectors(50'000, 8));
  const FileHeader raw = save_with(index, Compression::none());
  for (const Compression compression : {Compression::zstd(1), Compression::lz4()}) {
    if (!compression.available()) continue;
    const FileHeader compressed = save_with(index, compression);
    ASSERT_NE(compressed.find_section("ids")->compression, SectionCompression::None);
    EXPECT_EQ(compressed.content_hash, raw.content_hash);
    EXPECT_NE(compressed.crc32, raw.crc32);  // the stored bytes differ
  }
}

TEST_F(SnapshotHashTest, AnyChangeOfDataOrFactsChangesTheHash) {
  const FileHeader base = save_with(
      SectionArrayIndex(8, DistanceMetric::Cosine, make_vectors(100, 8)), Compression::none());
  const FileHeader other_data = save_with(
      SectionArrayIndex(8, DistanceMetric::Cosine, make_vectors(100, 8, 2)), Compression::none());
  const FileHeader other_metric = save_with(
      SectionArrayIndex(8, DistanceMetric::Euclidean, make_vectors(100, 8)), Compression::none());
  EXPECT_NE(base.content_hash, other_data.content_hash);
  EXPECT_NE(base.content_hash, other_metric.content_hash);
}

}  // namespace
}  // namespace iqdb::persist::test
