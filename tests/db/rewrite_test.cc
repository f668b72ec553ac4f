// rewrite_snapshot(): round trips between codecs keep the loaded index and the
// header's facts, in place and to another path; a failure at any step of an
// in-place rewrite leaves the original file; a damaged source is always
// refused (a rewrite has no VerifyMode); the log is kept valid and never
// touched; and builds without a codec refuse what needs it.
#include "iqdb/persist/rewrite.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "iqdb/persist.h"
#include "snapshot/header_codec.h"
#include "support/fault_injection_file_system.h"
#include "support/mock_indexes.h"
#include "support/test_util.h"
#include "wal/wal_segments.h"

namespace iqdb::persist::test {
namespace {

using ::testing::ElementsAre;

// Vectors with few distinct values: every codec shrinks them.
std::vector<float> patterned_vectors(std::size_t n, std::size_t dim) {
  std::vector<float> values(n * dim);
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i % 7);
  return values;
}

// Indexes with a section every codec compresses: SectionArrayIndex's sorted
// "ids" (its pseudo-random "vectors" stay raw, at a non-default alignment
// that a rewrite must keep); StreamMapIndex's single "payload".
template <class I>
I compressible_index();

template <>
SectionArrayIndex compressible_index<SectionArrayIndex>() {
  SectionArrayIndex index(8, DistanceMetric::Euclidean, make_vectors(4000, 8));
  index.set_vectors_alignment(std::uint64_t{1} << 16);
  return index;
}

template <>
StreamMapIndex compressible_index<StreamMapIndex>() {
  StreamMapIndex index(4, DistanceMetric::DotProduct);
  const std::vector<float> values = patterned_vectors(2000, 4);
  for (std::uint64_t i = 0; i < 2000; ++i) {
    if (!index.insert(i, std::span(values).subspan(i * 4, 4), {})) std::abort();
  }
  return index;
}

template <class I>
std::string compressible_section() {
  return std::is_same_v<I, SectionArrayIndex> ? "ids" : "payload";
}

template <class I>
Result<void> save_new(const I& index, const PersistConfig& config) {
  IQDB_TRY_ASSIGN(auto db, PersistedIndex<I>::open_with(index, config, OpenMode::Overwrite));
  return db.save();
}

FileHeader header_of(const std::filesystem::path& path) {
  auto header = read_file_header(path);
  EXPECT_THAT(header, IsOk());
  return header ? header.value() : FileHeader{};
}

// What a rewrite must keep: the facts, the database id and, per section,
// name, order, alignment and logical length.
void expect_same_facts_and_sections(const FileHeader& a, const FileHeader& b) {
  EXPECT_EQ(a.index_type, b.index_type);
  EXPECT_EQ(a.dim, b.dim);
  EXPECT_EQ(a.metric, b.metric);
  EXPECT_EQ(a.n_vectors, b.n_vectors);
  EXPECT_EQ(a.wal_lsn, b.wal_lsn);
  EXPECT_NE(a.database_id, 0u);
  EXPECT_EQ(a.database_id, b.database_id);
  ASSERT_EQ(a.sections.size(), b.sections.size());
  for (std::size_t i = 0; i < a.sections.size(); ++i) {
    EXPECT_EQ(a.sections[i].name, b.sections[i].name);
    EXPECT_EQ(a.sections[i].alignment, b.sections[i].alignment);
    EXPECT_EQ(a.sections[i].logical_length, b.sections[i].logical_length);
  }
}

RewriteOptions compressing_with(Compression compression) {
  RewriteOptions options;
  options.compression = compression;
  return options;
}

bool both_codecs_available() {
  return Compression::zstd().available() && Compression::lz4().available();
}

template <class I>
class RewriteRoundTripTest : public ::testing::Test {
 protected:
  TempDir dir_;
};

using IndexTypes = ::testing::Types<SectionArrayIndex, StreamMapIndex>;
TYPED_TEST_SUITE(RewriteRoundTripTest, IndexTypes);

TYPED_TEST(RewriteRoundTripTest, RawZstdLz4RawKeepsTheIndexAndEndsWithTheOriginalBytes) {
  if (!both_codecs_available()) GTEST_SKIP() << "needs both codecs (see CodecAvailabilityTest)";
  const TypeParam index = compressible_index<TypeParam>();
  const std::filesystem::path original = this->dir_.file("original.iqdb");
  ASSERT_THAT(save_new(index, PersistConfig(original)), IsOk());
  const FileHeader original_header = header_of(original);
  const std::string compressed = compressible_section<TypeParam>();

  // To another path, then in place, then to a third path.
  struct Step {
    std::filesystem::path from, to;
    Compression compression;
    SectionCompression expected;
  };
  const std::filesystem::path copy = this->dir_.file("copy.iqdb");
  const std::filesystem::path back = this->dir_.file("back.iqdb");
  const Step steps[] = {{original, copy, Compression::zstd(3), SectionCompression::Zstd},
                        {copy, copy, Compression::lz4(), SectionCompression::Lz4},
                        {copy, back, Compression::none(), SectionCompression::None}};
  SectionCompression previous = SectionCompression::None;
  for (const Step& step : steps) {
    SCOPED_TRACE(std::string(to_string(step.expected)));
    const std::uint64_t size_before = std::filesystem::file_size(step.from);
    auto report = rewrite_snapshot(step.from, step.to, compressing_with(step.compression));
    ASSERT_THAT(report, IsOk());
    const FileHeader header = header_of(step.to);
    expect_same_facts_and_sections(header, original_header);
    ASSERT_NE(header.find_section(compressed), nullptr);
    EXPECT_EQ(header.find_section(compressed)->compression, step.expected);

    EXPECT_EQ(report.value().bytes_before, size_before);
    EXPECT_EQ(report.value().bytes_after, std::filesystem::file_size(step.to));
    EXPECT_GT(report.value().seconds, 0);
    ASSERT_EQ(report.value().sections.size(), header.sections.size());
    for (std::size_t i = 0; i < header.sections.size(); ++i) {
      const SectionRewrite& section = report.value().sections[i];
      EXPECT_EQ(section.name, header.sections[i].name);
      EXPECT_EQ(section.logical_length, header.sections[i].logical_length);
      EXPECT_EQ(section.new_compression, header.sections[i].compression);
      EXPECT_EQ(section.new_stored_length, header.sections[i].stored_length);
      if (section.name == compressed) {
        EXPECT_EQ(section.old_compression, previous);
        if (step.expected != SectionCompression::None) {
          EXPECT_LT(section.new_stored_length, section.logical_length);
        }
      }
    }
    previous = step.expected;

    EXPECT_THAT(verify_snapshot(step.to), IsOk());
    auto loaded = PersistedIndex<TypeParam>::load(PersistConfig(step.to));
    ASSERT_THAT(loaded, IsOk());
    EXPECT_TRUE(same_content(loaded.value().index(), index));
  }
  // Same writer, same sections, same layout: back to raw is the original file.
  EXPECT_EQ(read_file(back), read_file(original));
}

class RewriteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_THAT(save_new(index_, PersistConfig(path_)), IsOk());
    original_ = read_file(path_);
  }

  // The file at path_ is still the original and loads as index_.
  void expect_original_untouched() {
    EXPECT_EQ(read_file(path_), original_);
    auto loaded = PersistedIndex<SectionArrayIndex>::load(PersistConfig(path_));
    ASSERT_THAT(loaded, IsOk());
    EXPECT_TRUE(same_content(loaded.value().index(), index_));
  }

  TempDir dir_;
  std::filesystem::path path_ = dir_.file("db.iqdb");
  SectionArrayIndex index_ = compressible_index<SectionArrayIndex>();
  std::vector<std::byte> original_;
};

