// The example flat index: both ways of persisting round-trip, a loaded index serves from
// the mapping until its first mutation, and its own parsing refuses lies.
#include "flat_index.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "iqdb/persist.h"
#include "support/test_util.h"

namespace iqdb::examples {
namespace {

using persist::ErrorKind;
using persist::OpenMode;
using persist::PersistConfig;
using persist::PersistedIndex;
using persist::success;
using persist::VerifyMode;
using persist::test::IsError;
using persist::test::IsOk;
using persist::test::TempDir;

constexpr std::size_t kDim = 8;

std::vector<float> vector_for(std::uint64_t id) {
  std::vector<float> vector(kDim);
  for (std::size_t i = 0; i < kDim; ++i) vector[i] = static_cast<float>(id * 31 + i * 7 % 13) - 40;
  return vector;
}

FlatIndex make_index(std::uint64_t count, DistanceMetric metric = DistanceMetric::Euclidean) {
  FlatIndex index(kDim, metric);
  for (std::uint64_t id = 0; id < count; ++id) {
    Metadata metadata;
    if (id % 3 == 0) {
      metadata = {{"name", std::string("v") + std::to_string(id)},
                  {"rank", std::int64_t(id) * -2},
                  {"score", 0.25 * double(id)},
                  {"live", id % 2 == 0},
                  {"nothing", MetadataValue{}}};
    }
    EXPECT_TRUE(index.insert(id * 10, vector_for(id), metadata));
  }
  return index;
}

// An in-memory StreamWriter, for stream persistence.
class BufferWriter final : public persist::StreamWriter {
 public:
  persist::Result<void> write(std::span<const std::byte> bytes) override {
    bytes_.insert(bytes_.end(), bytes.begin(), bytes.end());
    return success();
  }
  std::vector<std::byte> bytes_;
};

void expect_same_contents(const FlatIndex& actual, const FlatIndex& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  EXPECT_EQ(actual.dim(), expected.dim());
  EXPECT_EQ(actual.metric(), expected.metric());
  EXPECT_TRUE(std::equal(actual.ids().begin(), actual.ids().end(), expected.ids().begin()));
  EXPECT_TRUE(
      std::equal(actual.vectors().begin(), actual.vectors().end(), expected.vectors().begin()));
  for (const std::uint64_t id : expected.ids()) {
    const Metadata* want = expected.metadata(id);
    const Metadata* got = actual.metadata(id);
    ASSERT_EQ(want == nullptr, got == nullptr) << "id " << id;
    if (want != nullptr) {
      EXPECT_EQ(*got, *want) << "id " << id;
    }
  }
}

class FlatIndexTest : public ::testing::Test {
 protected:
  PersistConfig config() const {
    PersistConfig config(dir_.file("flat.iqdb"));
    config.fsync_policy = persist::FsyncPolicy::never();
    return config;
  }
  void save(FlatIndex index) {
    auto db = PersistedIndex<FlatIndex>::open_with(std::move(index), config());
    ASSERT_THAT(db, IsOk());
    ASSERT_THAT(db.value().save(), IsOk());
  }

