// Every single-byte corruption and every truncation of a small snapshot gives
// the documented error, through verify_snapshot() and through loads; never a
// crash and never a successful Eager load of damaged bytes.
#include "iqdb/persist/verify_snapshot.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "iqdb/persist.h"
#include "snapshot/verify_snapshot.h"
#include "support/mock_indexes.h"
#include "support/test_util.h"

namespace iqdb::persist::test {
namespace {

// The error a damaged byte at `offset` must produce, given the intact header.
struct Expectation {
  ErrorKind kind;
  std::string mention;  // a substring of the message
  bool in_payload = false;
};

Expectation expected_for_flip(const FileHeader& header, std::uint64_t offset) {
  if (offset < 8) return {ErrorKind::BadMagic, "IQDBPRST"};
  if (offset < 12) return {ErrorKind::UnsupportedVersion, "format version"};
  if (offset < 32) return {ErrorKind::ChecksumMismatch, "prefix (offset 0, 28 bytes)"};
  if (offset >= header.header_offset && offset - header.header_offset < header.header_length) {
    return {ErrorKind::ChecksumMismatch, "header (offset " + std::to_string(header.header_offset)};
  }
  for (const SectionInfo& section : header.sections) {
    if (offset >= section.offset && offset - section.offset < section.stored_length) {
      return {ErrorKind::ChecksumMismatch, "section '" + section.name + "'", true};
    }
  }
  return {ErrorKind::InvalidPayload, "padding byte at offset " + std::to_string(offset) + " "};
}

template <class I>
class CorruptionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.file("small.iqdb");
    config_ = PersistConfig(path_);
    config_.verify_threads = 1;
    config_.fsync_policy = FsyncPolicy::never();
    original_index_.emplace(make_index<I>(3, 2, DistanceMetric::Euclidean));
    auto db = PersistedIndex<I>::open_with(*original_index_, config_);
    ASSERT_THAT(db, IsOk());
    ASSERT_THAT(db.value().save(), IsOk());
    original_ = read_file(path_);
    auto header = read_file_header(path_);
    ASSERT_THAT(header, IsOk());
    header_ = header.value();
    ASSERT_LT(original_.size(), 16u * 1024) << "keep the exhaustive tests small";
    allow_writes(path_);
    fd_ = ::open(path_.c_str(), O_RDWR);
    ASSERT_GE(fd_, 0);
    verify_options_.threads = 1;
  }
  void TearDown() override {
    if (fd_ >= 0) ::close(fd_);
  }

  void put(std::uint64_t offset, std::byte value) {
    ASSERT_EQ(::pwrite(fd_, &value, 1, static_cast<off_t>(offset)), 1);
  }
  void restore() {
    ASSERT_EQ(::ftruncate(fd_, 0), 0);
    ASSERT_EQ(::pwrite(fd_, original_.data(), original_.size(), 0),
              static_cast<ssize_t>(original_.size()));
  }

  Result<PersistedIndex<I>> load(VerifyMode mode) {
    PersistConfig config = config_;
    config.verify = mode;
    return PersistedIndex<I>::load(config);
  }

  TempDir dir_;
  std::filesystem::path path_;
  PersistConfig config_;
  std::optional<I> original_index_;
  std::vector<std::byte> original_;
  FileHeader header_;
  VerifyOptions verify_options_;
  int fd_ = -1;
};

using IndexTypes = ::testing::Types<StreamMapIndex, SectionArrayIndex>;
TYPED_TEST_SUITE(CorruptionTest, IndexTypes);

TYPED_TEST(CorruptionTest, IntactFileVerifiesAndLoadsInEveryMode) {
  auto report = verify_snapshot(this->path_, this->verify_options_);
  ASSERT_THAT(report, IsOk());
  EXPECT_EQ(report.value().header, this->header_);
  std::uint64_t payload = 0;
  for (const SectionInfo& s : this->header_.sections) payload += s.stored_length;
  EXPECT_EQ(report.value().bytes_checked, payload);
  for (const VerifyMode mode : {VerifyMode::Eager, VerifyMode::Skip}) {
    auto loaded = this->load(mode);
    ASSERT_THAT(loaded, IsOk());
    EXPECT_TRUE(same_content(loaded.value().index(), *this->original_index_));
  }
}