TEST_F(RewriteTest, FailureAtAnyStepOfAnInPlaceRewriteLeavesTheOriginal) {
  if (!Compression::zstd().available()) GTEST_SKIP() << "IQDB_PERSIST_WITH_ZSTD is off";
  auto fs = std::make_shared<FaultInjectionFileSystem>();
  RewriteOptions options = compressing_with(Compression::zstd());
  options.file_system = fs;
  {  // A dry run elsewhere counts the calls a rewrite makes.
    TempDir scratch;
    fs->reset_counts();
    ASSERT_THAT(rewrite_snapshot(path_, scratch.file("db.iqdb"), options), IsOk());
  }
  const std::vector<FsOp> ops = {FsOp::CreateNew, FsOp::WriteAt, FsOp::Truncate,
                                 FsOp::Sync,      FsOp::Close,   FsOp::Rename};
  std::map<FsOp, std::size_t> counts;
  for (const FsOp op : ops) counts[op] = fs->calls(op);
  EXPECT_GE(counts[FsOp::WriteAt], 5u);  // three sections, header, prefix
  EXPECT_EQ(counts[FsOp::Rename], 1u);

  for (const FsOp op : ops) {
    for (std::size_t n = 1; n <= counts[op]; ++n) {
      SCOPED_TRACE(std::string(to_string(op)) + " #" + std::to_string(n));
      fs->fail_nth(op, n);
      EXPECT_THAT(rewrite_snapshot(path_, path_, options),
                  IsError(ErrorKind::Io, {"injected fault", ".tmp-"}));
      EXPECT_TRUE(fs->fault_fired());
      EXPECT_THAT(dir_.entries(), ElementsAre("db.iqdb", "db.iqdb.lock"));
      expect_original_untouched();
    }
  }
  fs->disarm();
  ASSERT_THAT(rewrite_snapshot(path_, path_, options), IsOk());
  EXPECT_EQ(header_of(path_).find_section("ids")->compression, SectionCompression::Zstd);
}

