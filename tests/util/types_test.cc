#include "iqdb/types.h"

#include <gtest/gtest.h>

#include <unordered_set>

namespace iqdb {
namespace {

TEST(DistanceMetricTest, TagsAreStableOnDiskValues) {
  EXPECT_EQ(static_cast<int>(DistanceMetric::Cosine), 0);
  EXPECT_EQ(static_cast<int>(DistanceMetric::DotProduct), 1);
  EXPECT_EQ(static_cast<int>(DistanceMetric::Euclidean), 2);
  EXPECT_EQ(static_cast<int>(DistanceMetric::Manhattan), 3);
  EXPECT_EQ(static_cast<int>(DistanceMetric::Hamming), 4);
}

TEST(DistanceMetricTest, KnownTagsRoundTripAndUnknownTagsAreRejected) {
  for (int tag = 0; tag <= 4; ++tag) {
    const auto metric = metric_from_tag(static_cast<std::uint8_t>(tag));
    ASSERT_TRUE(metric.has_value()) << tag;
    EXPECT_EQ(static_cast<int>(*metric), tag);
  }
  for (int tag = 5; tag <= 255; ++tag) {
    EXPECT_FALSE(metric_from_tag(static_cast<std::uint8_t>(tag)).has_value()) << tag;
  }
}

TEST(DistanceMetricTest, NamesMatchTheApiSpelling) {
  EXPECT_EQ(to_string(DistanceMetric::Cosine), "Cosine");
  EXPECT_EQ(to_string(DistanceMetric::DotProduct), "DotProduct");
  EXPECT_EQ(to_string(DistanceMetric::Euclidean), "Euclidean");
  EXPECT_EQ(to_string(DistanceMetric::Manhattan), "Manhattan");
  EXPECT_EQ(to_string(DistanceMetric::Hamming), "Hamming");
  EXPECT_EQ(to_string(static_cast<DistanceMetric>(99)), "Unknown");
}

TEST(VectorIdTest, EmptyByteIdIsRefused) {
  EXPECT_FALSE(VectorId::from_bytes("").has_value());
  const auto id = VectorId::from_bytes("abc");
  ASSERT_TRUE(id.has_value());
  EXPECT_FALSE(id->is_u64());
  EXPECT_EQ(id->as_bytes(), "abc");
}

TEST(VectorIdTest, ToStringQuotesAndEscapesBytes) {
  EXPECT_EQ(VectorId(42).to_string(), "42");
  EXPECT_EQ(VectorId::from_bytes("a\"b\\c")->to_string(), R"("a\"b\\c")");
  EXPECT_EQ(VectorId::from_bytes(std::string("\x01\x7f\xff", 3))->to_string(), R"("\x01\x7f\xff")");
}

TEST(VectorIdTest, EqualityOrderingAndHashDistinguishKinds) {
  const VectorId number(7);
  const VectorId bytes = *VectorId::from_bytes("7");
  EXPECT_NE(number, bytes);
  EXPECT_EQ(number, VectorId(7));
  EXPECT_LT(VectorId(1), VectorId(2));
  EXPECT_LT(*VectorId::from_bytes("a"), *VectorId::from_bytes("b"));
  std::unordered_set<VectorId> set = {number, bytes, VectorId(7)};
  EXPECT_EQ(set.size(), 2u);
}

}  // namespace
}  // namespace iqdb
