#include "iqdb/persist/sections.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "support/test_util.h"

namespace iqdb::persist::test {
namespace {

// A SectionView over `length` bytes starting `misalignment` bytes into an
// 8-aligned buffer.
class SectionViewTest : public ::testing::Test {
 protected:
  SectionViewTest() : storage_(std::make_shared<std::vector<std::uint64_t>>(64)) {
    auto* bytes = reinterpret_cast<std::byte*>(storage_->data());
    for (std::size_t i = 0; i < storage_->size() * 8; ++i) bytes[i] = std::byte(i);
  }

  SectionView view(std::size_t misalignment, std::size_t length) const {
    const auto* base = reinterpret_cast<const std::byte*>(storage_->data());
    SectionInfo info;
    info.name = "vectors";
    info.stored_length = info.logical_length = length;
    return SectionView(info, std::span(base + misalignment, length), storage_,
                       "/d/x.iqdb: section 'vectors'");
  }

  std::shared_ptr<std::vector<std::uint64_t>> storage_;
};

TEST_F(SectionViewTest, AlignedWholeArrayIsSpannedWithoutCopy) {
  const SectionView section = view(0, 64);
  auto values = section.as_span<std::uint64_t>();
  ASSERT_THAT(values, IsOk());
  EXPECT_EQ(values.value().size(), 8u);
  EXPECT_EQ(static_cast<const void*>(values.value().data()), storage_->data());
  auto exact = section.as_span<std::uint32_t>(16);
  ASSERT_THAT(exact, IsOk());
  EXPECT_EQ(exact.value().size(), 16u);
  EXPECT_EQ(section.name(), "vectors");
  EXPECT_EQ(section.keep_alive(), std::static_pointer_cast<const void>(storage_));
}

TEST_F(SectionViewTest, SizeNotAMultipleOfTheElementIsInvalidPayload) {
  EXPECT_THAT(view(0, 63).as_span<std::uint64_t>(),
              IsError(ErrorKind::InvalidPayload,
                      {"section 'vectors'", "63 bytes is not a whole number of 8-byte elements"}));
  EXPECT_THAT(view(0, 6).as_span<float>(3), IsError(ErrorKind::InvalidPayload, "4-byte"));
  EXPECT_THAT(view(0, 63).as_span<std::uint8_t>(), IsOk());
}

TEST_F(SectionViewTest, MisalignedDataIsInvalidPayload) {
  EXPECT_THAT(view(4, 32).as_span<std::uint64_t>(),
              IsError(ErrorKind::InvalidPayload, {"section 'vectors'", "not aligned to 8 bytes"}));
  EXPECT_THAT(view(2, 32).as_span<float>(), IsError(ErrorKind::InvalidPayload, "aligned to 4"));
  EXPECT_THAT(view(4, 32).as_span<float>(), IsOk());
}

TEST_F(SectionViewTest, WrongElementCountIsInvalidPayload) {
  EXPECT_THAT(
      view(0, 64).as_span<std::uint64_t>(7),
      IsError(ErrorKind::InvalidPayload, {"section 'vectors'", "holds 8 elements, expected 7"}));
  EXPECT_THAT(view(0, 64).as_span<std::uint64_t>(SIZE_MAX),
              IsError(ErrorKind::InvalidPayload, "holds 8 elements"));
  EXPECT_THAT(view(0, 0).as_span<std::uint64_t>(0), IsOk());
}

TEST_F(SectionViewTest, ReaderIsBoundedToTheSection) {
  StreamReader in = view(8, 8).reader();
  auto first = in.read_value<std::uint64_t>();
  ASSERT_THAT(first, IsOk());
  EXPECT_EQ(first.value(), (*storage_)[1]);
  EXPECT_THAT(in.read_value<std::uint8_t>(), IsError(ErrorKind::InvalidPayload, "'vectors'"));
}

class SnapshotViewTest : public ::testing::Test {
 protected:
  SnapshotViewTest() : file_(std::make_shared<std::vector<std::byte>>(8192)) {
    header_.sections.push_back({"ids", 4096, 64, 64, SectionCompression::None, 0, 4096, 0, {}});
    header_.sections.push_back({"far", 8192, 1, 1, SectionCompression::None, 0, 4096, 0, {}});
  }
  SnapshotView snapshot() const { return SnapshotView("/d/x.iqdb", header_, file_, *file_); }

  std::shared_ptr<std::vector<std::byte>> file_;
  FileHeader header_;
};

TEST_F(SnapshotViewTest, SectionPointsIntoTheFileBytes) {
  const SnapshotView view = snapshot();
  EXPECT_TRUE(view.has_section("ids"));
  auto ids = view.section("ids");
  ASSERT_THAT(ids, IsOk());
  EXPECT_EQ(ids.value().bytes().data(), file_->data() + 4096);
  EXPECT_EQ(ids.value().bytes().size(), 64u);
  EXPECT_EQ(ids.value().context(), "/d/x.iqdb: section 'ids'");
  EXPECT_EQ(ids.value().keep_alive(), view.keep_alive());
}

TEST_F(SnapshotViewTest, MissingSectionIsInvalidPayloadNamingIt) {
  EXPECT_FALSE(snapshot().has_section("nope"));
  EXPECT_THAT(snapshot().section("nope"),
              IsError(ErrorKind::InvalidPayload, {"/d/x.iqdb", "no section 'nope'"}));
}

// A compressed section is served from its decoded bytes, which the load
// provides; a view without them (or with bytes of another length) refuses.
TEST_F(SnapshotViewTest, CompressedSectionIsServedOnlyFromDecodedBytesOfItsLength) {
  header_.sections.push_back({"packed", 4096, 32, 256, SectionCompression::Lz4, 0, 4096, 0, {}});
  EXPECT_THAT(snapshot().section("packed"),
              IsError(ErrorKind::InvalidPayload,
                      {"/d/x.iqdb: section 'packed' is lz4-compressed", "no decoded bytes"}));
  const std::vector<std::byte> short_by_one(255);
  const SnapshotView wrong("/d/x.iqdb", header_, file_, *file_, {{}, {}, short_by_one});
  EXPECT_THAT(wrong.section("packed"), IsError(ErrorKind::InvalidPayload, "no decoded bytes"));
  const std::vector<std::byte> decoded(256);
  const SnapshotView right("/d/x.iqdb", header_, file_, *file_, {{}, {}, decoded});
  auto packed = right.section("packed");
  ASSERT_THAT(packed, IsOk());
  EXPECT_EQ(packed.value().bytes().data(), decoded.data());
  EXPECT_EQ(packed.value().bytes().size(), 256u);
}

TEST_F(SnapshotViewTest, SectionOutsideAHandBuiltViewIsTruncatedPayload) {
  EXPECT_THAT(snapshot().section("far"),
              IsError(ErrorKind::TruncatedPayload, {"section 'far'", "8192-byte mapping"}));
}

}  // namespace
}  // namespace iqdb::persist::test
