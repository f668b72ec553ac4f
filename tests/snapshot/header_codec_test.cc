// The prefix and header decoder against hostile input: every length, offset
// and tag a file can lie about is crafted here byte by byte (FlatBuffers
// built directly) and must give its specific error, never a crash.
#include "snapshot/header_codec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "iqdb/persist.h"
#include "snapshot_header_generated.h"
#include "support/mock_indexes.h"
#include "support/test_util.h"
#include "util/crc32.h"

namespace iqdb::persist::test {
namespace {

constexpr std::uint64_t kCraftCap = 1 << 20;  // sections beyond this stay unwritten

// A well-formed two-section snapshot described field by field, so that each
// test can break exactly one thing and re-seal the CRCs around it.
class HostileHeaderTest : public ::testing::Test {
 protected:
  HostileHeaderTest() : path_(dir_.file("crafted.iqdb")) {
    header_.index_type = std::string(StreamMapIndex::kIndexType);
    header_.dim = 4;
    header_.metric = DistanceMetric::Euclidean;
    header_.n_vectors = 2;
    header_.writer_version = "test";
    header_.sections = {{"a", 4096, 100, 100, SectionCompression::None, 0, 4096, 0, {}},
                        {"b", 8192, 50, 50, SectionCompression::None, 0, 4096, 0, {}}};
  }

  // Section CRCs of the (zero) bytes and the payload CRC, as a writer would.
  // (Sections too long to exist keep CRC 0: the reader rejects them first.
  // zlib's crc32_combine64 never returns for lengths of 2^63 or more.)
  static void seal(FileHeader& header) {
    header.crc32 = 0;
    for (SectionInfo& section : header.sections) {
      if (section.stored_length > kCraftCap) continue;
      section.crc32 = crc32(std::vector<std::byte>(section.stored_length));
      header.crc32 = crc32_combine(header.crc32, section.crc32, section.stored_length);
    }
  }

  // The file for `header`, with the header at `header_offset`; its size is
  // where the last in-range section or the header ends, plus `extra`.
  static std::vector<std::byte> build(const FileHeader& header, std::uint64_t header_offset = 32,
                                      std::uint64_t extra = 0) {
    const std::vector<std::byte> header_bytes = encode_header(header);
    std::uint64_t size = header_offset + header_bytes.size();
    for (const SectionInfo& section : header.sections) {
      if (section.offset <= kCraftCap && section.stored_length <= kCraftCap) {
        size = std::max(size, section.offset + section.stored_length);
      }
    }
    std::vector<std::byte> file(size + extra);
    std::memcpy(file.data() + header_offset, header_bytes.data(), header_bytes.size());
    const auto prefix = encode_prefix(header_bytes, header_offset);
    std::memcpy(file.data(), prefix.data(), prefix.size());
    return file;
  }

  // Recomputes the prefix CRC after a test edited prefix bytes.
  static void reseal_prefix(std::vector<std::byte>& file) {
    const std::uint32_t crc = crc32(std::span(file).first(format::kPrefixCrcOffset));
    for (int i = 0; i < 4; ++i) file[format::kPrefixCrcOffset + i] = std::byte(crc >> (8 * i));
  }

  static void store_u32(std::vector<std::byte>& file, std::size_t offset, std::uint32_t value) {
    for (int i = 0; i < 4; ++i) file[offset + i] = std::byte(value >> (8 * i));
  }

  // Checks that reading the header, verifying and loading all reject `file`.
  void expect_rejected(const std::vector<std::byte>& file, ErrorKind kind,
                       const std::string& mention) {
    write_file(path_, file);
    EXPECT_THAT(read_file_header(path_), IsError(kind, {path_.string(), mention}));
    EXPECT_THAT(verify_snapshot(path_), IsError(kind, {path_.string(), mention}));
    PersistConfig config(path_);
    config.verify = VerifyMode::Skip;
    EXPECT_THAT(PersistedIndex<StreamMapIndex>::load(config), IsError(kind, path_.string()));
  }