TEST_F(RewriteTest, ErrorsAfterTheRenameLeaveTheNewFileInPlace) {
  if (!Compression::zstd().available()) GTEST_SKIP() << "IQDB_PERSIST_WITH_ZSTD is off";
  auto fs = std::make_shared<FaultInjectionFileSystem>();
  RewriteOptions options = compressing_with(Compression::zstd());
  options.file_system = fs;
  // The directory sync; the second open (the first is the source's) reads
  // the new header back.
  const std::pair<FsOp, std::size_t> faults[] = {{FsOp::SyncDir, 1}, {FsOp::OpenReadable, 2}};
  for (const auto& [op, n] : faults) {
    SCOPED_TRACE(std::string(to_string(op)));
    write_file(path_, original_);
    fs->fail_nth(op, n);
    EXPECT_THAT(rewrite_snapshot(path_, path_, options), IsError(ErrorKind::Io, "injected fault"));
    EXPECT_TRUE(fs->fault_fired());
    EXPECT_THAT(dir_.entries(), ElementsAre("db.iqdb", "db.iqdb.lock"));
    EXPECT_EQ(header_of(path_).find_section("ids")->compression, SectionCompression::Zstd);
    auto loaded = PersistedIndex<SectionArrayIndex>::load(PersistConfig(path_));
    ASSERT_THAT(loaded, IsOk());
    EXPECT_TRUE(same_content(loaded.value().index(), index_));
  }
}

TEST_F(RewriteTest, DamagedSourceIsAlwaysRefused) {
  const FileHeader header = header_of(path_);
  const SectionInfo& vectors = *header.find_section("vectors");
  const SectionInfo& ids = *header.find_section("ids");
  struct Damage {
    std::uint64_t offset;
    ErrorKind kind;
    std::string where;
  };
  const Damage damages[] = {
      {vectors.offset + vectors.stored_length / 2, ErrorKind::ChecksumMismatch, "'vectors'"},
      {ids.offset + ids.stored_length, ErrorKind::InvalidPayload, "padding"},
  };
  const std::filesystem::path copy = dir_.file("copy.iqdb");
  for (const Damage& damage : damages) {
    SCOPED_TRACE(damage.where);
    write_file(path_, original_);
    flip_byte(path_, damage.offset, 0x10);
    const std::vector<std::byte> damaged = read_file(path_);
    for (const std::filesystem::path& to : {path_, copy}) {
      EXPECT_THAT(rewrite_snapshot(path_, to, compressing_with(Compression::none())),
                  IsError(damage.kind, {path_.string(), damage.where}));
      EXPECT_EQ(read_file(path_), damaged);
      EXPECT_THAT(dir_.entries(), ElementsAre("db.iqdb", "db.iqdb.lock"));
    }
  }
}

