// The example flat index: both ways of persisting round-trip, a loaded index keeps serving
// its base from the mapping while mutations go to an owned delta, search agrees with a
// brute-force reference, and its own parsing refuses lies.
#include "flat_index.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
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

std::vector<float> copy_of(std::span<const float> vector) {
  return std::vector<float>(vector.begin(), vector.end());
}

void expect_same_contents(const FlatIndex& actual, const FlatIndex& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  EXPECT_EQ(actual.dim(), expected.dim());
  EXPECT_EQ(actual.metric(), expected.metric());
  EXPECT_EQ(actual.state_digest(), expected.state_digest());
  expected.for_each([&](std::uint64_t id, std::span<const float> vector) {
    const auto got = actual.find(id);
    ASSERT_TRUE(got.has_value()) << "id " << id;
    EXPECT_EQ(copy_of(*got), copy_of(vector)) << "id " << id;
    const Metadata* want = expected.metadata(id);
    const Metadata* got_metadata = actual.metadata(id);
    ASSERT_EQ(want == nullptr, got_metadata == nullptr) << "id " << id;
    if (want != nullptr) {
      EXPECT_EQ(*got_metadata, *want) << "id " << id;
    }
  });
}

// The file mapped at `address` in this process, "" for anonymous memory.
std::string mapping_holding(const void* address) {
  std::ifstream maps("/proc/self/maps");
  const auto target = reinterpret_cast<std::uintptr_t>(address);
  for (std::string line; std::getline(maps, line);) {
    std::istringstream fields(line);
    std::string range, perms, offset, device, inode, path;
    fields >> range >> perms >> offset >> device >> inode;
    std::getline(fields >> std::ws, path);
    const std::size_t dash = range.find('-');
    const std::uintptr_t begin = std::stoull(range.substr(0, dash), nullptr, 16);
    const std::uintptr_t end = std::stoull(range.substr(dash + 1), nullptr, 16);
    if (target >= begin && target < end) return path;
  }
  return "<unmapped>";
}

bool strictly_ascending(std::span<const std::uint64_t> ids) {
  return std::adjacent_find(ids.begin(), ids.end(), std::greater_equal<>()) == ids.end();
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
  EXPECT_EQ(header.value().sections.size(), 3u);  // ids, vectors, id_order
  EXPECT_EQ(header.value().find_section("metadata"), nullptr);
}

TEST_F(FlatIndexTest, MutationsAfterALoadLeaveTheBaseMappedAndTheFileAlone) {
  save(make_index(20));
  auto loaded = PersistedIndex<FlatIndex>::load(config());
  ASSERT_THAT(loaded, IsOk());
  auto& db = loaded.value();
  const float* base = db.index().base_vectors().data();
  EXPECT_EQ(mapping_holding(base), config().path.string());
  EXPECT_THAT(db.insert(50, vector_for(1)), IsError(ErrorKind::DuplicateId, "50"));
  ASSERT_THAT(db.insert(9999, vector_for(3)), IsOk());
  ASSERT_THAT(db.remove(70), IsOk());
  EXPECT_TRUE(db.index().is_mapped());
  EXPECT_EQ(db.index().base_vectors().data(), base);
  EXPECT_EQ(db.index().base_ids().size(), 20u);
  EXPECT_EQ(db.index().removed_from_base(), 1u);
  EXPECT_EQ(db.index().delta_ids().size(), 1u);
  EXPECT_EQ(db.index().size(), 20u);

  auto reloaded = PersistedIndex<FlatIndex>::load(config());
  ASSERT_THAT(reloaded, IsOk());
  EXPECT_EQ(reloaded.value().index().size(), 20u);
  EXPECT_TRUE(reloaded.value().index().contains(70));
  EXPECT_FALSE(reloaded.value().index().contains(9999));
}

