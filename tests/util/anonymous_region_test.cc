// The decoded-section memory and its cache of released regions: a region is
// recycled for the next request of about its size (writable again, trimmed to
// the request), never for one much smaller, and the cache stays within its
// capacity by unmapping what it cannot keep. Sizes here are chosen apart from
// other tests' sections; the cache prefers the newest of equal fits.
#include "util/anonymous_region.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "support/test_util.h"

namespace iqdb::persist {
namespace {

constexpr std::uint64_t kMiB = std::uint64_t{1} << 20;

std::unique_ptr<AnonymousRegion> region_of(std::uint64_t length) {
  auto region = AnonymousRegion::create(length, 4096, "test region");
  EXPECT_TRUE(region) << (region ? "" : region.error().to_string());
  return region ? std::move(region).value() : nullptr;
}

// Whether the page holding `address` is mapped (mincore fails with ENOMEM
// if not).
bool is_mapped(const std::byte* address) {
  const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  void* start = reinterpret_cast<void*>(reinterpret_cast<std::uintptr_t>(address) & ~(page - 1));
  unsigned char resident = 0;
  return ::mincore(start, 1, &resident) == 0;
}

TEST(AnonymousRegionTest, RegionIsHugePageAlignedWritableAndOfTheLengthAsked) {
  auto region = region_of(3 * kMiB + 5);
  ASSERT_NE(region, nullptr);
  const std::span<std::byte> bytes = region->bytes();
  EXPECT_EQ(bytes.size(), 3 * kMiB + 5);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(bytes.data()) % (2 * kMiB), 0u);  // huge pages
  std::memset(bytes.data(), 0x5a, bytes.size());
  EXPECT_EQ(bytes.back(), std::byte{0x5a});
}

TEST(AnonymousRegionTest, ReleasedRegionIsReusedWritableByTheNextRequestOfItsSize) {
  auto first = region_of(6 * kMiB);
  ASSERT_NE(first, nullptr);
  std::byte* const address = first->bytes().data();
  std::memset(address, 0xab, first->bytes().size());
  first->make_read_only();
  first.reset();
  EXPECT_TRUE(is_mapped(address));  // kept, not unmapped

  auto second = region_of(6 * kMiB - 100);  // rounded to the same 6 MiB
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(second->bytes().data(), address);
  EXPECT_EQ(second->bytes().size(), 6 * kMiB - 100);
  // Read-only no longer: this would crash otherwise.
  std::memset(second->bytes().data(), 0x11, second->bytes().size());
  EXPECT_EQ(second->bytes()[12345], std::byte{0x11});
}

TEST(AnonymousRegionTest, SlightlyLargerRegionIsTrimmedToTheRequest) {
  auto first = region_of(18 * kMiB);
  ASSERT_NE(first, nullptr);
  std::byte* const address = first->bytes().data();
  first.reset();
  EXPECT_TRUE(is_mapped(address + 16 * kMiB));

  auto second = region_of(16 * kMiB);  // 18 MiB is within a quarter more
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(second->bytes().data(), address);
  EXPECT_TRUE(is_mapped(address + 16 * kMiB - 1));
  EXPECT_FALSE(is_mapped(address + 16 * kMiB));  // the 2 MiB beyond went back
}

TEST(AnonymousRegionTest, MuchLargerRegionIsNotSpentOnASmallRequest) {
  auto large = region_of(32 * kMiB);
  ASSERT_NE(large, nullptr);
  const std::byte* const begin = large->bytes().data();
  large.reset();

  auto small = region_of(4 * kMiB);
  ASSERT_NE(small, nullptr);
  const std::byte* const address = small->bytes().data();
  EXPECT_FALSE(address >= begin && address < begin + 32 * kMiB);
  EXPECT_TRUE(is_mapped(begin));  // still cached
}

TEST(AnonymousRegionTest, CacheUnmapsWhatItCannotKeep) {
  auto oversized = region_of(kRegionCacheCapacity + 2 * kMiB);
  ASSERT_NE(oversized, nullptr);
  const std::byte* const oversized_address = oversized->bytes().data();
  oversized.reset();
  EXPECT_FALSE(is_mapped(oversized_address));

  // Four 20 MiB regions are more than the cache holds: the oldest goes.
  std::vector<std::unique_ptr<AnonymousRegion>> regions;
  for (int i = 0; i < 4; ++i) regions.push_back(region_of(20 * kMiB));
  std::vector<const std::byte*> addresses;
  for (const auto& region : regions) {
    ASSERT_NE(region, nullptr);
    addresses.push_back(region->bytes().data());
  }
  regions.clear();  // released in order, first to last
  EXPECT_FALSE(is_mapped(addresses.front()));
  EXPECT_TRUE(is_mapped(addresses.back()));
}

TEST(AnonymousRegionTest, CacheKeepsAtMostItsSlotCountOfRegions) {
  // Small regions, all released: only the newest kRegionCacheSlots stay.
  std::vector<std::unique_ptr<AnonymousRegion>> regions;
  for (std::size_t i = 0; i < kRegionCacheSlots + 1; ++i) regions.push_back(region_of(12 << 10));
  std::vector<const std::byte*> addresses;
  for (const auto& region : regions) {
    ASSERT_NE(region, nullptr);
    addresses.push_back(region->bytes().data());
  }
  regions.clear();
  EXPECT_FALSE(is_mapped(addresses.front()));
  EXPECT_TRUE(is_mapped(addresses.back()));
}

}  // namespace
}  // namespace iqdb::persist