TEST_F(RewriteTest, DamagedCompressedChunkIsRefused) {
  if (!Compression::lz4().available()) GTEST_SKIP() << "IQDB_PERSIST_WITH_LZ4 is off";
  ASSERT_THAT(rewrite_snapshot(path_, path_, compressing_with(Compression::lz4())), IsOk());
  const SectionInfo ids = *header_of(path_).find_section("ids");
  ASSERT_EQ(ids.compression, SectionCompression::Lz4);
  flip_byte(path_, ids.offset + 1, 0x01);
  const std::vector<std::byte> damaged = read_file(path_);
  EXPECT_THAT(rewrite_snapshot(path_, path_, compressing_with(Compression::none())),
              IsError(ErrorKind::ChecksumMismatch, {path_.string(), "section 'ids' chunk 0"}));
  EXPECT_EQ(read_file(path_), damaged);
}

TEST_F(RewriteTest, CompressedSectionsMustNameSectionsOfTheSource) {
  // Checked whatever the codec (none: this build may lack the others).
  RewriteOptions options = compressing_with(Compression::none());
  options.compressed_sections = {"ids", "idz"};
  EXPECT_THAT(rewrite_snapshot(path_, path_, options),
              IsError(ErrorKind::InvalidConfig, {path_.string(), "'idz'"}));
  expect_original_untouched();
}

TEST_F(RewriteTest, OnlyTheNamedSectionsAreCompressed) {
  if (!Compression::zstd().available()) GTEST_SKIP() << "IQDB_PERSIST_WITH_ZSTD is off";
  RewriteOptions options = compressing_with(Compression::zstd());
  options.compressed_sections = {"vectors"};
  options.compression_max_ratio = 1.0;  // whatever shrinks at all
  ASSERT_THAT(rewrite_snapshot(path_, path_, options), IsOk());
  const FileHeader header = header_of(path_);
  EXPECT_EQ(header.find_section("ids")->compression, SectionCompression::None);
  EXPECT_EQ(header.find_section("vectors")->compression, SectionCompression::Zstd);
}

TEST_F(RewriteTest, MissingSourceIsNotFoundNamingIt) {
  const std::filesystem::path missing = dir_.file("missing.iqdb");
  EXPECT_THAT(rewrite_snapshot(missing, dir_.file("out.iqdb")),
              IsError(ErrorKind::NotFound, missing.string()));
  EXPECT_THAT(dir_.entries(), ElementsAre("db.iqdb", "db.iqdb.lock"));
}

// The snapshot keeps its wal_lsn, so the log (records after the last
// checkpoint) replays onto the rewritten file; its segments are not touched.
TEST(RewriteWalTest, InPlaceRewriteKeepsTheLogValidAndUntouched) {
  if (!Compression::zstd().available()) GTEST_SKIP() << "IQDB_PERSIST_WITH_ZSTD is off";
  TempDir dir;
  PersistConfig config(dir.file("db.iqdb"));
  config.wal_enabled = true;
  const std::vector<float> values = patterned_vectors(30, 4);
  StreamMapIndex expected(4, DistanceMetric::Cosine);
  {
    auto db = PersistedIndex<StreamMapIndex>::open_with(expected, config);
    ASSERT_THAT(db, IsOk());
    for (std::uint64_t i = 0; i < 30; ++i) {
      const auto vector = std::span(values).subspan(i * 4, 4);
      ASSERT_THAT(db.value().insert(i, vector), IsOk());
      ASSERT_TRUE(expected.insert(i, vector, {}));
      if (i == 19) {
        ASSERT_THAT(db.value().checkpoint(), IsOk());  // 20 in the snapshot, 10 in the log
      }
    }
  }
  const std::uint64_t lsn = header_of(config.path).wal_lsn;
  ASSERT_GT(lsn, 0u);
  const auto segments = list_wal_segments(*default_file_system(), config.path).value();
  ASSERT_EQ(segments.size(), 1u);
  const std::filesystem::path segment = wal_segment_path(config.path, segments[0]);
  const std::vector<std::byte> log = read_file(segment);

  ASSERT_THAT(rewrite_snapshot(config.path, config.path, compressing_with(Compression::zstd())),
              IsOk());
  const FileHeader header = header_of(config.path);
  EXPECT_EQ(header.wal_lsn, lsn);
  EXPECT_EQ(header.sections[0].compression, SectionCompression::Zstd);
  EXPECT_EQ(list_wal_segments(*default_file_system(), config.path).value(), segments);
  EXPECT_EQ(read_file(segment), log);

  auto loaded = PersistedIndex<StreamMapIndex>::load(config);
  ASSERT_THAT(loaded, IsOk());
  EXPECT_EQ(loaded.value().wal_replay().snapshot_lsn, lsn);
  EXPECT_EQ(loaded.value().wal_replay().records_replayed, 10u);
  EXPECT_TRUE(same_content(loaded.value().index(), expected));
}