TYPED_TEST(CorruptionTest, EveryFlippedByteIsReportedWithItsRegionsErrorKind) {
  const std::string path = this->path_.string();
  for (std::uint64_t offset = 0; offset < this->original_.size(); ++offset) {
    const Expectation expected = expected_for_flip(this->header_, offset);
    for (const std::uint8_t mask : {0x01, 0x80, 0xFF}) {
      this->put(offset, this->original_[offset] ^ std::byte{mask});
      ASSERT_THAT(verify_snapshot(this->path_, this->verify_options_),
                  IsError(expected.kind, {path, expected.mention}))
          << "offset " << offset << " mask " << int{mask};
      ASSERT_THAT(this->load(VerifyMode::Eager), IsError(expected.kind, {path, expected.mention}))
          << "offset " << offset << " mask " << int{mask};
    }
    this->put(offset, this->original_[offset]);
  }
}

TYPED_TEST(CorruptionTest, SkipModeStillRejectsDamagedHeadersAndNeverOverreads) {
  const std::string path = this->path_.string();
  for (std::uint64_t offset = 0; offset < this->original_.size(); ++offset) {
    const Expectation expected = expected_for_flip(this->header_, offset);
    for (const std::uint8_t mask : {0x01, 0x80, 0xFF}) {
      this->put(offset, this->original_[offset] ^ std::byte{mask});
      auto loaded = this->load(VerifyMode::Skip);
      if (expected.in_payload) {
        // Skip's contract: payload damage may reach the index; the index may
        // notice it, but nothing may crash or read outside the mapping.
        if (!loaded) {
          ASSERT_THAT(loaded, IsError(ErrorKind::InvalidPayload, path))
              << "offset " << offset << " mask " << int{mask};
        }
      } else if (expected.kind == ErrorKind::InvalidPayload) {
        ASSERT_THAT(loaded, IsOk()) << "padding offset " << offset;
        EXPECT_TRUE(same_content(loaded.value().index(), *this->original_index_));
      } else {
        ASSERT_THAT(loaded, IsError(expected.kind, {path, expected.mention}))
            << "offset " << offset << " mask " << int{mask};
      }
    }
    this->put(offset, this->original_[offset]);
  }
}

TYPED_TEST(CorruptionTest, EveryTruncationIsTruncatedHeaderOrTruncatedPayload) {
  const std::string path = this->path_.string();
  const std::uint64_t header_end = this->header_.header_offset + this->header_.header_length;
  // Shortest last: each step only cuts more off the same file.
  for (std::uint64_t length = this->original_.size(); length-- > 0;) {
    ASSERT_EQ(::ftruncate(this->fd_, static_cast<off_t>(length)), 0);
    const ErrorKind kind =
        length < header_end ? ErrorKind::TruncatedHeader : ErrorKind::TruncatedPayload;
    const std::string mention = length < 32 ? "shorter than the 32-byte prefix" : "extends past";
    ASSERT_THAT(verify_snapshot(this->path_, this->verify_options_), IsError(kind, {path, mention}))
        << "length " << length;
    ASSERT_THAT(this->load(VerifyMode::Eager), IsError(kind, {path, mention}))
        << "length " << length;
    ASSERT_THAT(this->load(VerifyMode::Skip), IsError(kind, {path, mention}))
        << "length " << length;
    ASSERT_THAT(read_file_header(this->path_), IsError(kind, path)) << "length " << length;
  }
  this->restore();
  EXPECT_THAT(verify_snapshot(this->path_, this->verify_options_), IsOk());
}