  void expect_rejected(FileHeader header, ErrorKind kind, const std::string& mention) {
    seal(header);
    expect_rejected(build(header), kind, mention);
  }

  TempDir dir_;
  std::filesystem::path path_;
  FileHeader header_;
};

TEST_F(HostileHeaderTest, CraftedBaselineIsValid) {
  seal(header_);
  write_file(path_, build(header_));
  auto read = read_file_header(path_);
  ASSERT_THAT(read, IsOk());
  EXPECT_EQ(read.value().sections, header_.sections);
  EXPECT_EQ(read.value().index_type, header_.index_type);
  EXPECT_EQ(read.value().crc32, header_.crc32);
  EXPECT_THAT(verify_snapshot(path_), IsOk());
}

TEST_F(HostileHeaderTest, EncodeDecodeRoundTripsEveryField) {
  header_.wal_lsn = 77;
  header_.database_id = 0xfedcba9876543210;
  header_.sections[1].alignment = std::uint64_t{1} << 30;
  header_.sections[1].offset = std::uint64_t{1} << 30;
  seal(header_);
  const std::vector<std::byte> bytes = encode_header(header_);
  const std::uint64_t file_size = (std::uint64_t{1} << 30) + 50;
  const HeaderLocation location{32, static_cast<std::uint32_t>(bytes.size()), crc32(bytes)};
  auto decoded = decode_header(location, bytes, file_size, "mem");
  ASSERT_THAT(decoded, IsOk());
  FileHeader expected = header_;
  expected.header_offset = 32;
  expected.header_length = location.length;
  expected.file_size = file_size;
  EXPECT_EQ(decoded.value(), expected);
}

TEST_F(HostileHeaderTest, NamesWithNulBytesRoundTripWhole) {
  using namespace std::string_literals;
  header_.index_type = "type\0x"s;
  header_.sections[0].name = "nul\0a"s;
  header_.sections[1].name = "nul\0b"s;
  seal(header_);
  write_file(path_, build(header_));
  auto read = read_file_header(path_);
  ASSERT_THAT(read, IsOk());
  EXPECT_EQ(read.value().index_type, "type\0x"s);
  EXPECT_EQ(read.value().sections, header_.sections);
}

TEST_F(HostileHeaderTest, SectionPastEndOfFileIsTruncatedPayload) {
  header_.sections[1].offset = std::uint64_t{1} << 40;
  expect_rejected(header_, ErrorKind::TruncatedPayload, "section 'b' (offset 1099511627776");
}

TEST_F(HostileHeaderTest, HugeSectionLengthIsTruncatedPayload) {
  header_.sections[1].stored_length = header_.sections[1].logical_length = std::uint64_t{1} << 50;
  expect_rejected(header_, ErrorKind::TruncatedPayload, "extends past the end");
}

TEST_F(HostileHeaderTest, OffsetPlusLengthOverflowIsTruncatedPayload) {
  header_.sections[1].stored_length = header_.sections[1].logical_length = UINT64_MAX;
  expect_rejected(header_, ErrorKind::TruncatedPayload, "section 'b'");
  header_.sections[1].offset = UINT64_MAX & ~std::uint64_t{4095};
  header_.sections[1].stored_length = header_.sections[1].logical_length = 8192;
  expect_rejected(header_, ErrorKind::TruncatedPayload, "section 'b'");
}

TEST_F(HostileHeaderTest, OverlappingSectionsAreInvalidHeader) {
  header_.sections[1].offset = 4096;
  expect_rejected(header_, ErrorKind::InvalidHeader, "section 'b' at offset 4096 overlaps");
}

TEST_F(HostileHeaderTest, SectionsOutOfOrderAreInvalidHeader) {
  std::swap(header_.sections[0], header_.sections[1]);
  expect_rejected(header_, ErrorKind::InvalidHeader, "section 'a' at offset 4096 overlaps");
}

TEST_F(HostileHeaderTest, SectionOverlappingThePrefixIsInvalidHeader) {
  header_.sections[0].offset = 0;
  expect_rejected(header_, ErrorKind::InvalidHeader, "overlaps the prefix");
}

TEST_F(HostileHeaderTest, SectionOverlappingTheHeaderIsInvalidHeader) {
  seal(header_);
  expect_rejected(build(header_, 4096 + 16), ErrorKind::InvalidHeader,
                  "section 'a' (offset 4096, 100 bytes) overlaps the header");
}

TEST_F(HostileHeaderTest, MisalignedSectionOffsetIsInvalidHeader) {
  header_.sections[1].offset = 8192 + 8;
  expect_rejected(header_, ErrorKind::InvalidHeader,
                  "offset 8200 is not a multiple of its "
                  "alignment 4096");
}

TEST_F(HostileHeaderTest, BadSectionAlignmentIsInvalidHeader) {
  for (const std::uint64_t alignment : {std::uint64_t{0}, std::uint64_t{6000}, std::uint64_t{2048},
                                        std::uint64_t{1} << 31, std::uint64_t{1} << 63}) {
    header_.sections[0].alignment = alignment;
    expect_rejected(header_, ErrorKind::InvalidHeader,
                    "section 'a' has alignment " + std::to_string(alignment));
  }
}

TEST_F(HostileHeaderTest, DuplicateSectionNamesAreInvalidHeader) {
  header_.sections[1].name = "a";
  expect_rejected(header_, ErrorKind::InvalidHeader, "section name 'a' appears twice");
}

TEST_F(HostileHeaderTest, EmptyOrOverlongSectionNameIsInvalidHeader) {
  header_.sections[1].name = "";
  expect_rejected(header_, ErrorKind::InvalidHeader, "section #1 has a name of 0 bytes");
  header_.sections[1].name = std::string(256, 'n');
  expect_rejected(header_, ErrorKind::InvalidHeader, "section #1 has a name of 256 bytes");
}

TEST_F(HostileHeaderTest, TooManySectionsIsInvalidHeader) {
  header_.sections.clear();
  for (std::size_t i = 0; i <= kMaxSections; ++i) {
    header_.sections.push_back(
        {"s" + std::to_string(i), 4096, 0, 0, SectionCompression::None, 0, 4096, 0, {}});
  }
  expect_rejected(header_, ErrorKind::InvalidHeader, "1025 sections (at most 1024 allowed)");
}

TEST_F(HostileHeaderTest, HeaderLengthOutsideLimitsIsInvalidHeader) {
  seal(header_);
  std::vector<std::byte> file = build(header_);
  store_u32(file, format::kHeaderLengthOffset, format::kMaxHeaderLength + 1);
  reseal_prefix(file);
  expect_rejected(file, ErrorKind::InvalidHeader, "header length 1048577 is outside 1..1048576");
  store_u32(file, format::kHeaderLengthOffset, UINT32_MAX);
  reseal_prefix(file);
  expect_rejected(file, ErrorKind::InvalidHeader, "header length 4294967295");
  store_u32(file, format::kHeaderLengthOffset, 0);
  reseal_prefix(file);
  expect_rejected(file, ErrorKind::InvalidHeader, "header length 0");
}

TEST_F(HostileHeaderTest, HeaderOffsetInsidePrefixOrMisalignedIsInvalidHeader) {
  seal(header_);
  for (const std::uint64_t offset : {0u, 16u, 36u, 33u}) {
    std::vector<std::byte> file = build(header_, 40);
    const auto prefix = encode_prefix(encode_header(header_), offset);
    std::memcpy(file.data(), prefix.data(), prefix.size());
    expect_rejected(file, ErrorKind::InvalidHeader,
                    "header offset " + std::to_string(offset) + " is not a multiple of 8");
  }
}

TEST_F(HostileHeaderTest, HeaderPastEndOfFileIsTruncatedHeader) {
  seal(header_);
  for (const std::uint64_t offset :
       {std::uint64_t{8192}, std::uint64_t{1} << 40, UINT64_MAX & ~std::uint64_t{7}}) {
    std::vector<std::byte> file = build(header_);
    const auto prefix = encode_prefix(encode_header(header_), offset);
    std::memcpy(file.data(), prefix.data(), prefix.size());
    expect_rejected(file, ErrorKind::TruncatedHeader, "header (offset " + std::to_string(offset));
  }
}

TEST_F(HostileHeaderTest, IndexTypeEmptyOrTooLongIsInvalidHeader) {
  header_.index_type = "";
  expect_rejected(header_, ErrorKind::InvalidHeader, "index type has 0 bytes (expected 1..64)");
  header_.index_type = std::string(65, 't');
  expect_rejected(header_, ErrorKind::InvalidHeader, "index type has 65 bytes");
}

TEST_F(HostileHeaderTest, UnknownMetricTagIsInvalidMetric) {
  for (const int tag : {5, 77, 255}) {
    header_.metric = static_cast<DistanceMetric>(tag);
    expect_rejected(header_, ErrorKind::InvalidMetric, "metric tag " + std::to_string(tag));
  }
}

TEST_F(HostileHeaderTest, UnknownCompressionTagIsInvalidHeader) {
  for (const int tag : {3, 200}) {
    header_.sections[0].compression = static_cast<SectionCompression>(tag);
    expect_rejected(header_, ErrorKind::InvalidHeader,
                    "section 'a' has unknown compression tag " + std::to_string(tag));
  }
}

// Section 'a' as a compressed section of two chunks: 500 stored bytes
// holding `logical` bytes in chunks of 64 KiB, split 300 + 200.
SectionInfo compressed_a(std::uint64_t logical = 100'000) {
  SectionInfo a{"a", 4096, 500, logical, SectionCompression::Zstd, 0, 4096, 64 << 10, {}};
  a.chunks = {{300, crc32(std::vector<std::byte>(300))}, {200, crc32(std::vector<std::byte>(200))}};
  return a;
}

TEST_F(HostileHeaderTest, CompressedSectionWithAConsistentChunkTableReads) {
  header_.sections[0] = compressed_a();
  seal(header_);
  write_file(path_, build(header_));
  auto read = read_file_header(path_);
  ASSERT_THAT(read, IsOk());
  EXPECT_EQ(read.value().sections[0].chunks, header_.sections[0].chunks);
  EXPECT_EQ(read.value().sections[0].chunk_logical_length(1), 100'000u - (64u << 10));
}

TEST_F(HostileHeaderTest, CompressedSectionWithoutChunkTableIsInvalidHeader) {
  header_.sections[0].compression = SectionCompression::Lz4;
  expect_rejected(header_, ErrorKind::InvalidHeader, "section 'a' chunk table: missing");
}

TEST_F(HostileHeaderTest, ChunkTableThatDisagreesWithTheSectionIsInvalidHeader) {
  const auto rejected = [&](const SectionInfo& a, const std::string& mention) {
    FileHeader header = header_;
    header.sections[0] = a;
    expect_rejected(header, ErrorKind::InvalidHeader, "section 'a' chunk table: " + mention);
  };
  SectionInfo a = compressed_a();
  a.chunk_size = 5000;
  rejected(a, "chunk size 5000 is not a power of two");
  a = compressed_a();
  a.chunk_size = std::uint64_t{128} << 20;
  rejected(a, "chunk size 134217728 is not a power of two from");
  a = compressed_a(200'000);  // needs 4 chunks of 64 KiB
  rejected(a, "2 chunks, but 200000 logical bytes in chunks of 65536 make 4");
  a = compressed_a();
  a.chunks[1] = {199, crc32(std::vector<std::byte>(199))};
  rejected(a, "chunks store 499 bytes, the section 500");
  a = compressed_a();
  a.chunk_size = 0;
  rejected(a, "chunks without a chunk size");
}

TEST_F(HostileHeaderTest, ChunkClaimingMoreThanTheMaxExpansionIsInvalidHeader) {
  // 200 stored bytes may decode to at most 200 * 256 = 51200: a chunk of
  // 64 KiB from them is a decompression bomb, refused before any allocation.
  header_.sections[0] = compressed_a(2 * (64 << 10));
  expect_rejected(header_, ErrorKind::InvalidHeader, "chunk 1 stores 200 bytes for 65536");
}

TEST_F(HostileHeaderTest, RawChunkNotOfItsLogicalLengthIsInvalidHeader) {
  header_.sections[0].chunk_size = 64 << 10;
  header_.sections[0].chunks = {{99, crc32(std::vector<std::byte>(99))}};
  expect_rejected(header_, ErrorKind::InvalidHeader, "chunk 0 stores 99 bytes for 100");
}

TEST_F(HostileHeaderTest, LogicalLengthOfRawSectionDifferentFromStoredIsInvalidHeader) {
  header_.sections[0].logical_length = 101;
  expect_rejected(header_, ErrorKind::InvalidHeader, "logical length 101 but stored length 100");
}

TEST_F(HostileHeaderTest, TrailingBytesAreInvalidHeader) {
  seal(header_);
  expect_rejected(build(header_, 32, 10), ErrorKind::InvalidHeader, "10 trailing bytes");
}

TEST_F(HostileHeaderTest, PayloadCrcDisagreeingWithSectionCrcsIsInvalidHeader) {
  seal(header_);
  header_.crc32 ^= 1;
  expect_rejected(build(header_), ErrorKind::InvalidHeader, "disagrees with its section CRCs");
}

TEST_F(HostileHeaderTest, WrongSectionCrcIsFoundByVerificationOnly) {
  seal(header_);
  header_.sections[1].crc32 ^= 0x100;
  header_.crc32 = crc32_combine(header_.sections[0].crc32, header_.sections[1].crc32, 50);
  write_file(path_, build(header_));
  EXPECT_THAT(read_file_header(path_), IsOk());
  EXPECT_THAT(verify_snapshot(path_),
              IsError(ErrorKind::ChecksumMismatch, "section 'b' (offset 8192, 50 bytes)"));
}

TEST_F(HostileHeaderTest, GarbageHeaderBytesWithValidCrcAreInvalidHeader) {
  for (const std::size_t length : {1u, 7u, 8u, 12u, 100u, 1000u}) {
    for (std::uint64_t seed = 1; seed <= 20; ++seed) {
      std::vector<std::byte> garbage = random_bytes(length, seed * 1000 + length);
      if (length >= 8 && seed % 2 == 0) std::memcpy(garbage.data() + 4, "IQSH", 4);
      std::vector<std::byte> file(32 + length);
      std::memcpy(file.data() + 32, garbage.data(), length);
      const auto prefix = encode_prefix(garbage, 32);
      std::memcpy(file.data(), prefix.data(), prefix.size());
      expect_rejected(file, ErrorKind::InvalidHeader, "not a valid FlatBuffers snapshot header");
    }
  }
}

TEST_F(HostileHeaderTest, FlatBuffersMissingRequiredFieldsOrIdentifierAreInvalidHeader) {
  const auto file_for = [](flatbuffers::FlatBufferBuilder& builder) {
    const auto* data = reinterpret_cast<const std::byte*>(builder.GetBufferPointer());
    const std::vector<std::byte> header(data, data + builder.GetSize());
    std::vector<std::byte> file(32 + header.size());
    std::memcpy(file.data() + 32, header.data(), header.size());
    const auto prefix = encode_prefix(header, 32);
    std::memcpy(file.data(), prefix.data(), prefix.size());
    return file;
  };
  // Tables are built field by field: the generated builders assert (in debug
  // builds) that required fields are present, which is what is tested here.
  const auto sections_vector = [](flatbuffers::FlatBufferBuilder& builder) {
    std::vector<flatbuffers::Offset<fb::Section>> none;
    return builder.CreateVector(none);
  };
  {  // No index_type.
    flatbuffers::FlatBufferBuilder builder;
    const auto sections = sections_vector(builder);
    const auto start = builder.StartTable();
    builder.AddOffset(fb::SnapshotHeader::VT_SECTIONS, sections);
    builder.AddElement<std::uint32_t>(fb::SnapshotHeader::VT_DIM, 1, 0);
    builder.Finish(flatbuffers::Offset<fb::SnapshotHeader>(builder.EndTable(start)),
                   fb::SnapshotHeaderIdentifier());
    expect_rejected(file_for(builder), ErrorKind::InvalidHeader, "not a valid FlatBuffers");
  }
  {  // No sections.
    flatbuffers::FlatBufferBuilder builder;
    const auto type = builder.CreateString("t");
    const auto start = builder.StartTable();
    builder.AddOffset(fb::SnapshotHeader::VT_INDEX_TYPE, type);
    builder.Finish(flatbuffers::Offset<fb::SnapshotHeader>(builder.EndTable(start)),
                   fb::SnapshotHeaderIdentifier());
    expect_rejected(file_for(builder), ErrorKind::InvalidHeader, "not a valid FlatBuffers");
  }
  {  // A section without its required name.
    flatbuffers::FlatBufferBuilder builder;
    const auto section_start = builder.StartTable();
    builder.AddElement<std::uint64_t>(fb::Section::VT_OFFSET, 4096, 0);
    builder.AddElement<std::uint64_t>(fb::Section::VT_ALIGNMENT, 4096, 0);
    const flatbuffers::Offset<fb::Section> section(builder.EndTable(section_start));
    const auto sections = builder.CreateVector(&section, 1);
    const auto type = builder.CreateString("t");
    const auto start = builder.StartTable();
    builder.AddOffset(fb::SnapshotHeader::VT_INDEX_TYPE, type);
    builder.AddOffset(fb::SnapshotHeader::VT_SECTIONS, sections);
    builder.Finish(flatbuffers::Offset<fb::SnapshotHeader>(builder.EndTable(start)),
                   fb::SnapshotHeaderIdentifier());
    expect_rejected(file_for(builder), ErrorKind::InvalidHeader, "not a valid FlatBuffers");
  }
  {  // Valid table, but without the "IQSH" file identifier.
    flatbuffers::FlatBufferBuilder builder;
    std::vector<flatbuffers::Offset<fb::Section>> none;
    const auto root = fb::CreateSnapshotHeaderDirect(builder, "t", 1, 0, 0, 0, 0, nullptr, &none);
    builder.Finish(root);
    expect_rejected(file_for(builder), ErrorKind::InvalidHeader, "not a valid FlatBuffers");
  }
}

// The prefix.

class PrefixTest : public HostileHeaderTest {
 protected:
  std::vector<std::byte> valid_file() {
    seal(header_);
    return build(header_);
  }
};

TEST_F(PrefixTest, OtherFormatVersionsAreUnsupportedVersion) {
  std::vector<std::byte> file = valid_file();
  store_u32(file, format::kVersionOffset, 2);
  reseal_prefix(file);
  expect_rejected(file, ErrorKind::UnsupportedVersion,
                  "format version 2 (this build reads version "
                  "3; version 2 is the original Rust crate");
  store_u32(file, format::kVersionOffset, 4);
  reseal_prefix(file);
  expect_rejected(file, ErrorKind::UnsupportedVersion, "format version 4");
}

TEST_F(PrefixTest, ForeignFilesAreBadMagic) {
  const std::string text = "hello, this is not a snapshot at all";
  expect_rejected(
      std::vector<std::byte>(reinterpret_cast<const std::byte*>(text.data()),
                             reinterpret_cast<const std::byte*>(text.data()) + text.size()),
      ErrorKind::BadMagic, "does not start with \"IQDBPRST\"");
  std::vector<std::byte> file = valid_file();
  file[3] = std::byte{'X'};
  expect_rejected(file, ErrorKind::BadMagic, "not an iqdb-persist snapshot");
  expect_rejected(std::vector<std::byte>{std::byte{'I'}, std::byte{'Q'}, std::byte{'X'}},
                  ErrorKind::BadMagic, "IQDBPRST");
}

TEST_F(PrefixTest, ShortFilesStartingLikeASnapshotAreTruncatedHeader) {
  const std::vector<std::byte> file = valid_file();
  for (const std::size_t length : {0u, 1u, 4u, 8u, 12u, 31u}) {
    expect_rejected(std::vector<std::byte>(file.begin(), file.begin() + length),
                    ErrorKind::TruncatedHeader, "shorter than the 32-byte prefix");
  }
}

TEST_F(PrefixTest, DamagedPrefixIsChecksumMismatch) {
  std::vector<std::byte> file = valid_file();
  file[format::kHeaderOffsetOffset] ^= std::byte{8};
  expect_rejected(file, ErrorKind::ChecksumMismatch, "prefix (offset 0, 28 bytes): CRC32 expected");
}

TEST_F(PrefixTest, DecodePrefixWorksOnInMemoryBytes) {
  const std::vector<std::byte> file = valid_file();
  auto location = decode_prefix(std::span(file).first(32), file.size(), "mem");
  ASSERT_THAT(location, IsOk());
  EXPECT_EQ(location.value().offset, 32u);
  EXPECT_EQ(location.value().length, encode_header(header_).size());
  EXPECT_THAT(decode_prefix(std::span(file).first(20), 20, "mem"),
              IsError(ErrorKind::TruncatedHeader, {"mem", "20 bytes"}));
}

// Random files.

TEST_F(PrefixTest, RandomGarbageFilesAreRejectedCleanly) {
  for (std::uint64_t seed = 1; seed <= 60; ++seed) {
    const std::size_t size = static_cast<std::size_t>((seed * 7919) % 9000);
    std::vector<std::byte> file = random_bytes(size, seed);
    expect_rejected(file, size == 0 ? ErrorKind::TruncatedHeader : ErrorKind::BadMagic,
                    size == 0 ? "prefix" : "IQDBPRST");
  }
}

TEST_F(PrefixTest, RandomFilesWithAValidPrefixAreRejectedCleanly) {
  for (std::uint64_t seed = 1; seed <= 300; ++seed) {
    const std::size_t size = 32 + static_cast<std::size_t>((seed * 104729) % 6000);
    std::vector<std::byte> file = random_bytes(size, seed + 5000);
    std::memcpy(file.data(), kMagic.data(), kMagic.size());
    store_u32(file, format::kVersionOffset, kCurrentVersion);
    // Plausible header location on odd seeds, random on even ones.
    if (seed % 2 == 1) {
      const std::uint32_t length = static_cast<std::uint32_t>(seed % (size - 32) + 1);
      store_u32(file, format::kHeaderLengthOffset, length);
      for (int i = 0; i < 8; ++i)
        file[format::kHeaderOffsetOffset + i] = std::byte(i == 0 ? 32 : 0);
      store_u32(file, format::kHeaderCrcOffset, crc32(std::span(file).subspan(32, length)));
    }
    reseal_prefix(file);
    write_file(path_, file);
    const auto read = read_file_header(path_);
    ASSERT_FALSE(read.has_value()) << "seed " << seed;
    EXPECT_THAT(read.error().kind(),
                ::testing::AnyOf(ErrorKind::InvalidHeader, ErrorKind::TruncatedHeader,
                                 ErrorKind::ChecksumMismatch))
        << read.error().to_string();
    const auto verified = verify_snapshot(path_);
    ASSERT_FALSE(verified.has_value());
    EXPECT_EQ(verified.error().kind(), read.error().kind());
    if (seed % 2 == 1) {
      EXPECT_EQ(read.error().kind(), ErrorKind::InvalidHeader) << seed;
    }
  }
}

}  // namespace
}  // namespace iqdb::persist::test
