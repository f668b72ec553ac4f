// Compressed snapshot sections: round trips through stream and section persistence for
// each codec, the per-section choice (by name, by ratio), zero-copy for what
// stays raw, chunked parallel decoding, and hostile compressed data: every
// flipped byte and truncation, a chunk that lies about what it decodes to, and
// a file that needs a codec the build lacks.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <numeric>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "iqdb/persist.h"
#include "snapshot/header_codec.h"
#include "snapshot/section_codec.h"
#include "support/mock_indexes.h"
#include "support/test_util.h"
#include "util/crc32.h"

namespace iqdb::persist::test {
namespace {

using SectionDb = PersistedIndex<SectionArrayIndex>;
using StreamDb = PersistedIndex<StreamMapIndex>;

struct Codec {
  Compression compression;
  SectionCompression tag;
  const char* option;
};

std::string codec_name(const ::testing::TestParamInfo<Codec>& info) {
  return std::string(to_string(info.param.tag));
}

// Vectors that compress well: few distinct values.
std::vector<float> patterned_vectors(std::size_t n, std::size_t dim) {
  std::vector<float> values(n * dim);
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i % 7);
  return values;
}

// Vectors no codec shrinks: random bits (some are NaNs: compare bytes).
std::vector<float> random_vectors(std::size_t n, std::size_t dim) {
  std::vector<float> values(n * dim);
  const std::vector<std::byte> bits = random_bytes(values.size() * sizeof(float), 7);
  std::memcpy(values.data(), bits.data(), bits.size());
  return values;
}

bool same_bytes(std::span<const float> a, std::span<const float> b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size_bytes()) == 0;
}

// The file (path of a mapping, from /proc/self/maps) that holds `address`;
// empty for anonymous memory.
std::string mapping_holding(const void* address) {
  std::ifstream maps("/proc/self/maps");
  const auto target = reinterpret_cast<std::uintptr_t>(address);
  for (std::string line; std::getline(maps, line);) {
    std::istringstream fields(line);
    std::string range, perms, offset, device, inode, path;
    fields >> range >> perms >> offset >> device >> inode;
    std::getline(fields >> std::ws, path);
    const std::size_t dash = range.find('-');
    const std::uintptr_t begin = std::stoull(range.substr(0, dash), nullptr, 16);
    const std::uintptr_t end = std::stoull(range.substr(dash + 1), nullptr, 16);
    if (target >= begin && target < end) return path;
  }
  return "<unmapped>";
}

using Edit = std::function<void(FileHeader&, std::vector<std::byte>&)>;

// Rewrites the snapshot `file` (saved at `path`) with its header changed by
// `edit` (which may change the file's bytes too), every CRC that covers the
// header recomputed.
void reseal_file(const std::filesystem::path& path, std::vector<std::byte> file, const Edit& edit) {
  auto read = read_file_header(path);
  ASSERT_THAT(read, IsOk());
  FileHeader header = read.value();
  edit(header, file);
  const std::vector<std::byte> bytes = encode_header(header);
  ASSERT_LE(header.header_offset + bytes.size(), header.sections[0].offset);
  std::memcpy(file.data() + header.header_offset, bytes.data(), bytes.size());
  const auto prefix = encode_prefix(bytes, header.header_offset);
  std::memcpy(file.data(), prefix.data(), prefix.size());
  write_file(path, file);
}

// Saves `index` as a new snapshot at config.path.
template <class I>
Result<void> save_new(I index, const PersistConfig& config) {
  IQDB_TRY_ASSIGN(auto db,
                  PersistedIndex<I>::open_with(std::move(index), config, OpenMode::Overwrite));
  return db.save();
}

class CompressionTest : public ::testing::TestWithParam<Codec> {
 protected:
  void SetUp() override {
    config_.compression = GetParam().compression;
    if (!GetParam().compression.available()) {
      EXPECT_THAT(save_new(SectionArrayIndex(4, DistanceMetric::Cosine), config_),
                  IsError(ErrorKind::Unsupported, GetParam().option));
      GTEST_SKIP() << GetParam().option << " is off in this build";
    }
  }

