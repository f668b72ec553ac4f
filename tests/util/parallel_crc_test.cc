#include "util/parallel_crc.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <thread>
#include <vector>

#include "support/test_util.h"
#include "util/crc32.h"

namespace iqdb::persist {
namespace {

class ParallelCrcTest : public ::testing::Test {
 protected:
  // Two and a half pieces, so ranges can start, end and cross inside pieces.
  static constexpr std::uint64_t kSize = kCrcPieceSize * 5 / 2 + 123;

  static void SetUpTestSuite() { data_ = new std::vector<std::byte>(test::random_bytes(kSize, 5)); }
  static void TearDownTestSuite() {
    delete data_;
    data_ = nullptr;
  }

  static std::span<const std::byte> bytes() { return *data_; }

  static std::vector<std::uint32_t> sequential(std::span<const ByteRange> ranges) {
    std::vector<std::uint32_t> crcs;
    for (const ByteRange& r : ranges) {
      crcs.push_back(crc32(
          bytes().subspan(static_cast<std::size_t>(r.offset), static_cast<std::size_t>(r.length))));
    }
    return crcs;
  }

  static std::vector<std::byte>* data_;
};

std::vector<std::byte>* ParallelCrcTest::data_ = nullptr;

TEST_F(ParallelCrcTest, EqualsSequentialCrcForEveryRangeShapeAndThreadCount) {
  const std::uint64_t p = kCrcPieceSize;
  const std::vector<std::vector<ByteRange>> shapes = {
      {{0, kSize}},                                // whole buffer, several pieces
      {{0, 0}},                                    // empty range
      {{kSize, 0}},                                // empty range at the very end
      {{0, 1}, {1, 1}, {kSize - 1, 1}},            // single bytes
      {{0, p}, {p, p}},                            // exactly one piece each
      {{p - 1, 2}, {2 * p - 5, p / 4}},            // crossing piece boundaries
      {{4096, p + 1}, {3 * 4096, 0}, {17, 4000}},  // overlapping and out of order
      {{100, 2 * p + 7}},                          // one long unaligned range
  };
  for (std::size_t s = 0; s < shapes.size(); ++s) {
    for (const ByteRange& r : shapes[s]) ASSERT_LE(r.offset + r.length, kSize) << "bad shape";
    const auto expected = sequential(shapes[s]);
    for (unsigned threads = 0; threads <= 4; ++threads) {
      EXPECT_EQ(crc32_ranges(bytes(), shapes[s], threads), expected)
          << "shape " << s << ", " << threads << " threads";
    }
  }
}

TEST_F(ParallelCrcTest, NoRangesGiveNoCrcs) {
  for (unsigned threads = 0; threads <= 4; ++threads) {
    int calls = 0;
    const auto crcs =
        crc32_ranges(bytes(), {}, threads, [&](std::uint64_t done, std::uint64_t total) {
          ++calls;
          EXPECT_EQ(done, 0u);
          EXPECT_EQ(total, 0u);
        });
    EXPECT_TRUE(crcs.empty());
    EXPECT_EQ(calls, 1);
  }
}

TEST_F(ParallelCrcTest, ProgressIsMonotonicAndEndsWithDoneEqualTotal) {
  const std::vector<ByteRange> ranges = {{0, kSize}, {5, 1000}};
  for (unsigned threads = 1; threads <= 4; ++threads) {
    std::vector<std::pair<std::uint64_t, std::uint64_t>> reports;
    crc32_ranges(
        bytes(), ranges, threads,
        [&](std::uint64_t done, std::uint64_t total) { reports.emplace_back(done, total); },
        std::chrono::milliseconds(0));
    ASSERT_FALSE(reports.empty());
    EXPECT_EQ(reports.back(), std::make_pair(kSize + 1000, kSize + 1000));
    for (std::size_t i = 1; i < reports.size(); ++i) {
      EXPECT_LE(reports[i - 1].first, reports[i].first);
      EXPECT_EQ(reports[i].second, kSize + 1000);
    }
  }
}

TEST_F(ParallelCrcTest, ProgressRunsOnTheCallingThread) {
  const auto caller = std::this_thread::get_id();
  const std::vector<ByteRange> ranges = {{0, kSize}};
  crc32_ranges(
      bytes(), ranges, 4,
      [&](std::uint64_t, std::uint64_t) { EXPECT_EQ(std::this_thread::get_id(), caller); },
      std::chrono::milliseconds(0));
}

TEST(ResolveThreadCountTest, ZeroMeansHardwareThreads) {
  EXPECT_GE(resolve_thread_count(0), 1u);
  EXPECT_EQ(resolve_thread_count(3), 3u);
}

}  // namespace
}  // namespace iqdb::persist