// Owned memory grows with the mutations, not with the base: the same
// mutations after loads of 1,000 and 20,000 vectors cost the same bytes.
TEST_F(FlatIndexTest, OwnedMemoryDependsOnTheMutationsNotOnTheBase) {
  std::vector<std::size_t> owned;
  for (const std::uint64_t count : {1000u, 20000u}) {
    SCOPED_TRACE(count);
    auto created =
        PersistedIndex<FlatIndex>::open_with(make_index(count), config(), OpenMode::Overwrite);
    ASSERT_THAT(created, IsOk());
    ASSERT_THAT(created.value().save(), IsOk());
    auto loaded = PersistedIndex<FlatIndex>::load(config());
    ASSERT_THAT(loaded, IsOk());
    FlatIndex& index = loaded.value().index_mut();
    EXPECT_EQ(index.owned_bytes(), FlatIndex(kDim, DistanceMetric::Euclidean).owned_bytes());
    for (std::uint64_t id = 0; id < 100; ++id) {
      ASSERT_TRUE(index.insert(count * 10 + id, vector_for(id), {}));
      ASSERT_TRUE(index.remove(id * 10));
    }
    EXPECT_EQ(index.size(), count);
    EXPECT_TRUE(index.is_mapped());
    EXPECT_LT(index.owned_bytes(), 100 * (kDim * sizeof(float) + 256));
    owned.push_back(index.owned_bytes());
  }
  EXPECT_EQ(owned[0], owned[1]);
}

TEST_F(FlatIndexTest, BaseRowRemovedThenInsertedAgainLivesInTheDelta) {
  save(make_index(10));
  auto loaded = PersistedIndex<FlatIndex>::load(config());
  ASSERT_THAT(loaded, IsOk());
  auto& db = loaded.value();
  ASSERT_THAT(db.remove(30), IsOk());
  EXPECT_FALSE(db.index().contains(30));
  EXPECT_THAT(db.remove(30), IsError(ErrorKind::IdNotFound, "30"));
  const std::vector<float> fresh(kDim, 0.5f);
  ASSERT_THAT(db.insert(30, fresh, {{"again", true}}), IsOk());
  EXPECT_THAT(db.insert(30, fresh), IsError(ErrorKind::DuplicateId, "30"));
  EXPECT_EQ(copy_of(db.index().find(30).value()), fresh);
  EXPECT_THAT(db.index().delta_ids(), ::testing::ElementsAre(30));
  EXPECT_EQ(db.index().removed_from_base(), 1u);
  EXPECT_EQ(db.index().size(), 10u);
  EXPECT_EQ(db.index().search(fresh, 1).at(0).id, 30u);
  ASSERT_NE(db.index().metadata(30), nullptr);
  ASSERT_THAT(db.remove(30), IsOk());
  EXPECT_TRUE(db.index().delta_ids().empty());
  EXPECT_EQ(db.index().metadata(30), nullptr);
  EXPECT_THAT(db.remove(30), IsError(ErrorKind::IdNotFound, "30"));
  EXPECT_EQ(db.index().size(), 9u);
}

TEST_F(FlatIndexTest, RemoveOfADeltaRowKeepsTheOthersFindable) {
  save(make_index(4));
  auto loaded = PersistedIndex<FlatIndex>::load(config());
  ASSERT_THAT(loaded, IsOk());
  auto& db = loaded.value();
  for (std::uint64_t id = 100; id < 105; ++id) ASSERT_THAT(db.insert(id, vector_for(id)), IsOk());
  ASSERT_THAT(db.remove(101), IsOk());  // the last row moves into its place
  EXPECT_THAT(db.remove(101), IsError(ErrorKind::IdNotFound, "101"));
  EXPECT_EQ(db.index().delta_ids().size(), 4u);
  for (const std::uint64_t id : {100u, 102u, 103u, 104u}) {
    EXPECT_EQ(copy_of(db.index().find(id).value()), vector_for(id)) << "id " << id;
    EXPECT_EQ(db.index().search(vector_for(id), 1).at(0).id, id);
  }
  EXPECT_EQ(db.index().size(), 8u);
}

TEST_F(FlatIndexTest, SaveAfterMutationsWritesAscendingIdsAndLoadsTheSameState) {
  save(make_index(30));
  auto loaded = PersistedIndex<FlatIndex>::load(config());
  ASSERT_THAT(loaded, IsOk());
  auto& db = loaded.value();
  ASSERT_THAT(db.insert(5, vector_for(100), {{"k", std::int64_t{1}}}), IsOk());  // below the base
  ASSERT_THAT(db.insert(1000, vector_for(101)), IsOk());
  ASSERT_THAT(db.insert(155, vector_for(102)), IsOk());
  ASSERT_THAT(db.remove(0), IsOk());
  ASSERT_THAT(db.remove(150), IsOk());
  ASSERT_THAT(db.remove(290), IsOk());
  const std::uint64_t digest = db.index().state_digest();
  ASSERT_THAT(db.save(), IsOk());

  auto reloaded = PersistedIndex<FlatIndex>::load(config());
  ASSERT_THAT(reloaded, IsOk());
  const FlatIndex& index = reloaded.value().index();
  EXPECT_EQ(index.state_digest(), digest);
  EXPECT_EQ(index.size(), 30u);
  EXPECT_EQ(index.base_ids().size(), 30u);
  EXPECT_TRUE(strictly_ascending(index.base_ids()));
  EXPECT_TRUE(index.delta_ids().empty());
  EXPECT_EQ(index.owned_bytes(), FlatIndex(kDim, DistanceMetric::Euclidean).owned_bytes());
  expect_same_contents(index, db.index());
}