TEST(RewriteWalTest, TargetWithALogOfItsOwnIsRefused) {
  TempDir dir;
  const PersistConfig source(dir.file("source.iqdb"));
  ASSERT_THAT(save_new(make_index<StreamMapIndex>(5, 4, DistanceMetric::Cosine), source), IsOk());
  PersistConfig other(dir.file("other.iqdb"));
  other.wal_enabled = true;
  ASSERT_THAT(PersistedIndex<StreamMapIndex>::open_with(
                  make_index<StreamMapIndex>(3, 4, DistanceMetric::Cosine), other),
              IsOk());
  const std::vector<std::byte> before = read_file(other.path);
  EXPECT_THAT(rewrite_snapshot(source.path, other.path),
              IsError(ErrorKind::AlreadyExists, {other.path.string(), "write-ahead log"}));
  EXPECT_EQ(read_file(other.path), before);
}

// Runs in every build. A source section tagged compressed whose one chunk is
// stored raw (as the writer stores a chunk that does not shrink) needs no
// codec library to decode, yet a build without the codec refuses it; and a
// target codec the build lacks is refused before anything is written.
TEST(RewriteCodecAvailabilityTest, CodecsTheBuildLacksAreUnsupported) {
  struct Codec {
    Compression compression;
    SectionCompression tag;
    const char* option;
  };
  const Codec codecs[] = {{Compression::zstd(), SectionCompression::Zstd, "IQDB_PERSIST_WITH_ZSTD"},
                          {Compression::lz4(), SectionCompression::Lz4, "IQDB_PERSIST_WITH_LZ4"}};
  for (const Codec& codec : codecs) {
    SCOPED_TRACE(codec.option);
    TempDir dir;
    const std::filesystem::path path = dir.file("db.iqdb");
    const auto index = make_index<StreamMapIndex>(50, 4, DistanceMetric::Cosine);
    ASSERT_THAT(save_new(index, PersistConfig(path)), IsOk());
    // Retag the section, and reseal the header.
    std::vector<std::byte> file = read_file(path);
    FileHeader header = header_of(path);
    SectionInfo& section = header.sections[0];
    section.compression = codec.tag;
    section.chunk_size = std::uint64_t{4} << 20;
    section.chunks = {{static_cast<std::uint32_t>(section.stored_length), section.crc32}};
    const std::vector<std::byte> header_bytes = encode_header(header);
    ASSERT_LE(header.header_offset + header_bytes.size(), section.offset);
    std::memcpy(file.data() + header.header_offset, header_bytes.data(), header_bytes.size());
    const auto prefix = encode_prefix(header_bytes, header.header_offset);
    std::memcpy(file.data(), prefix.data(), prefix.size());
    write_file(path, file);

    const std::filesystem::path raw = dir.file("raw.iqdb");
    auto rewritten = rewrite_snapshot(path, raw);
    if (codec.compression.available()) {
      ASSERT_THAT(rewritten, IsOk());
      EXPECT_EQ(rewritten.value().sections[0].old_compression, codec.tag);
      EXPECT_EQ(header_of(raw).sections[0].compression, SectionCompression::None);
      auto loaded = PersistedIndex<StreamMapIndex>::load(PersistConfig(raw));
      ASSERT_THAT(loaded, IsOk());
      EXPECT_TRUE(same_content(loaded.value().index(), index));
    } else {
      EXPECT_THAT(rewritten, IsError(ErrorKind::Unsupported, {path.string(), codec.option}));
      EXPECT_THAT(rewrite_snapshot(path, path, compressing_with(codec.compression)),
                  IsError(ErrorKind::Unsupported, codec.option));
      EXPECT_EQ(read_file(path), file);
      EXPECT_THAT(dir.entries(), ElementsAre("db.iqdb", "db.iqdb.lock"));
    }
  }
}

}  // namespace
}  // namespace iqdb::persist::test
