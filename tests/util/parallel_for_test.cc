#include "util/parallel_for.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <optional>
#include <vector>

namespace iqdb::persist {
namespace {

TEST(ItemRunsTest, EachThreadTakesItsOwnRunInOrder) {
  ItemRuns runs(8, 2);
  for (const std::size_t expected : {0u, 1u, 2u, 3u}) EXPECT_EQ(runs.claim(0), expected);
  for (const std::size_t expected : {4u, 5u, 6u, 7u}) EXPECT_EQ(runs.claim(1), expected);
  EXPECT_EQ(runs.claim(0), std::nullopt);
  EXPECT_EQ(runs.claim(1), std::nullopt);
}

TEST(ItemRunsTest, AThreadWithNothingLeftTakesTheLongestRunFromItsEnd) {
  ItemRuns runs(9, 3);  // runs [0, 3), [3, 6), [6, 9)
  EXPECT_EQ(runs.claim(1), 3u);
  for (const std::size_t expected : {6u, 7u, 8u}) EXPECT_EQ(runs.claim(2), expected);
  EXPECT_EQ(runs.claim(2), 2u);  // run 0 has 3 left, run 1 has 2
  EXPECT_EQ(runs.claim(2), 1u);  // both have 2 left: the first
  EXPECT_EQ(runs.claim(0), 0u);
  EXPECT_EQ(runs.claim(0), 5u);  // its own run is done
  EXPECT_EQ(runs.claim(1), 4u);
  EXPECT_EQ(runs.claim(1), std::nullopt);
}

TEST(ItemRunsTest, MoreThreadsThanItemsLeaveSomeRunsEmpty) {
  ItemRuns runs(2, 4);
  std::vector<std::size_t> taken;
  for (std::size_t t = 0; t < 4; ++t) {
    while (const auto item = runs.claim(t)) taken.push_back(*item);
  }
  EXPECT_EQ(taken, (std::vector<std::size_t>{0, 1}));
}

TEST(ParallelForTest, RunsEveryItemExactlyOnce) {
  for (const std::size_t count : {0u, 1u, 2u, 7u, 8u, 1000u}) {
    for (const unsigned threads : {0u, 1u, 2u, 3u, 16u}) {
      std::vector<std::atomic<int>> runs(count);
      parallel_for(count, threads, [&](std::size_t i) { runs[i].fetch_add(1); });
      for (std::size_t i = 0; i < count; ++i) {
        ASSERT_EQ(runs[i].load(), 1)
            << "item " << i << " of " << count << ", " << threads << " threads";
      }
    }
  }
}

}  // namespace
}  // namespace iqdb::persist