  TempDir dir_;
};

TEST_F(FlatIndexTest, SectionsRoundTripAndServeFromTheMapping) {
  const FlatIndex original = make_index(50, DistanceMetric::Cosine);
  save(make_index(50, DistanceMetric::Cosine));
  auto loaded = PersistedIndex<FlatIndex>::load(config());
  ASSERT_THAT(loaded, IsOk());
  const FlatIndex& index = loaded.value().index();
  EXPECT_TRUE(index.is_mapped());
  expect_same_contents(index, original);
  const auto query = vector_for(7);
  EXPECT_EQ(index.search(query, 1).at(0).id, 70u);
  auto header = persist::read_file_header(config().path);
  ASSERT_THAT(header, IsOk());
  EXPECT_NE(header.value().find_section("metadata"), nullptr);
}

TEST_F(FlatIndexTest, IndexWithoutMetadataWritesNoMetadataSection) {
  FlatIndex index(kDim, DistanceMetric::Manhattan);
  ASSERT_TRUE(index.insert(1, vector_for(1), {}));
  save(std::move(index));
  auto header = persist::read_file_header(config().path);
  ASSERT_THAT(header, IsOk());
  EXPECT_EQ(header.value().sections.size(), 2u);
  EXPECT_EQ(header.value().find_section("metadata"), nullptr);
}

TEST_F(FlatIndexTest, FirstMutationCopiesAndLeavesTheFileAlone) {
  save(make_index(20));
  auto loaded = PersistedIndex<FlatIndex>::load(config());
  ASSERT_THAT(loaded, IsOk());
  auto& db = loaded.value();
  EXPECT_THAT(db.insert(50, vector_for(1)), IsError(ErrorKind::DuplicateId, "50"));
  ASSERT_THAT(db.insert(9999, vector_for(3)), IsOk());
  EXPECT_FALSE(db.index().is_mapped());
  EXPECT_EQ(db.index().size(), 21u);

  auto reloaded = PersistedIndex<FlatIndex>::load(config());
  ASSERT_THAT(reloaded, IsOk());
  EXPECT_EQ(reloaded.value().index().size(), 20u);
}

TEST_F(FlatIndexTest, RemoveKeepsEveryOtherVectorFindable) {
  save(make_index(10));
  auto loaded = PersistedIndex<FlatIndex>::load(config());
  ASSERT_THAT(loaded, IsOk());
  auto& db = loaded.value();
  ASSERT_THAT(db.remove(30), IsOk());
  EXPECT_THAT(db.remove(30), IsError(ErrorKind::IdNotFound, "30"));
  EXPECT_EQ(db.index().metadata(30), nullptr);
  EXPECT_EQ(db.index().size(), 9u);
  for (std::uint64_t id = 0; id < 10; ++id) {
    if (id == 3) continue;
    EXPECT_EQ(db.index().search(vector_for(id), 1).at(0).id, id * 10) << "id " << id * 10;
  }
  ASSERT_THAT(db.save(), IsOk());
  auto reloaded = PersistedIndex<FlatIndex>::load(config());
  ASSERT_THAT(reloaded, IsOk());
  expect_same_contents(reloaded.value().index(), db.index());
}

TEST_F(FlatIndexTest, RefusesByteIdsAndWrongDimensions) {
  FlatIndex index(kDim, DistanceMetric::DotProduct);
  const auto byte_id = VectorId::from_bytes("key");
  ASSERT_TRUE(byte_id.has_value());
  EXPECT_EQ(index.insert(*byte_id, vector_for(1), {}).error().code, IndexErrc::InvalidArgument);
  const std::vector<float> short_vector(kDim - 1);
  EXPECT_EQ(index.insert(1, short_vector, {}).error().code, IndexErrc::DimensionMismatch);
  EXPECT_EQ(index.size(), 0u);
}

TEST_F(FlatIndexTest, StreamPersistenceRoundTrips) {
  const FlatIndex original = make_index(12, DistanceMetric::Hamming);
  BufferWriter writer;
  ASSERT_THAT(original.save_to(writer), IsOk());
  persist::StreamReader reader(writer.bytes_, "buffer");
  auto loaded = FlatIndex::load_from(reader);
  ASSERT_THAT(loaded, IsOk());
  EXPECT_THAT(reader.expect_end(), IsOk());
  EXPECT_FALSE(loaded.value().is_mapped());
  expect_same_contents(loaded.value(), original);
}

TEST_F(FlatIndexTest, StreamPayloadClaimingMoreVectorsThanItHoldsIsRefusedBeforeAllocating) {
  BufferWriter writer;
  ASSERT_THAT(make_index(2).save_to(writer), IsOk());
  const std::uint64_t lie = std::uint64_t{1} << 60;
  std::memcpy(writer.bytes_.data() + 5, &lie, sizeof lie);  // after dim (4) and metric (1)
  persist::StreamReader reader(writer.bytes_, "buffer");
  EXPECT_THAT(FlatIndex::load_from(reader), IsError(ErrorKind::InvalidPayload, "vectors"));
}

TEST_F(FlatIndexTest, StreamPayloadWithBadMetricOrTruncationIsRefused) {
  BufferWriter writer;
  ASSERT_THAT(make_index(4).save_to(writer), IsOk());
  auto bad_metric = writer.bytes_;
  bad_metric[4] = std::byte{9};
  persist::StreamReader metric_reader(bad_metric, "buffer");
  EXPECT_THAT(FlatIndex::load_from(metric_reader), IsError(ErrorKind::InvalidMetric, "9"));
  for (std::size_t length = 0; length < writer.bytes_.size(); ++length) {
    persist::StreamReader reader(std::span(writer.bytes_).first(length), "buffer");
    EXPECT_THAT(FlatIndex::load_from(reader), IsError(ErrorKind::InvalidPayload))
        << "length " << length;
  }
}

// Writes what FlatIndex writes, but with the ids it is given, duplicates
// included: the snapshot a buggy or hostile writer could produce.
class IdsWriter {
 public:
  static constexpr std::string_view kIndexType = FlatIndex::kIndexType;