  const SectionInfo& section_named(const FileHeader& header, std::string_view name) {
    const SectionInfo* section = header.find_section(name);
    EXPECT_NE(section, nullptr) << name;
    static const SectionInfo kNone;
    return section != nullptr ? *section : kNone;
  }

  FileHeader saved_header() {
    auto header = read_file_header(config_.path);
    EXPECT_THAT(header, IsOk());
    return header ? header.value() : FileHeader{};
  }

  TempDir dir_;
  PersistConfig config_{dir_.file("db.iqdb")};
};

TEST_P(CompressionTest, SortedIdsCompressRandomFloatsStayRawAndZeroCopy) {
  constexpr std::size_t kCount = 20'000, kDim = 16;
  ASSERT_THAT(
      save_new(SectionArrayIndex(kDim, DistanceMetric::Euclidean, random_vectors(kCount, kDim)),
               config_),
      IsOk());
  const FileHeader header = saved_header();
  const SectionInfo& ids = section_named(header, "ids");
  EXPECT_EQ(ids.compression, GetParam().tag);
  EXPECT_EQ(ids.logical_length, kCount * sizeof(std::uint64_t));
  EXPECT_LT(ids.stored_length, ids.logical_length * 0.6);
  EXPECT_EQ(section_named(header, "vectors").compression, SectionCompression::None);
  // 13 bytes cannot shrink: stored raw.
  EXPECT_EQ(section_named(header, "shape").compression, SectionCompression::None);

  for (const VerifyMode verify : {VerifyMode::Eager, VerifyMode::Skip}) {
    config_.verify = verify;
    auto loaded = SectionDb::load(config_);
    ASSERT_THAT(loaded, IsOk());
    const SectionArrayIndex& index = loaded.value().index();
    std::vector<std::uint64_t> expected_ids(kCount);
    std::iota(expected_ids.begin(), expected_ids.end(), std::uint64_t{0});
    EXPECT_TRUE(std::ranges::equal(index.ids(), expected_ids));
    EXPECT_TRUE(same_bytes(index.vectors(), random_vectors(kCount, kDim)));
    // The raw section is read from the file's mapping, the compressed one
    // from anonymous memory.
    EXPECT_EQ(mapping_holding(index.vectors().data()), config_.path.string());
    EXPECT_EQ(mapping_holding(index.ids().data()), "");
  }
}

TEST_P(CompressionTest, StreamPersistenceRoundTrip) {
  StreamMapIndex index(8, DistanceMetric::Cosine);
  const std::vector<float> values = patterned_vectors(3000, 8);
  for (std::uint64_t i = 0; i < 3000; ++i) {
    ASSERT_TRUE(index.insert(i, std::span(values).subspan(i * 8, 8), {}));
  }
  ASSERT_THAT(save_new(index, config_), IsOk());
  const FileHeader header = saved_header();
  ASSERT_EQ(header.sections.size(), 1u);
  EXPECT_EQ(header.sections[0].compression, GetParam().tag);
  auto loaded = StreamDb::load(config_);
  ASSERT_THAT(loaded, IsOk());
  EXPECT_EQ(loaded.value().index().vectors(), index.vectors());
}

TEST_P(CompressionTest, LargeSectionIsChunkedAndDecodesOnAnyThreadCount) {
  // 12 MB of ids: twelve 1 MiB chunks (the last one shorter).
  constexpr std::size_t kCount = 1'500'000, kDim = 1;
  const SectionArrayIndex index(kDim, DistanceMetric::Cosine, patterned_vectors(kCount, kDim));
  ASSERT_THAT(save_new(index, config_), IsOk());
  const SectionInfo ids = section_named(saved_header(), "ids");
  EXPECT_EQ(ids.compression, GetParam().tag);
  EXPECT_EQ(ids.chunk_size, std::uint64_t{1} << 20);
  EXPECT_EQ(ids.chunks.size(), 12u);
  for (const unsigned threads : {1u, 2u, 5u}) {
    config_.verify_threads = threads;
    auto loaded = SectionDb::load(config_);
    ASSERT_THAT(loaded, IsOk());
    EXPECT_TRUE(same_content(loaded.value().index(), index));
  }
  auto report = verify_snapshot(config_.path);
  ASSERT_THAT(report, IsOk());
  EXPECT_EQ(report.value().bytes_checked,
            saved_header().sections[0].stored_length + ids.stored_length +
                section_named(saved_header(), "vectors").stored_length);
}