TYPED_TEST(CorruptionTest, AppendedBytesAreInvalidHeader) {
  const std::string path = this->path_.string();
  for (const std::byte appended : {std::byte{0}, std::byte{0x5a}}) {
    for (std::uint64_t extra = 1; extra <= 9; extra += 4) {
      this->restore();
      for (std::uint64_t i = 0; i < extra; ++i) this->put(this->original_.size() + i, appended);
      const std::string mention = std::to_string(extra) + " trailing bytes";
      EXPECT_THAT(verify_snapshot(this->path_), IsError(ErrorKind::InvalidHeader, {path, mention}));
      EXPECT_THAT(this->load(VerifyMode::Skip), IsError(ErrorKind::InvalidHeader, {path, mention}));
    }
  }
}

TYPED_TEST(CorruptionTest, ProgressEndsWithEveryPayloadByteChecked) {
  std::uint64_t last_done = 0;
  std::uint64_t last_total = 1;
  VerifyOptions options;
  options.progress = [&](std::uint64_t done, std::uint64_t total) {
    last_done = done;
    last_total = total;
  };
  auto report = verify_snapshot(this->path_, options);
  ASSERT_THAT(report, IsOk());
  EXPECT_EQ(last_done, last_total);
  EXPECT_EQ(last_total, report.value().bytes_checked);
  EXPECT_GE(report.value().seconds, 0.0);
}

// An index that writes no sections at all: the CRC pass then has no work.
struct EmptyIndex {
  static constexpr std::string_view kIndexType = "empty";
  IndexResult<void> insert(const VectorId&, std::span<const float>, const Metadata&) {
    return IndexError{IndexErrc::InvalidArgument, "read-only"};
  }
  IndexResult<void> remove(const VectorId&) { return IndexError{IndexErrc::IdNotFound, "none"}; }
  std::size_t size() const { return 0; }
  std::size_t dim() const { return 1; }
  DistanceMetric metric() const { return DistanceMetric::Cosine; }
  Result<void> save_sections(SectionWriter&) const { return success(); }
  static Result<EmptyIndex> load_sections(const SnapshotView&) { return EmptyIndex{}; }
};

TEST(VerifyTest, SnapshotWithoutSectionsVerifiesAndLoads) {
  TempDir dir;
  PersistConfig config(dir.file("empty.iqdb"));
  auto db = PersistedIndex<EmptyIndex>::open_with(EmptyIndex{}, config);
  ASSERT_THAT(db, IsOk());
  ASSERT_THAT(db.value().save(), IsOk());
  auto report = verify_snapshot(config.path);
  ASSERT_THAT(report, IsOk());
  EXPECT_TRUE(report.value().header.sections.empty());
  EXPECT_EQ(report.value().bytes_checked, 0u);
  EXPECT_EQ(report.value().header.file_size, 32u + report.value().header.header_length);
  EXPECT_THAT(PersistedIndex<EmptyIndex>::load(config), IsOk());
}

// The pass behind VerifyMode::Background stops when its owner goes away
// (the Verification's destructor raises the flag): a stopped pass is an
// error naming the file, never a pass.
TEST(VerifyTest, AStoppedPassIsIoNamingTheFileNotAPass) {
  TempDir dir;
  PersistConfig config(dir.file("db.iqdb"));
  auto db = PersistedIndex<SectionArrayIndex>::open_with(
      SectionArrayIndex(8, DistanceMetric::Cosine, make_vectors(2'000, 8)), config);
  ASSERT_THAT(db, IsOk());
  ASSERT_THAT(db.value().save(), IsOk());
  const std::vector<std::byte> file = read_file(config.path);
  const auto header = read_file_header(config.path);
  ASSERT_THAT(header, IsOk());
  std::atomic<bool> stop{true};
  VerifyPassOptions options;
  options.threads = 2;
  options.stop = &stop;
  EXPECT_THAT(verify_mapped_snapshot(file, header.value(), config.path.string(), options),
              IsError(ErrorKind::Io, {config.path.string(), "verification stopped"}));
  stop = false;
  auto checked = verify_mapped_snapshot(file, header.value(), config.path.string(), options);
  ASSERT_THAT(checked, IsOk());
  EXPECT_EQ(checked.value(), bytes_to_verify(header.value(), true));
}

}  // namespace
}  // namespace iqdb::persist::test
