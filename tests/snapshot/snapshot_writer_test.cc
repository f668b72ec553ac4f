// SnapshotWriter: section layout, header placement, streamed sections, and the
// SectionWriter misuse an index can commit (each fails its save cleanly).
#include "snapshot/snapshot_writer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "iqdb/persist.h"
#include "support/test_util.h"
#include "util/crc32.h"

namespace iqdb::persist::test {
namespace {

using ::testing::ElementsAre;

// An index whose save_sections runs a script, to misuse SectionWriter on purpose.
template <class Name>
class ScriptedIndex {
 public:
  static constexpr std::string_view kIndexType = Name::kValue;
  using Script = std::function<Result<void>(SectionWriter&)>;

  explicit ScriptedIndex(Script script = {}, std::uint64_t dim = 1)
      : script_(std::move(script)), dim_(dim) {}

  IndexResult<void> insert(const VectorId&, std::span<const float>, const Metadata&) {
    return IndexError{IndexErrc::InvalidArgument, "scripted"};
  }
  IndexResult<void> remove(const VectorId&) { return IndexError{IndexErrc::IdNotFound, "none"}; }
  std::size_t size() const { return 0; }
  std::size_t dim() const { return dim_; }
  DistanceMetric metric() const { return DistanceMetric::Manhattan; }

  Result<void> save_sections(SectionWriter& out) const { return script_(out); }
  static Result<ScriptedIndex> load_sections(const SnapshotView&) { return ScriptedIndex(); }

 private:
  Script script_;
  std::uint64_t dim_;
};

struct ScriptedName {
  static constexpr std::string_view kValue = "scripted";
};
struct EmptyName {
  static constexpr std::string_view kValue = "";
};
struct LongName {
  static constexpr std::string_view kValue =
      "0123456789012345678901234567890123456789012345678901234567890123x";  // 65 bytes
};

std::span<const std::byte> bytes_of(const std::string& text) {
  return std::as_bytes(std::span(text.data(), text.size()));
}

class SnapshotWriterTest : public ::testing::Test {
 protected:
  SnapshotWriterTest() : config_(dir_.file("w.iqdb")) {}

  template <class Name = ScriptedName>
  Result<void> save(typename ScriptedIndex<Name>::Script script, std::uint64_t dim = 1) {
    auto db = PersistedIndex<ScriptedIndex<Name>>::open_with(
        ScriptedIndex<Name>(std::move(script), dim), config_, OpenMode::Overwrite);
    EXPECT_THAT(db, IsOk());
    return db.value().save();
  }

  // The save failed before any rename: nothing but the writer lock's file is
  // left in the directory.
  void expect_no_files() { EXPECT_THAT(dir_.entries(), ::testing::ElementsAre("w.iqdb.lock")); }