TEST_F(FlatIndexTest, StateDigestIgnoresTheSplitButNotOneFloat) {
  const FlatIndex all = make_index(40);
  FlatIndex first_half(kDim, DistanceMetric::Euclidean);
  for (std::uint64_t id = 0; id < 20; ++id) {
    const Metadata* metadata = all.metadata(id * 10);
    ASSERT_TRUE(first_half.insert(id * 10, vector_for(id), metadata ? *metadata : Metadata{}));
  }
  save(std::move(first_half));
  auto loaded = PersistedIndex<FlatIndex>::load(config());
  ASSERT_THAT(loaded, IsOk());
  FlatIndex& split = loaded.value().index_mut();
  // The second half goes to the delta, one base row leaves and comes back.
  for (std::uint64_t id = 39; id >= 20; --id) {
    const Metadata* metadata = all.metadata(id * 10);
    ASSERT_TRUE(split.insert(id * 10, vector_for(id), metadata ? *metadata : Metadata{}));
  }
  ASSERT_TRUE(split.remove(70));
  ASSERT_TRUE(split.insert(70, vector_for(7), {}));
  EXPECT_GT(split.base_ids().size(), 0u);
  EXPECT_GT(split.delta_ids().size(), 0u);
  EXPECT_EQ(split.state_digest(), all.state_digest());

  std::vector<float> nudged = vector_for(7);
  nudged[3] = std::nextafter(nudged[3], 1e9f);
  ASSERT_TRUE(split.remove(70));
  ASSERT_TRUE(split.insert(70, nudged, {}));
  EXPECT_NE(split.state_digest(), all.state_digest());
  ASSERT_TRUE(split.remove(70));
  ASSERT_TRUE(split.insert(70, vector_for(7), {{"extra", MetadataValue{}}}));
  EXPECT_NE(split.state_digest(), all.state_digest());
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

  // `said_to_ascend`: whether to write FlatIndex's "id_order" section, which
  // says the ids ascend (whether they do or not).
  explicit IdsWriter(std::vector<std::uint64_t> ids, bool said_to_ascend = false)
      : ids_(std::move(ids)), vectors_(ids_.size() * kDim), said_to_ascend_(said_to_ascend) {
    for (std::size_t row = 0; row < ids_.size(); ++row) {
      const auto vector = vector_for(ids_[row]);
      std::copy(vector.begin(), vector.end(),
                vectors_.begin() + static_cast<std::ptrdiff_t>(row * kDim));
    }
  }
  IndexResult<void> insert(const VectorId&, std::span<const float>, const Metadata&) {
    return success();
  }
  IndexResult<void> remove(const VectorId&) { return success(); }
  std::size_t size() const { return ids_.size(); }
  std::size_t dim() const { return kDim; }
  DistanceMetric metric() const { return DistanceMetric::Euclidean; }

  persist::Result<void> save_sections(persist::SectionWriter& out) const {
    IQDB_TRY(out.add_array<std::uint64_t>("ids", ids_));
    IQDB_TRY(out.add_array<float>("vectors", vectors_));
    if (!said_to_ascend_) return success();
    const std::uint64_t ascending = 1;
    return out.add_array<std::uint64_t>("id_order", std::span(&ascending, 1));
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
  bool said_to_ascend_;
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

// Files without "id_order" (older ones, other writers) whose ids do not
// ascend, and stream payloads in any order, get an owned id order.
TEST_F(FlatIndexTest, IdsThatDoNotAscendAreServedThroughAPermutation) {
  const std::vector<std::uint64_t> ids = {70, 10, 90, 30, 20, 80};
  auto writer = PersistedIndex<IdsWriter>::open_with(IdsWriter(ids), config());
  ASSERT_THAT(writer, IsOk());
  ASSERT_THAT(writer.value().save(), IsOk());
  BufferWriter payload;
  ASSERT_THAT(IdsWriter(ids).save_to(payload), IsOk());
  persist::StreamReader reader(payload.bytes_, "buffer");
  auto streamed = FlatIndex::load_from(reader);
  ASSERT_THAT(streamed, IsOk());

  for (const VerifyMode mode : {VerifyMode::Eager, VerifyMode::Skip}) {
    PersistConfig load_config = config();
    load_config.verify = mode;
    auto loaded = PersistedIndex<FlatIndex>::load(load_config);
    ASSERT_THAT(loaded, IsOk());
    FlatIndex& index = loaded.value().index_mut();
    EXPECT_EQ(index.state_digest(), streamed.value().state_digest());
    EXPECT_GT(index.owned_bytes(), FlatIndex(kDim, DistanceMetric::Euclidean).owned_bytes());
    for (const std::uint64_t id : ids) {
      EXPECT_EQ(copy_of(index.find(id).value()), vector_for(id)) << "id " << id;
      EXPECT_EQ(index.insert(id, vector_for(id), {}).error().code, IndexErrc::DuplicateId);
    }
    EXPECT_FALSE(index.contains(40));
    ASSERT_TRUE(index.remove(90));
    ASSERT_TRUE(index.insert(40, vector_for(4), {}));
    EXPECT_EQ(index.search(vector_for(4), 1).at(0).id, 40u);
  }
  FlatIndex& index = streamed.value();
  ASSERT_TRUE(index.remove(90));
  ASSERT_TRUE(index.insert(40, vector_for(4), {}));
  auto db = PersistedIndex<FlatIndex>::open_with(std::move(index), config(), OpenMode::Overwrite);
  ASSERT_THAT(db, IsOk());
  ASSERT_THAT(db.value().save(), IsOk());
  auto reloaded = PersistedIndex<FlatIndex>::load(config());
  ASSERT_THAT(reloaded, IsOk());
  EXPECT_THAT(reloaded.value().index().base_ids(), ::testing::ElementsAre(10, 20, 30, 40, 70, 80));
  expect_same_contents(reloaded.value().index(), db.value().index());
}

// An Eager load checks what "id_order" says; trusted loads believe it.
TEST_F(FlatIndexTest, IdsSaidToAscendThatDoNotAreRefusedByEagerLoads) {
  auto writer = PersistedIndex<IdsWriter>::open_with(IdsWriter({10, 30, 20}, true), config());
  ASSERT_THAT(writer, IsOk());
  ASSERT_THAT(writer.value().save(), IsOk());
  EXPECT_THAT(PersistedIndex<FlatIndex>::load(config()),
              IsError(ErrorKind::InvalidPayload, {"'ids'", "id 30 comes before id 20"}));
  PersistConfig trusted = config();
  trusted.verify = VerifyMode::Skip;
  auto loaded = PersistedIndex<FlatIndex>::load(trusted);
  ASSERT_THAT(loaded, IsOk());
  EXPECT_EQ(loaded.value().index().size(), 3u);
}

// The distance FlatIndex documents, one component at a time.
float reference_distance(DistanceMetric metric, std::span<const float> a,
                         std::span<const float> b) {
  float sum = 0, dot = 0, norm_a = 0, norm_b = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    switch (metric) {
      case DistanceMetric::Cosine:
        dot += a[i] * b[i];
        norm_a += a[i] * a[i];
        norm_b += b[i] * b[i];
        break;
      case DistanceMetric::DotProduct: sum -= a[i] * b[i]; break;
      case DistanceMetric::Euclidean: sum += (a[i] - b[i]) * (a[i] - b[i]); break;
      case DistanceMetric::Manhattan: sum += std::abs(a[i] - b[i]); break;
      case DistanceMetric::Hamming: sum += (a[i] > 0) != (b[i] > 0) ? 1.0f : 0.0f; break;
    }
  }
  if (metric != DistanceMetric::Cosine) return sum;
  const float denominator = std::sqrt(norm_a) * std::sqrt(norm_b);
  return denominator == 0 ? 1.0f : 1.0f - dot / denominator;
}

// Every live row's distance, sorted, ties by id: the k first.
std::vector<SearchHit> reference_search(const FlatIndex& index, std::span<const float> query,
                                        std::size_t k) {
  std::vector<SearchHit> hits;
  index.for_each([&](std::uint64_t id, std::span<const float> vector) {
    hits.push_back({id, reference_distance(index.metric(), query, vector)});
  });
  std::sort(hits.begin(), hits.end(), [](const SearchHit& a, const SearchHit& b) {
    return a.distance < b.distance || (a.distance == b.distance && a.id < b.id);
  });
  hits.resize(std::min(k, hits.size()));
  return hits;
}

// A loaded base with tombstones, a delta, re-inserted base ids and exact
// duplicates (ties), for each metric and a dimension with a tail.
class FlatSearchTest : public FlatIndexTest, public ::testing::WithParamInterface<DistanceMetric> {
 protected:
  static constexpr std::size_t kSearchDim = 37;

  // Integer components keep every sum exact, or random floats.
  std::vector<float> row(std::mt19937_64& random, bool integers) const {
    std::vector<float> vector(kSearchDim);
    std::uniform_real_distribution<float> real(-1.0f, 1.0f);
    std::uniform_int_distribution<int> whole(-3, 3);
    for (float& value : vector) value = integers ? float(whole(random)) : real(random);
    return vector;
  }

  FlatIndex build(bool integers) {
    std::mt19937_64 random(integers ? 7 : 11);
    FlatIndex base(kSearchDim, GetParam());
    for (std::uint64_t id = 0; id < 400; ++id)
      EXPECT_TRUE(base.insert(id * 3, row(random, integers), {}));
    save(std::move(base));
    auto loaded = PersistedIndex<FlatIndex>::load(config());
    EXPECT_THAT(loaded, IsOk());
    FlatIndex index = std::move(loaded.value().index_mut());
    for (std::uint64_t id = 0; id < 400; id += 7) EXPECT_TRUE(index.remove(id * 3));
    for (std::uint64_t id = 0; id < 400; id += 21)
      EXPECT_TRUE(index.insert(id * 3, row(random, integers), {}));
    for (std::uint64_t id = 0; id < 150; ++id)
      EXPECT_TRUE(index.insert(id * 3 + 1, row(random, integers), {}));
    const auto twin = copy_of(index.find(4).value());
    for (const std::uint64_t id : {2u, 5u, 1000u}) EXPECT_TRUE(index.insert(id, twin, {}));
    EXPECT_TRUE(index.remove(1));
    return index;
  }
};

TEST_P(FlatSearchTest, EqualsABruteForceReferenceExactlyOnIntegerData) {
  const FlatIndex index = build(true);
  std::mt19937_64 random(99);
  std::vector<std::vector<float>> queries = {copy_of(index.find(4).value())};
  for (int q = 0; q < 5; ++q) queries.push_back(row(random, true));
  for (const auto& query : queries) {
    for (const std::size_t k : {1u, 10u, 1000u}) {
      const auto want = reference_search(index, query, k);
      const auto got = index.search(query, k);
      ASSERT_EQ(got.size(), want.size());
      for (std::size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(got[i].id, want[i].id) << "rank " << i << " of k " << k;
        EXPECT_EQ(got[i].distance, want[i].distance) << "rank " << i << " of k " << k;
      }
    }
  }
  // The exact duplicates of id 4 come out in id order, right after it.
  const auto twins = index.search(queries.front(), 4);
  if (GetParam() != DistanceMetric::DotProduct) {
    EXPECT_THAT(std::vector<std::uint64_t>({twins[0].id, twins[1].id, twins[2].id, twins[3].id}),
                ::testing::ElementsAre(2, 4, 5, 1000));
  }
}

TEST_P(FlatSearchTest, EqualsABruteForceReferenceOnRandomData) {
  const FlatIndex index = build(false);
  std::mt19937_64 random(98);
  for (int q = 0; q < 10; ++q) {
    const auto query = row(random, false);
    const auto want = reference_search(index, query, 10);
    const auto got = index.search(query, 10);
    ASSERT_EQ(got.size(), want.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].id, want[i].id) << "rank " << i;
      EXPECT_NEAR(got[i].distance, want[i].distance, 1e-4 * (1 + std::abs(want[i].distance)));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Metrics, FlatSearchTest,
                         ::testing::Values(DistanceMetric::Cosine, DistanceMetric::DotProduct,
                                           DistanceMetric::Euclidean, DistanceMetric::Manhattan,
                                           DistanceMetric::Hamming),
                         [](const auto& info) { return std::string(to_string(info.param)); });

}  // namespace
}  // namespace iqdb::examples