TEST_P(CompressionTest, SnapshotLoadedAfterAnotherDecodesIntoItsRecycledMemory) {
  // 12 MB of vectors each (and 8 MB of ids), of different content.
  constexpr std::size_t kCount = 1'000'000, kDim = 3;
  const SectionArrayIndex first(kDim, DistanceMetric::Cosine, patterned_vectors(kCount, kDim));
  std::vector<float> other_values(kCount * kDim);
  for (std::size_t i = 0; i < other_values.size(); ++i) {
    other_values[i] = static_cast<float>(i * 3 % 11);
  }
  const SectionArrayIndex second(kDim, DistanceMetric::Cosine, other_values);
  PersistConfig second_config(dir_.file("second.iqdb"));
  second_config.compression = config_.compression;
  ASSERT_THAT(save_new(first, config_), IsOk());
  ASSERT_THAT(save_new(second, second_config), IsOk());
  ASSERT_EQ(section_named(saved_header(), "vectors").compression, GetParam().tag);

  const float* first_vectors = nullptr;
  {
    auto loaded = SectionDb::load(config_);
    ASSERT_THAT(loaded, IsOk());
    EXPECT_TRUE(same_content(loaded.value().index(), first));
    first_vectors = loaded.value().index().vectors().data();
  }
  auto loaded = SectionDb::load(second_config);
  ASSERT_THAT(loaded, IsOk());
  EXPECT_EQ(loaded.value().index().vectors().data(), first_vectors);
  EXPECT_TRUE(same_content(loaded.value().index(), second));
}

TEST_P(CompressionTest, OnlyTheNamedSectionsAreCompressed) {
  constexpr std::size_t kCount = 5000, kDim = 8;
  config_.compressed_sections = {"vectors"};
  ASSERT_THAT(
      save_new(SectionArrayIndex(kDim, DistanceMetric::Cosine, patterned_vectors(kCount, kDim)),
               config_),
      IsOk());
  const FileHeader header = saved_header();
  EXPECT_EQ(section_named(header, "vectors").compression, GetParam().tag);
  EXPECT_EQ(section_named(header, "ids").compression, SectionCompression::None);
  EXPECT_THAT(SectionDb::load(config_), IsOk());
}

TEST_P(CompressionTest, MaxRatioDecidesWhatPays) {
  constexpr std::size_t kCount = 5000, kDim = 8;
  // Sorted ids 0..4999 shrink well under 1/2, but not under 1/100.
  config_.compression_max_ratio = 0.01;
  ASSERT_THAT(
      save_new(SectionArrayIndex(kDim, DistanceMetric::Cosine, random_vectors(kCount, kDim)),
               config_),
      IsOk());
  EXPECT_EQ(section_named(saved_header(), "ids").compression, SectionCompression::None);
  config_.compression_max_ratio = 0.5;
  ASSERT_THAT(SectionDb::load(config_).value().save(), IsOk());
  EXPECT_EQ(section_named(saved_header(), "ids").compression, GetParam().tag);
}

// A small compressed snapshot: stream persistence's one section, compressed.
class HostileCompressedTest : public CompressionTest {
 protected:
  void SetUp() override {
    CompressionTest::SetUp();
    if (IsSkipped()) return;
    index_ = StreamMapIndex(4, DistanceMetric::Cosine);
    const std::vector<float> values = patterned_vectors(500, 4);
    for (std::uint64_t i = 0; i < 500; ++i) {
      ASSERT_TRUE(index_.insert(i, std::span(values).subspan(i * 4, 4), {}));
    }
    ASSERT_THAT(save_new(index_, config_), IsOk());
    original_ = read_file(config_.path);
    ASSERT_EQ(saved_header().sections[0].compression, GetParam().tag);
  }