  TempDir dir_;
  PersistConfig config_;
};

TEST_F(SnapshotWriterTest, SectionsAreLaidOutInOrderAtAlignedOffsets) {
  const std::string a(10, 'a');
  const std::string b(5000, 'b');
  const std::string c(1, 'c');
  ASSERT_THAT(save([&](SectionWriter& out) -> Result<void> {
                IQDB_TRY(out.add_section("a", bytes_of(a)));
                IQDB_TRY(out.add_section("b", bytes_of(b), 8192));
                IQDB_TRY(out.add_section("empty", {}));
                return out.add_section("c", bytes_of(c));
              }),
              IsOk());
  auto header = read_file_header(config_.path);
  ASSERT_THAT(header, IsOk());
  const auto& s = header.value().sections;
  ASSERT_EQ(s.size(), 4u);
  EXPECT_EQ(s[0].offset, 4096u);
  EXPECT_EQ(s[1].offset, 8192u);
  EXPECT_EQ(s[1].alignment, 8192u);
  EXPECT_EQ(s[2].offset, 16384u);
  EXPECT_EQ(s[2].stored_length, 0u);
  EXPECT_EQ(s[3].offset, 16384u);
  EXPECT_EQ(s[0].crc32, crc32(bytes_of(a)));
  EXPECT_EQ(s[1].crc32, crc32(bytes_of(b)));
  EXPECT_EQ(header.value().header_offset, 32u);
  EXPECT_EQ(header.value().file_size, 16385u);
  EXPECT_EQ(header.value().metric, DistanceMetric::Manhattan);
  EXPECT_THAT(verify_snapshot(config_.path), IsOk());
}

TEST_F(SnapshotWriterTest, HeaderTooBigForTheFirstGapGoesAfterTheLastSection) {
  ASSERT_THAT(save([](SectionWriter& out) -> Result<void> {
                for (int i = 0; i < 40; ++i) {
                  const std::string name = std::string(200, 'n') + std::to_string(i);
                  IQDB_TRY(out.add_section(name, bytes_of(name)));
                }
                return success();
              }),
              IsOk());
  auto header = read_file_header(config_.path);
  ASSERT_THAT(header, IsOk());
  const SectionInfo& last = header.value().sections.back();
  EXPECT_EQ(header.value().sections.front().offset, 4096u);
  EXPECT_GE(header.value().header_offset, last.offset + last.stored_length);
  EXPECT_EQ(header.value().header_offset % 8, 0u);
  EXPECT_EQ(header.value().file_size, header.value().header_offset + header.value().header_length);
  EXPECT_THAT(verify_snapshot(config_.path), IsOk());
}

TEST_F(SnapshotWriterTest, StreamedSectionsMixSmallAndLargeWrites) {
  const std::vector<std::byte> big = random_bytes(3u << 20, 4);
  const std::vector<std::byte> small = random_bytes(1000, 5);
  ASSERT_THAT(save([&](SectionWriter& out) {
                return out.add_streamed_section("s", [&](StreamWriter& w) -> Result<void> {
                  IQDB_TRY(w.write(small));
                  IQDB_TRY(w.write(big));
                  for (int i = 0; i < 1500; ++i) IQDB_TRY(w.write(small));
                  return w.write({});
                });
              }),
              IsOk());
  auto report = verify_snapshot(config_.path);
  ASSERT_THAT(report, IsOk());
  const SectionInfo& s = report.value().header.sections.at(0);
  EXPECT_EQ(s.stored_length, big.size() + 1501 * small.size());
  std::uint32_t expected = crc32(small);
  expected = crc32(big, expected);
  for (int i = 0; i < 1500; ++i) expected = crc32(small, expected);
  EXPECT_EQ(s.crc32, expected);
  const std::vector<std::byte> file = read_file(config_.path);
  EXPECT_TRUE(std::equal(big.begin(), big.end(), file.begin() + s.offset + 1000));
}

TEST_F(SnapshotWriterTest, LargeSectionsChecksumConcurrentlyWithTheSameResult) {
  const std::vector<std::byte> big = random_bytes(17u << 20, 6);  // above the 16 MiB threshold
  config_.fsync_policy = FsyncPolicy::never();
  ASSERT_THAT(save([&](SectionWriter& out) { return out.add_section("big", big); }), IsOk());
  auto report = verify_snapshot(config_.path);
  ASSERT_THAT(report, IsOk());
  EXPECT_EQ(report.value().header.sections.at(0).crc32, crc32(big));
}

TEST_F(SnapshotWriterTest, MaxSectionsAndNameLengthAreAccepted) {
  ASSERT_THAT(save([](SectionWriter& out) -> Result<void> {
                IQDB_TRY(out.add_section(std::string(kMaxSectionNameLength, 'x'), {}));
                for (std::size_t i = 1; i < kMaxSections; ++i) {
                  IQDB_TRY(out.add_section("s" + std::to_string(i), {}));
                }
                return success();
              }),
              IsOk());
  auto report = verify_snapshot(config_.path);
  ASSERT_THAT(report, IsOk());
  EXPECT_EQ(report.value().header.sections.size(), kMaxSections);
}

TEST_F(SnapshotWriterTest, DuplicateSectionNameIsInvalidArgument) {
  EXPECT_THAT(save([](SectionWriter& out) -> Result<void> {
                IQDB_TRY(out.add_section("ids", {}));
                return out.add_streamed_section(
                    "ids", [](StreamWriter&) -> Result<void> { return success(); });
              }),
              IsError(ErrorKind::InvalidArgument, {"section 'ids' was added twice", ".tmp-"}));
  expect_no_files();
}

TEST_F(SnapshotWriterTest, EmptyOrOverlongSectionNameIsInvalidArgument) {
  EXPECT_THAT(save([](SectionWriter& out) { return out.add_section("", {}); }),
              IsError(ErrorKind::InvalidArgument, "section name of 0 bytes (expected 1..255)"));
  EXPECT_THAT(save([](SectionWriter& out) { return out.add_section(std::string(256, 'x'), {}); }),
              IsError(ErrorKind::InvalidArgument, "section name of 256 bytes"));
  expect_no_files();
}

TEST_F(SnapshotWriterTest, BadSectionAlignmentIsInvalidArgument) {
  for (const std::uint64_t alignment :
       {std::uint64_t{1000}, std::uint64_t{2048}, std::uint64_t{1} << 31, std::uint64_t{4097}}) {
    EXPECT_THAT(
        save([&](SectionWriter& out) { return out.add_section("a", {}, alignment); }),
        IsError(ErrorKind::InvalidArgument, "section 'a' alignment " + std::to_string(alignment)));
    EXPECT_THAT(save([&](SectionWriter& out) {
                  return out.add_streamed_section(
                      "a", [](StreamWriter&) -> Result<void> { return success(); }, alignment);
                }),
                IsError(ErrorKind::InvalidArgument, "alignment"));
  }
  expect_no_files();
}

TEST_F(SnapshotWriterTest, TooManySectionsIsInvalidArgument) {
  EXPECT_THAT(save([](SectionWriter& out) -> Result<void> {
                for (std::size_t i = 0; i <= kMaxSections; ++i) {
                  IQDB_TRY(out.add_section("s" + std::to_string(i), {}));
                }
                return success();
              }),
              IsError(ErrorKind::InvalidArgument, "more than 1024 sections"));
  expect_no_files();
}

TEST_F(SnapshotWriterTest, FillErrorFailsTheSaveWithThatError) {
  EXPECT_THAT(save([](SectionWriter& out) {
                return out.add_streamed_section("s", [](StreamWriter& w) -> Result<void> {
                  IQDB_TRY(w.write_value(std::uint64_t{1}));
                  return fail(ErrorKind::IndexBuild, "index gave up");
                });
              }),
              IsError(ErrorKind::IndexBuild, "index gave up"));
  expect_no_files();
}

TEST_F(SnapshotWriterTest, FailedSaveKeepsThePreviousSnapshot) {
  ASSERT_THAT(save([](SectionWriter& out) { return out.add_section("first", {}); }), IsOk());
  EXPECT_THAT(save([](SectionWriter& out) { return out.add_section("", {}); }),
              IsError(ErrorKind::InvalidArgument, "section name"));
  EXPECT_THAT(dir_.entries(), ElementsAre("w.iqdb", "w.iqdb.lock"));
  auto header = read_file_header(config_.path);
  ASSERT_THAT(header, IsOk());
  EXPECT_EQ(header.value().sections.at(0).name, "first");
}

TEST_F(SnapshotWriterTest, BadIndexTypeOrDimensionIsInvalidArgument) {
  const auto nothing = [](SectionWriter&) -> Result<void> { return success(); };
  EXPECT_THAT(save<EmptyName>(nothing), IsError(ErrorKind::InvalidArgument, "must be 1..64 bytes"));
  EXPECT_THAT(save<LongName>(nothing), IsError(ErrorKind::InvalidArgument, "must be 1..64 bytes"));
  EXPECT_THAT(save(nothing, std::uint64_t{1} << 32),
              IsError(ErrorKind::InvalidArgument, "dimension 4294967296 does not fit"));
  expect_no_files();
}

}  // namespace
}  // namespace iqdb::persist::test
