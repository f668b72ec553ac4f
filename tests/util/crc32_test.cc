#include "util/crc32.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdint>
#include <span>
#include <vector>

#include "support/test_util.h"

namespace iqdb::persist {
namespace {

std::uint32_t zlib_crc(std::span<const std::byte> bytes, std::uint32_t crc = 0) {
  return static_cast<std::uint32_t>(
      ::crc32(crc, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size())));
}

TEST(Crc32Test, KnownCheckValue) {
  const std::string_view text = "123456789";
  EXPECT_EQ(crc32(std::as_bytes(std::span(text))), 0xCBF43926u);
  EXPECT_EQ(crc32({}), 0u);
  EXPECT_EQ(crc32({}, 0x12345678u), 0x12345678u);
}

TEST(Crc32Test, MatchesZlibOnRandomDataOfEveryShortLength) {
  const auto data = test::random_bytes(4096 + 64, 11);
  for (std::size_t length = 0; length <= 300; ++length) {
    for (const std::size_t start : {std::size_t{0}, std::size_t{1}, std::size_t{7}}) {
      const auto bytes = std::span(data).subspan(start, length);
      ASSERT_EQ(crc32(bytes), zlib_crc(bytes)) << "length " << length << " start " << start;
    }
  }
  for (const std::size_t length : {1000u, 4096u, 4160u}) {
    const auto bytes = std::span(data).first(length);
    EXPECT_EQ(crc32(bytes), zlib_crc(bytes)) << length;
  }
}

TEST(Crc32Test, ContinuingFromAPreviousCrcEqualsOnePass) {
  const auto data = test::random_bytes(100000, 12);
  const auto all = std::span<const std::byte>(data);
  for (const std::size_t split : {0u, 1u, 63u, 4096u, 77777u, 100000u}) {
    const std::uint32_t first = crc32(all.first(split));
    EXPECT_EQ(crc32(all.subspan(split), first), zlib_crc(all)) << split;
  }
}

TEST(Crc32Test, CombineMatchesZlibAndOnePass) {
  const auto data = test::random_bytes(200000, 13);
  const auto all = std::span<const std::byte>(data);
  for (const std::size_t split : {0u, 1u, 1000u, 65536u, 199999u, 200000u}) {
    const auto a = all.first(split);
    const auto b = all.subspan(split);
    const std::uint32_t combined = crc32_combine(crc32(a), crc32(b), b.size());
    EXPECT_EQ(combined, crc32(all)) << split;
    EXPECT_EQ(combined, static_cast<std::uint32_t>(::crc32_combine64(
                            zlib_crc(a), zlib_crc(b), static_cast<z_off64_t>(b.size()))));
  }
}

TEST(Crc32Test, CombineWithEmptySecondPartKeepsTheFirstCrc) {
  EXPECT_EQ(crc32_combine(0xDEADBEEFu, 0, 0), 0xDEADBEEFu);
}

TEST(Crc32Test, CombineAcceptsLengthsBeyond32Bits) {
  // CRC of 2^33 zero bytes, built by doubling, must equal zlib's combine too.
  std::uint32_t crc = crc32(std::vector<std::byte>(1));
  std::uint64_t length = 1;
  while (length < (std::uint64_t{1} << 33)) {
    const std::uint32_t doubled = crc32_combine(crc, crc, length);
    EXPECT_EQ(doubled, static_cast<std::uint32_t>(
                           ::crc32_combine64(crc, crc, static_cast<z_off64_t>(length))));
    crc = doubled;
    length *= 2;
  }
  EXPECT_NE(crc, 0u);
}

}  // namespace
}  // namespace iqdb::persist