  void reseal(const Edit& edit) { reseal_file(config_.path, original_, edit); }

  StreamMapIndex index_{4, DistanceMetric::Cosine};
  std::vector<std::byte> original_;
};

TEST_P(HostileCompressedTest, EveryFlippedByteIsAnErrorOrChangesNothing) {
  const FileHeader header = saved_header();
  const SectionInfo& section = header.sections[0];
  // Every byte of the prefix, header and section; the zero padding around
  // them is sampled.
  const auto used = [&](std::size_t offset) {
    return offset < header.header_offset + header.header_length ||
           (offset >= section.offset && offset < section.offset + section.stored_length);
  };
  const std::size_t step = kSanitized ? 7 : 1;
  for (std::size_t offset = 0; offset < original_.size(); offset += used(offset) ? step : 61) {
    write_file(config_.path, original_);
    flip_byte(config_.path, offset, 0x10);
    config_.verify = VerifyMode::Eager;
    auto eager = StreamDb::load(config_);
    ASSERT_FALSE(eager) << "offset " << offset;
    ASSERT_THAT(eager.error().message(), ::testing::HasSubstr(config_.path.string()));
    // Skipping verification skips the padding, never a compressed chunk's CRC.
    config_.verify = VerifyMode::Skip;
    auto skipped = StreamDb::load(config_);
    if (skipped) {
      ASSERT_EQ(skipped.value().index().vectors(), index_.vectors()) << "offset " << offset;
    }
  }
}

TEST_P(HostileCompressedTest, EveryTruncationIsAnError) {
  const std::size_t step = kSanitized ? 7 : 1;
  for (std::size_t size = 0; size < original_.size(); size += step) {
    write_file(config_.path, std::span(original_).first(size));
    ASSERT_FALSE(StreamDb::load(config_)) << "size " << size;
  }
}

TEST_P(HostileCompressedTest, DamagedChunkIsNamedByVerify) {
  const SectionInfo section = saved_header().sections[0];
  flip_byte(config_.path, section.offset + 1, 0x01);
  EXPECT_THAT(verify_snapshot(config_.path),
              IsError(ErrorKind::ChecksumMismatch, "section 'payload' chunk 0"));
  EXPECT_THAT(StreamDb::load(config_),
              IsError(ErrorKind::ChecksumMismatch, "section 'payload' chunk 0"));
}

TEST_P(HostileCompressedTest, DataThatDecodesToAnotherLengthIsInvalidPayload) {
  // CRCs intact, lengths lying: one logical byte more than the data holds.
  reseal([](FileHeader& header, std::vector<std::byte>&) { ++header.sections[0].logical_length; });
  EXPECT_THAT(StreamDb::load(config_),
              IsError(ErrorKind::InvalidPayload, {"section 'payload' chunk 0", "decode"}));
}

TEST_P(HostileCompressedTest, GarbageWithValidCrcsIsInvalidPayload) {
  reseal([](FileHeader& header, std::vector<std::byte>& file) {
    SectionInfo& section = header.sections[0];
    const auto garbage = random_bytes(section.chunks[0].stored_length, 3);
    std::memcpy(file.data() + section.offset, garbage.data(), garbage.size());
    section.chunks[0].crc32 = crc32(garbage);
    section.crc32 = section.chunks[0].crc32;
    header.crc32 = section.crc32;
  });
  EXPECT_THAT(StreamDb::load(config_), IsError(ErrorKind::InvalidPayload, "does not decode"));
}

// `iqdb-persist verify` promises every byte checked: a chunk whose CRC is
// right but whose data a load cannot decode fails verification too, with the
// load's error.
TEST_P(HostileCompressedTest, VerifyRefusesWhatALoadCannotDecode) {
  const Edit garbage = [](FileHeader& header, std::vector<std::byte>& file) {
    SectionInfo& section = header.sections[0];
    const auto bytes = random_bytes(section.chunks[0].stored_length, 3);
    std::memcpy(file.data() + section.offset, bytes.data(), bytes.size());
    section.chunks[0].crc32 = crc32(bytes);
    section.crc32 = section.chunks[0].crc32;
    header.crc32 = section.crc32;
  };
  const Edit longer = [](FileHeader& header, std::vector<std::byte>&) {
    ++header.sections[0].logical_length;
  };
  for (const Edit& edit : {garbage, longer}) {
    write_file(config_.path, original_);  // reseal() reads the header on disk
    reseal(edit);
    const auto loaded = StreamDb::load(config_);
    ASSERT_FALSE(loaded);
    const auto verified = verify_snapshot(config_.path);
    ASSERT_THAT(verified, IsError(loaded.error().kind(), {"section 'payload' chunk 0", "decode"}));
    EXPECT_EQ(verified.error().message(), loaded.error().message());
  }
}