  explicit IdsWriter(std::vector<std::uint64_t> ids)
      : ids_(std::move(ids)), vectors_(ids_.size() * kDim, 1.0f) {}
  IndexResult<void> insert(const VectorId&, std::span<const float>, const Metadata&) {
    return success();
  }
  IndexResult<void> remove(const VectorId&) { return success(); }
  std::size_t size() const { return ids_.size(); }
  std::size_t dim() const { return kDim; }
  DistanceMetric metric() const { return DistanceMetric::Euclidean; }

  persist::Result<void> save_sections(persist::SectionWriter& out) const {
    IQDB_TRY(out.add_array<std::uint64_t>("ids", ids_));
    return out.add_array<float>("vectors", vectors_);
  }
  static persist::Result<IdsWriter> load_sections(const persist::SnapshotView&) {
    return persist::fail(ErrorKind::Unsupported, "write only");
  }
  // FlatIndex's stream payload: dim, metric, count, ids, vectors, no metadata.
  persist::Result<void> save_to(persist::StreamWriter& out) const {
    IQDB_TRY(out.write_value(static_cast<std::uint32_t>(kDim)));
    IQDB_TRY(out.write_value(static_cast<std::uint8_t>(metric())));
    IQDB_TRY(out.write_value(static_cast<std::uint64_t>(ids_.size())));
    IQDB_TRY(out.write_array(std::span<const std::uint64_t>(ids_)));
    IQDB_TRY(out.write_array(std::span<const float>(vectors_)));
    return out.write_value(std::uint64_t{0});
  }

 private:
  std::vector<std::uint64_t> ids_;
  std::vector<float> vectors_;
};

TEST_F(FlatIndexTest, BothWaysOfPersistingRefuseDuplicateIds) {
  // All equal; and one duplicate pair far apart among many unsorted ids.
  std::vector<std::uint64_t> spread(100000);
  for (std::uint64_t i = 0; i < spread.size(); ++i) spread[i] = (i * 7919) % spread.size() + 1;
  spread.back() = spread.front();
  for (const auto& ids : {std::vector<std::uint64_t>(3, 5), spread}) {
    SCOPED_TRACE(ids.size());
    const std::string twice = "id " + std::to_string(ids.front()) + " appears twice";
    auto writer =
        PersistedIndex<IdsWriter>::open_with(IdsWriter(ids), config(), OpenMode::Overwrite);
    ASSERT_THAT(writer, IsOk());
    ASSERT_THAT(writer.value().save(), IsOk());
    EXPECT_THAT(PersistedIndex<FlatIndex>::load(config()),
                IsError(ErrorKind::InvalidPayload, {config().path.string(), "'ids'", twice}));
    BufferWriter payload;
    ASSERT_THAT(IdsWriter(ids).save_to(payload), IsOk());
    persist::StreamReader reader(payload.bytes_, "buffer");
    EXPECT_THAT(FlatIndex::load_from(reader), IsError(ErrorKind::InvalidPayload, twice));
  }
}

// Skip and Background trust the payload: the zero-copy load stays
// independent of the file's size and reads no id (documented in flat_index.h).
TEST_F(FlatIndexTest, TrustedLoadsLeaveTheIdCheckToEagerLoads) {
  auto writer = PersistedIndex<IdsWriter>::open_with(IdsWriter(std::vector<std::uint64_t>(3, 5)),
                                                     config(), OpenMode::Overwrite);
  ASSERT_THAT(writer, IsOk());
  ASSERT_THAT(writer.value().save(), IsOk());
  for (const VerifyMode mode : {VerifyMode::Skip, VerifyMode::Background}) {
    PersistConfig trusted = config();
    trusted.verify = mode;
    auto loaded = PersistedIndex<FlatIndex>::load(trusted);
    ASSERT_THAT(loaded, IsOk());
    EXPECT_EQ(loaded.value().index().size(), 3u);
  }
  EXPECT_THAT(PersistedIndex<FlatIndex>::load(config()),
              IsError(ErrorKind::InvalidPayload, "appears twice"));
}

}  // namespace
}  // namespace iqdb::examples