// Runs in every build: a section tagged compressed whose one chunk is stored
// raw (as the writer stores a chunk that does not shrink) decodes without the
// codec's library, but a build without the codec refuses it all the same.
TEST(ChunkTableTest, SectionCrcThatItsChunksDoNotMakeIsInvalidHeaderWhenVerified) {
  // 1.2 MB of raw vectors: two chunks. Every chunk's CRC matches its bytes;
  // only the section's CRC (and the payload CRC made from it) disagree.
  TempDir dir;
  PersistConfig config(dir.file("db.iqdb"));
  const SectionArrayIndex index(1, DistanceMetric::Cosine, random_vectors(300'000, 1));
  ASSERT_THAT(save_new(index, config), IsOk());
  reseal_file(config.path, read_file(config.path), [](FileHeader& header, auto&) {
    SectionInfo* vectors = nullptr;
    for (SectionInfo& section : header.sections) {
      if (section.name == "vectors") vectors = &section;
    }
    ASSERT_NE(vectors, nullptr);
    ASSERT_EQ(vectors->chunks.size(), 2u);
    vectors->crc32 ^= 1;
    header.crc32 = 0;
    for (const SectionInfo& section : header.sections) {
      header.crc32 = crc32_combine(header.crc32, section.crc32, section.stored_length);
    }
  });
  ASSERT_THAT(read_file_header(config.path), IsOk());  // not checked when reading a header
  config.verify = VerifyMode::Skip;
  EXPECT_THAT(SectionDb::load(config), IsOk());
  const std::string why = "section 'vectors' chunk table: chunk CRCs combine to";
  EXPECT_THAT(verify_snapshot(config.path), IsError(ErrorKind::InvalidHeader, why));
  config.verify = VerifyMode::Eager;
  EXPECT_THAT(SectionDb::load(config), IsError(ErrorKind::InvalidHeader, why));
}

TEST(CodecAvailabilityTest, FileNeedingACodecLoadsOnlyWhenTheBuildHasIt) {
  const Codec codecs[] = {{Compression::zstd(), SectionCompression::Zstd, "IQDB_PERSIST_WITH_ZSTD"},
                          {Compression::lz4(), SectionCompression::Lz4, "IQDB_PERSIST_WITH_LZ4"}};
  for (const Codec& codec : codecs) {
    TempDir dir;
    const PersistConfig config(dir.file("db.iqdb"));
    const auto index = make_index<StreamMapIndex>(50, 4, DistanceMetric::Cosine);
    ASSERT_THAT(save_new(index, config), IsOk());
    reseal_file(
        config.path, read_file(config.path), [&](FileHeader& header, std::vector<std::byte>&) {
          SectionInfo& section = header.sections[0];
          section.compression = codec.tag;
          section.chunk_size = std::uint64_t{4} << 20;
          section.chunks = {{static_cast<std::uint32_t>(section.stored_length), section.crc32}};
        });
    auto loaded = StreamDb::load(config);
    if (codec.compression.available()) {
      ASSERT_THAT(loaded, IsOk());
      EXPECT_EQ(loaded.value().index().vectors(), index.vectors());
    } else {
      EXPECT_THAT(loaded, IsError(ErrorKind::Unsupported, {config.path.string(), codec.option}));
    }
    // Checking CRCs needs no codec.
    EXPECT_THAT(verify_snapshot(config.path), IsOk());
  }
}

// A compressed section is decoded into memory the file does not provide:
// when the process cannot get that much, the load fails with Io naming the
// section, and succeeds once the memory is there.
TEST(DecodedMemoryTest, SectionThatDoesNotFitInMemoryFailsTheLoadWithIo) {
  if (kSanitized) GTEST_SKIP() << "sanitizers need more address space than the limit leaves";
  if (!Compression::lz4().available()) GTEST_SKIP() << "IQDB_PERSIST_WITH_LZ4 is off";
  TempDir dir;
  PersistConfig config(dir.file("db.iqdb"));
  config.compression = Compression::lz4();
  config.fsync_policy = FsyncPolicy::never();
  const std::size_t kCount = 16'384;  // 16 MiB of zero vectors: a 64 KiB file
  ASSERT_THAT(
      save_new(SectionArrayIndex(256, DistanceMetric::Cosine, std::vector<float>(256 * kCount)),
               config),
      IsOk());
  ASSERT_LT(std::filesystem::file_size(config.path), std::uint64_t{1} << 20);
  std::optional<Result<SectionDb>> loaded;
  {
    AddressSpaceLimit limit(std::size_t{8} << 20);
    ASSERT_TRUE(limit.active());
    loaded = SectionDb::load(config);
  }
  EXPECT_THAT(*loaded, IsError(ErrorKind::Io, {config.path.string() + ": section 'vectors'",
                                               "cannot map 16777216 bytes of memory"}));
  auto retried = SectionDb::load(config);
  ASSERT_THAT(retried, IsOk());
  EXPECT_EQ(retried.value().index().vectors().size(), 256 * kCount);
}

// "none" is a section's tag, not a codec: asking for its encoder or decoder
// is a caller's mistake. A tag from a newer format is no codec of this build.
TEST(SectionCodecTest, NoneAndUnknownTagsAreNotCodecs) {
  EXPECT_EQ(to_string(SectionCompression::None), "none");
  EXPECT_EQ(to_string(SectionCompression::Zstd), "zstd");
  EXPECT_EQ(to_string(SectionCompression::Lz4), "lz4");
  std::vector<std::byte> out(16);
  const std::vector<std::byte> stored(16);
  EXPECT_THAT(ChunkEncoder::create(SectionCompression::None, 0, "/d/x.iqdb"),
              IsError(ErrorKind::InvalidArgument, "/d/x.iqdb: no encoder for none"));
  EXPECT_THAT(decode_chunk(SectionCompression::None, stored, out, "/d/x.iqdb: section 'ids'"),
              IsError(ErrorKind::InvalidArgument, "section 'ids': none is not a codec"));

  const auto unknown = static_cast<SectionCompression>(9);
  EXPECT_EQ(to_string(unknown), "unknown");
  EXPECT_FALSE(codec_available(unknown));
  EXPECT_THAT(
      check_codec_available(unknown, "/d/x.iqdb"),
      IsError(ErrorKind::Unsupported, "/d/x.iqdb: unknown compression is not in this build"));
  EXPECT_THAT(ChunkEncoder::create(unknown, 0, "/d/x.iqdb"), IsError(ErrorKind::Unsupported));
  EXPECT_THAT(decode_chunk(unknown, stored, out, "/d/x.iqdb"), IsError(ErrorKind::Unsupported));
}

INSTANTIATE_TEST_SUITE_P(Codecs, CompressionTest,
                         ::testing::Values(Codec{Compression::zstd(1), SectionCompression::Zstd,
                                                 "IQDB_PERSIST_WITH_ZSTD"},
                                           Codec{Compression::lz4(), SectionCompression::Lz4,
                                                 "IQDB_PERSIST_WITH_LZ4"}),
                         codec_name);
INSTANTIATE_TEST_SUITE_P(Codecs, HostileCompressedTest,
                         ::testing::Values(Codec{Compression::zstd(1), SectionCompression::Zstd,
                                                 "IQDB_PERSIST_WITH_ZSTD"},
                                           Codec{Compression::lz4(), SectionCompression::Lz4,
                                                 "IQDB_PERSIST_WITH_LZ4"}),
                         codec_name);

}  // namespace
}  // namespace iqdb::persist::test
