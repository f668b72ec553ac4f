// PersistedIndex end to end: save/load round trips for stream and section persistence,
// zero-copy loading, atomic saves under injected faults, and the load errors
// that depend on the index rather than on the bytes.
#include "db/snapshot_io.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <tuple>
#include <vector>

#include "iqdb/persist.h"
#include "support/fault_injection_file_system.h"
#include "support/mock_indexes.h"
#include "support/test_util.h"

namespace iqdb::persist::test {
namespace {

using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;

constexpr std::uint64_t k2MiB = std::uint64_t{2} << 20;

const DistanceMetric kAllMetrics[] = {DistanceMetric::Cosine, DistanceMetric::DotProduct,
                                      DistanceMetric::Euclidean, DistanceMetric::Manhattan,
                                      DistanceMetric::Hamming};

// The /proc/self/maps line of the mapping that contains `address`, or "".
std::string mapping_line_of(const void* address) {
  std::ifstream maps("/proc/self/maps");
  const auto target = reinterpret_cast<std::uintptr_t>(address);
  std::string line;
  while (std::getline(maps, line)) {
    std::istringstream fields(line);
    std::uintptr_t low = 0;
    std::uintptr_t high = 0;
    char dash = 0;
    fields >> std::hex >> low >> dash >> high;
    if (target >= low && target < high) return line;
  }
  return "";
}

bool is_mapped_anywhere(const std::filesystem::path& path) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    if (line.ends_with(" " + path.string())) return true;
  }
  return false;
}

// Resident anonymous (private) memory of this process, in bytes.
std::uint64_t rss_anon_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with("RssAnon:")) return std::stoull(line.substr(8)) * 1024;
  }
  ADD_FAILURE() << "no RssAnon in /proc/self/status";
  return 0;
}

class SnapshotIoTest : public ::testing::Test {
 protected:
  SnapshotIoTest() : path_(dir_.file("idx.iqdb")), config_(path_) {}

  template <class I>
  void save(I index, const PersistConfig& config) {
    auto db = PersistedIndex<I>::open_with(std::move(index), config, OpenMode::Overwrite);
    ASSERT_THAT(db, IsOk());
    ASSERT_THAT(db.value().save(), IsOk());
  }
  template <class I>
  void save(I index) {
    save(std::move(index), config_);
  }

  template <class I>
  I load(const PersistConfig& config) {
    auto db = PersistedIndex<I>::load(config);
    EXPECT_THAT(db, IsOk());
    if (!db) return I(1, DistanceMetric::Cosine);
    return std::move(db.value().index_mut());
  }

  FileHeader header() {
    auto header = read_file_header(path_);
    EXPECT_THAT(header, IsOk());
    return header ? header.value() : FileHeader{};
  }

  TempDir dir_;
  std::filesystem::path path_;
  PersistConfig config_;
};

// Round trips, for every metric.

class RoundTripTest
    : public SnapshotIoTest,
      public ::testing::WithParamInterface<std::tuple<DistanceMetric, std::uint64_t>> {
 protected:
  DistanceMetric metric() const { return std::get<0>(GetParam()); }
  std::uint64_t alignment() const { return std::get<1>(GetParam()); }
};

TEST_P(RoundTripTest, StreamPersistenceReconstructsIdenticalIndexAndHeader) {
  config_.section_alignment = alignment();
  const auto original = make_index<StreamMapIndex>(7, 5, metric());
  save(original);
  const auto loaded = load<StreamMapIndex>(config_);
  EXPECT_TRUE(same_content(loaded, original));

  const FileHeader h = header();
  EXPECT_EQ(h.magic, kMagic);
  EXPECT_EQ(h.version, kCurrentVersion);
  EXPECT_EQ(h.index_type, StreamMapIndex::kIndexType);
  EXPECT_EQ(h.dim, 5u);
  EXPECT_EQ(h.metric, metric());
  EXPECT_EQ(h.n_vectors, 7u);
  EXPECT_EQ(h.writer_version, kWriterVersion);
  EXPECT_EQ(h.wal_lsn, 0u);
  EXPECT_EQ(h.header_offset, 32u);
  EXPECT_EQ(h.file_size, std::filesystem::file_size(path_));
  ASSERT_EQ(h.sections.size(), 1u);
  const SectionInfo& payload = h.sections[0];
  EXPECT_EQ(payload.name, kStreamSectionName);
  EXPECT_EQ(payload.alignment, alignment());
  EXPECT_EQ(payload.offset % alignment(), 0u);
  EXPECT_GT(payload.offset, 0u);
  EXPECT_EQ(payload.stored_length, 4u + 1u + 8u + 7u * (8u + 5u * 4u));
  EXPECT_EQ(payload.logical_length, payload.stored_length);
  EXPECT_EQ(payload.compression, SectionCompression::None);
  EXPECT_EQ(h.crc32, payload.crc32);
}

TEST_P(RoundTripTest, SectionPersistenceReconstructsIdenticalIndexAndHeader) {
  config_.section_alignment = alignment();
  const auto original = make_index<SectionArrayIndex>(9, 3, metric());
  save(original);
  const auto loaded = load<SectionArrayIndex>(config_);
  EXPECT_TRUE(loaded.is_mapped());
  EXPECT_TRUE(same_content(loaded, original));
  EXPECT_THAT(loaded.ids(), ElementsAre(10, 20, 30, 40, 50, 60, 70, 80, 90));

  const FileHeader h = header();
  EXPECT_EQ(h.index_type, SectionArrayIndex::kIndexType);
  EXPECT_EQ(h.dim, 3u);
  EXPECT_EQ(h.metric, metric());
  EXPECT_EQ(h.n_vectors, 9u);
  ASSERT_EQ(h.sections.size(), 3u);
  EXPECT_EQ(h.sections[0].name, "shape");
  EXPECT_EQ(h.sections[1].name, "ids");
  EXPECT_EQ(h.sections[2].name, "vectors");
  EXPECT_EQ(h.sections[0].stored_length, 13u);
  EXPECT_EQ(h.sections[1].stored_length, 9u * 8u);
  EXPECT_EQ(h.sections[2].stored_length, 9u * 3u * 4u);
  std::uint64_t previous_end = 0;
  for (const SectionInfo& section : h.sections) {
    EXPECT_EQ(section.alignment, alignment()) << section.name;
    EXPECT_EQ(section.offset % alignment(), 0u) << section.name;
    EXPECT_GE(section.offset, previous_end) << section.name;
    previous_end = section.offset + section.stored_length;
  }
  EXPECT_EQ(h.file_size, previous_end);
}

INSTANTIATE_TEST_SUITE_P(MetricsAndAlignments, RoundTripTest,
                         ::testing::Combine(::testing::ValuesIn(kAllMetrics),
                                            ::testing::Values(std::uint64_t{4096},
                                                              std::uint64_t{65536}, k2MiB)),
                         [](const auto& info) {
                           return std::string(to_string(std::get<0>(info.param))) + "_" +
                                  std::to_string(std::get<1>(info.param));
                         });

TEST_F(SnapshotIoTest, PerSectionAlignmentOverridesTheDefault) {
  auto index = make_index<SectionArrayIndex>(4, 2, DistanceMetric::Cosine);
  index.set_vectors_alignment(k2MiB);
  save(index);
  const FileHeader h = header();
  ASSERT_EQ(h.sections.size(), 3u);
  EXPECT_EQ(h.sections[1].alignment, 4096u);
  EXPECT_EQ(h.sections[2].alignment, k2MiB);
  EXPECT_EQ(h.sections[2].offset, k2MiB);
  const auto loaded = load<SectionArrayIndex>(config_);
  EXPECT_TRUE(same_content(loaded, index));
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(loaded.vectors().data()) % 4096, 0u);
}

TEST_F(SnapshotIoTest, EmptyIndexesRoundTrip) {
  save(StreamMapIndex(4, DistanceMetric::Manhattan));
  const auto stream = load<StreamMapIndex>(config_);
  EXPECT_EQ(stream.size(), 0u);
  EXPECT_EQ(stream.metric(), DistanceMetric::Manhattan);

  save(SectionArrayIndex(4, DistanceMetric::Hamming));
  const auto sections = load<SectionArrayIndex>(config_);
  EXPECT_EQ(sections.size(), 0u);
  EXPECT_EQ(sections.dim(), 4u);
  EXPECT_EQ(sections.metric(), DistanceMetric::Hamming);
  EXPECT_EQ(header().sections.at(2).stored_length, 0u);
}

TEST_F(SnapshotIoTest, SaveReplacesThePreviousSnapshot) {
  save(make_index<StreamMapIndex>(3, 2, DistanceMetric::Cosine, 1));
  const auto second = make_index<StreamMapIndex>(5, 2, DistanceMetric::Cosine, 2);
  save(second);
  EXPECT_TRUE(same_content(load<StreamMapIndex>(config_), second));
  EXPECT_THAT(dir_.entries(), ElementsAre("idx.iqdb", "idx.iqdb.lock"));
}

TEST_F(SnapshotIoTest, SkipVerificationLoadsAnIntactFileIdentically) {
  const auto original = make_index<SectionArrayIndex>(5, 4, DistanceMetric::DotProduct);
  save(original);
  config_.verify = VerifyMode::Skip;
  EXPECT_TRUE(same_content(load<SectionArrayIndex>(config_), original));
  config_.verify = VerifyMode::Eager;
  for (unsigned threads = 0; threads <= 3; ++threads) {
    config_.verify_threads = threads;
    EXPECT_TRUE(same_content(load<SectionArrayIndex>(config_), original));
  }
}

// Zero-copy loading.

TEST_F(SnapshotIoTest, LoadedSectionsPointIntoAReadOnlyMappingOfTheFile) {
  save(make_index<SectionArrayIndex>(6, 4, DistanceMetric::Euclidean));
  const auto loaded = load<SectionArrayIndex>(config_);
  ASSERT_TRUE(loaded.is_mapped());
  const std::string canonical = std::filesystem::canonical(path_).string();
  for (const void* data : {static_cast<const void*>(loaded.vectors().data()),
                           static_cast<const void*>(loaded.ids().data())}) {
    const std::string line = mapping_line_of(data);
    EXPECT_THAT(line, ::testing::EndsWith(" " + canonical));
    std::istringstream fields(line);
    std::string range;
    std::string perms;
    fields >> range >> perms;
    EXPECT_EQ(perms.substr(0, 2), "r-") << line;  // readable, not writable
  }
}

TEST_F(SnapshotIoTest, LoadedSpansAreTheSnapshotViewsSectionBytes) {
  const auto original = make_index<SectionArrayIndex>(6, 4, DistanceMetric::Euclidean);
  save(original);
  auto opened = detail::open_snapshot(config_, SectionArrayIndex::kIndexType);
  ASSERT_THAT(opened, IsOk());
  const SnapshotView& view = opened.value().view;
  auto vectors = view.section("vectors");
  ASSERT_THAT(vectors, IsOk());
  auto index = SectionArrayIndex::load_sections(view);
  ASSERT_THAT(index, IsOk());
  EXPECT_EQ(static_cast<const void*>(index.value().vectors().data()),
            static_cast<const void*>(vectors.value().bytes().data()));
  // The index shares ownership of the very mapping the view holds.
  const auto& ours = index.value().keep_alive();
  const auto& theirs = view.keep_alive();
  EXPECT_FALSE(ours.owner_before(theirs) || theirs.owner_before(ours));
  EXPECT_TRUE(same_content(index.value(), original));
}

TEST_F(SnapshotIoTest, MappedDataOutlivesThePersistedIndexViewAndFileName) {
  const auto original = make_index<SectionArrayIndex>(8, 3, DistanceMetric::Cosine);
  save(original);
  std::weak_ptr<const void> mapping;
  {
    std::optional<SectionArrayIndex> kept;
    {
      auto db = PersistedIndex<SectionArrayIndex>::load(config_);
      ASSERT_THAT(db, IsOk());
      kept.emplace(std::move(db.value().index_mut()));
    }  // PersistedIndex and the SnapshotView it loaded from are gone.
    mapping = kept->keep_alive();
    std::filesystem::remove(path_);
    ASSERT_TRUE(kept->is_mapped());
    EXPECT_TRUE(same_content(*kept, original));
    EXPECT_FALSE(mapping.expired());
  }
  EXPECT_TRUE(mapping.expired());
}

TEST_F(SnapshotIoTest, UnmapsWhenTheLastHolderIsGone) {
  save(make_index<SectionArrayIndex>(2, 2, DistanceMetric::Cosine));
  const auto canonical = std::filesystem::canonical(path_);
  {
    const auto loaded = load<SectionArrayIndex>(config_);
    EXPECT_TRUE(is_mapped_anywhere(canonical));
  }
  EXPECT_FALSE(is_mapped_anywhere(canonical));
}

TEST_F(SnapshotIoTest, ProcessesReadingTheOldSnapshotAreUnharmedBySave) {
  const auto original = make_index<SectionArrayIndex>(5, 2, DistanceMetric::Cosine);
  save(original);
  auto db = PersistedIndex<SectionArrayIndex>::load(config_);
  ASSERT_THAT(db, IsOk());
  const SectionArrayIndex reader = db.value().index();  // shares the mapping
  const std::vector<float> extra = {9.0f, 9.5f};
  ASSERT_THAT(db.value().insert(99, extra), IsOk());
  ASSERT_THAT(db.value().save(), IsOk());
  EXPECT_TRUE(reader.is_mapped());
  EXPECT_TRUE(same_content(reader, original));
  EXPECT_EQ(load<SectionArrayIndex>(config_).size(), 6u);
}

TEST_F(SnapshotIoTest, PrivateMemoryDoesNotGrowWithFileSizeOnSkipLoad) {
  constexpr std::size_t kDim = 256;
  constexpr std::size_t kCount = (std::size_t{64} << 20) / (kDim * sizeof(float));
  config_.fsync_policy = FsyncPolicy::never();
  config_.verify = VerifyMode::Skip;
  const std::vector<float> values = make_vectors(kCount, kDim, 3);
  save(SectionArrayIndex(kDim, DistanceMetric::Cosine, values));
  ASSERT_GE(std::filesystem::file_size(path_), std::uint64_t{64} << 20);
  (void)load<SectionArrayIndex>(config_);  // warm up allocator and code paths

  const std::uint64_t before = rss_anon_bytes();
  const auto loaded = load<SectionArrayIndex>(config_);
  const std::uint64_t after = rss_anon_bytes();
  EXPECT_LT(after > before ? after - before : 0, std::uint64_t{8} << 20)
      << "RssAnon grew from " << before << " to " << after << " bytes";
  ASSERT_TRUE(loaded.is_mapped());
  ASSERT_EQ(loaded.vectors().size(), values.size());
  EXPECT_TRUE(std::ranges::equal(loaded.vectors(), values));
}

// Whether a thread can start now.
bool thread_starts() {
  try {
    std::thread([] {}).join();
    return true;
  } catch (const std::system_error&) {
    return false;
  }
}

// The child process of NoThreadsTest: returns its exit status, having
// printed what failed (gtest assertions do not reach the parent from there).
int save_and_load_without_threads() {
  std::string failures;
  const auto expect = [&](bool ok, const std::string& what) {
    if (!ok) failures += what + "\n";
  };
  const auto expect_ok = [&](const auto& result, const std::string& what) {
    expect(result.has_value(), what + ": " + (result ? "" : result.error().to_string()));
  };
  {
    TempDir dir;
    PersistConfig config(dir.file("db.iqdb"));
    config.fsync_policy = FsyncPolicy::never();
    config.verify_threads = 4;
    if (Compression::lz4().available()) {
      config.compression = Compression::lz4();
      config.compressed_sections = {"ids"};
    }
    // Vectors: 17.9 MB, enough for the save to compute their CRCs on a thread
    // of their own. Ids: 1.1 MB, two compressed chunks to decode in parallel.
    const SectionArrayIndex index(32, DistanceMetric::Euclidean, make_vectors(140'000, 32));
    auto db = PersistedIndex<SectionArrayIndex>::open_with(index, config);
    expect_ok(db, "open_with");
    if (db) {
      AddressSpaceLimit limit(std::size_t{8} << 20);
      expect(limit.active(), "cannot limit the address space");
      expect(!thread_starts(), "a thread started despite the limit");
      expect_ok(db.value().save(), "save");
    }
    expect_ok(verify_snapshot(config.path), "verify_snapshot of what was saved");
    const std::size_t room = std::filesystem::file_size(config.path) + (std::size_t{8} << 20);
    for (const VerifyMode mode : {VerifyMode::Eager, VerifyMode::Background}) {
      config.verify = mode;
      config.warm_up = WarmUp::Prefetch;
      AddressSpaceLimit limit(room);
      auto loaded = PersistedIndex<SectionArrayIndex>::load(config);
      expect_ok(loaded, "load");
      if (!loaded) continue;
      expect(same_content(loaded.value().index(), index), "the loaded index differs");
      // No worker: the check ran on the caller before load() returned.
      expect(loaded.value().verification().state() == Verification::State::Passed,
             "the verification had not passed when load() returned");
    }
  }
  std::fputs(failures.c_str(), stderr);
  return failures.empty() ? 0 : 1;
}

// Each thread the library starts (the CRC thread of a large section's save,
// verification and decoding helpers, the Background verifier, the Prefetch
// warm-up) has a fallback that does the work on the calling thread: a
// process at its thread limit still saves and loads, and checks everything.
// In a child process, so that no thread (or the verifier) exists beforehand
// and none of the limits reach other tests.
TEST(NoThreadsTest, SavesAndLoadsFinishOnTheCallingThreadWhenNoThreadCanStart) {
  if (kSanitized) GTEST_SKIP() << "sanitizers need more address space than the limit leaves";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(std::exit(save_and_load_without_threads()), ::testing::ExitedWithCode(0), "");
}

// Load errors that depend on the index.

TEST_F(SnapshotIoTest, MissingFileIsNotFoundNamingThePath) {
  EXPECT_THAT(PersistedIndex<StreamMapIndex>::load(config_),
              IsError(ErrorKind::NotFound, path_.string()));
  EXPECT_THAT(read_file_header(path_), IsError(ErrorKind::NotFound, path_.string()));
  EXPECT_THAT(verify_snapshot(path_), IsError(ErrorKind::NotFound, path_.string()));
}

TEST_F(SnapshotIoTest, MissingDirectoryIsNotFoundWhetherLoadingOrSaving) {
  // One contract for both directions: a caller that branches on NotFound
  // ("nothing there yet") sees the same kind from load(), save() and
  // open_with() (which looks for an existing database first) and a save
  // when the directory itself is missing.
  config_.path = dir_.file("missing") / "idx.iqdb";
  const std::string missing = config_.path.string();
  EXPECT_THAT(PersistedIndex<StreamMapIndex>::load(config_), IsError(ErrorKind::NotFound, missing));
  const auto index = make_index<StreamMapIndex>(2, 2, DistanceMetric::Cosine);
  EXPECT_THAT(PersistedIndex<StreamMapIndex>::open_with(index, config_),
              IsError(ErrorKind::NotFound, missing));
  auto db = PersistedIndex<StreamMapIndex>::open_with(index, config_, OpenMode::Overwrite);
  ASSERT_THAT(db, IsOk());
  EXPECT_THAT(db.value().save(), IsError(ErrorKind::NotFound, missing));
  config_.wal_enabled = true;
  EXPECT_THAT(PersistedIndex<StreamMapIndex>::open_with(index, config_),
              IsError(ErrorKind::NotFound, missing));
  EXPECT_THAT(PersistedIndex<StreamMapIndex>::load(config_), IsError(ErrorKind::NotFound, missing));
  EXPECT_FALSE(std::filesystem::exists(config_.path.parent_path()));
}

TEST_F(SnapshotIoTest, DirectoryAtThePathIsIo) {
  std::filesystem::create_directory(path_);
  EXPECT_THAT(PersistedIndex<StreamMapIndex>::load(config_),
              IsError(ErrorKind::Io, {path_.string(), "not a regular file"}));
  EXPECT_THAT(
      PersistedIndex<StreamMapIndex>::open_with(StreamMapIndex(2, DistanceMetric::Cosine), config_),
      IsError(ErrorKind::Io, {path_.string(), "not a regular file"}));
  auto db = PersistedIndex<StreamMapIndex>::open_with(StreamMapIndex(2, DistanceMetric::Cosine),
                                                      config_, OpenMode::Overwrite);
  ASSERT_THAT(db, IsOk());
  EXPECT_THAT(db.value().save(), IsError(ErrorKind::Io, "rename"));
  EXPECT_THAT(dir_.entries(), ElementsAre("idx.iqdb", "idx.iqdb.lock"));
}

TEST_F(SnapshotIoTest, SaveIntoMissingDirectoryFailsCleanly) {
  config_.path = dir_.file("missing") / "idx.iqdb";
  auto db = PersistedIndex<StreamMapIndex>::open_with(StreamMapIndex(2, DistanceMetric::Cosine),
                                                      config_, OpenMode::Overwrite);
  ASSERT_THAT(db, IsOk());
  EXPECT_THAT(db.value().save(), IsError(ErrorKind::NotFound, "missing"));
  EXPECT_TRUE(dir_.entries().empty());
}

TEST_F(SnapshotIoTest, OtherIndexTypeIsInvalidIndexType) {
  save(make_index<StreamMapIndex>(2, 2, DistanceMetric::Cosine));
  EXPECT_THAT(PersistedIndex<SectionArrayIndex>::load(config_),
              IsError(ErrorKind::InvalidIndexType, {path_.string(),
                                                    "holds a 'test-stream-map' index, expected "
                                                    "'test-section-array'"}));
}

TEST_F(SnapshotIoTest, RebuiltSizeDifferentFromHeaderIsInvalidPayload) {
  auto stream = make_index<StreamMapIndex>(3, 2, DistanceMetric::Cosine);
  stream.set_reported_size_bias(1);
  save(stream);
  EXPECT_THAT(PersistedIndex<StreamMapIndex>::load(config_),
              IsError(ErrorKind::InvalidPayload,
                      {path_.string(), "header records n_vectors 4, but the rebuilt index has 3"}));

  auto sections = make_index<SectionArrayIndex>(3, 2, DistanceMetric::Cosine);
  sections.set_reported_size_bias(2);
  save(sections);
  EXPECT_THAT(PersistedIndex<SectionArrayIndex>::load(config_),
              IsError(ErrorKind::InvalidPayload, "n_vectors 5, but the rebuilt index has 3"));
}

TEST_F(SnapshotIoTest, RebuiltMetricOrDimDifferentFromHeaderIsInvalidPayload) {
  // Build a snapshot whose header claims another metric and dim than its payload.
  save(make_index<StreamMapIndex>(2, 3, DistanceMetric::Cosine));
  const SnapshotView honest = [&] {
    auto opened = detail::open_snapshot(config_, StreamMapIndex::kIndexType);
    EXPECT_THAT(opened, IsOk());
    return std::move(opened).value().view;
  }();
  EXPECT_THAT(detail::check_rebuilt(honest, {"x", 3, DistanceMetric::Cosine, 2}), IsOk());
  EXPECT_THAT(
      detail::check_rebuilt(honest, {"x", 4, DistanceMetric::Cosine, 2}),
      IsError(ErrorKind::InvalidPayload, "header records dim 3, but the rebuilt index has 4"));
  EXPECT_THAT(detail::check_rebuilt(honest, {"x", 3, DistanceMetric::Hamming, 2}),
              IsError(ErrorKind::InvalidPayload,
                      "header records metric Cosine, but the rebuilt index has Hamming"));
}

TEST_F(SnapshotIoTest, StreamPayloadWithTrailingBytesIsInvalidPayload) {
  auto index = make_index<StreamMapIndex>(2, 2, DistanceMetric::Cosine);
  index.set_trailing_bytes(3);
  save(index);
  EXPECT_THAT(
      PersistedIndex<StreamMapIndex>::load(config_),
      IsError(ErrorKind::InvalidPayload, {path_.string(), "section 'payload'", "3 unread bytes"}));
}

TEST_F(SnapshotIoTest, IndexLoadErrorNamesTheFile) {
  save(make_index<StreamMapIndex>(2, 2, DistanceMetric::Cosine));
  const SectionInfo payload = header().sections.at(0);
  flip_byte(path_, payload.offset + 4, 0x40);  // the metric tag: 0 -> 64
  config_.verify = VerifyMode::Skip;
  EXPECT_THAT(PersistedIndex<StreamMapIndex>::load(config_),
              IsError(ErrorKind::InvalidPayload, {path_.string(), "bad metric tag 64"}));
}

// Mutations through PersistedIndex.

TEST_F(SnapshotIoTest, MutationRefusalsMapToTheirKindsAndLeaveTheIndexUnchanged) {
  auto db = PersistedIndex<StreamMapIndex>::open_with(
      make_index<StreamMapIndex>(2, 3, DistanceMetric::Cosine), config_);
  ASSERT_THAT(db, IsOk());
  auto& index = db.value();
  const std::vector<float> good = {1, 2, 3};
  const std::vector<float> short_vector = {1, 2};
  EXPECT_THAT(index.insert(10, good), IsError(ErrorKind::DuplicateId, "id 10 exists"));
  EXPECT_THAT(index.insert(11, short_vector),
              IsError(ErrorKind::DimensionMismatch, "2 floats, expected 3"));
  EXPECT_THAT(index.insert(*VectorId::from_bytes("k"), good),
              IsError(ErrorKind::InvalidArgument, "byte ids"));
  EXPECT_THAT(index.remove(12345), IsError(ErrorKind::IdNotFound, "no id 12345"));
  EXPECT_EQ(index.index().size(), 2u);
  EXPECT_THAT(index.insert(11, good), IsOk());
  EXPECT_THAT(index.remove(10), IsOk());
  EXPECT_EQ(index.index().size(), 2u);
  EXPECT_EQ(index.config().path, path_);
}

TEST_F(SnapshotIoTest, CheckpointSavesAppliedMutations) {
  auto db = PersistedIndex<SectionArrayIndex>::open_with(
      make_index<SectionArrayIndex>(2, 2, DistanceMetric::Cosine), config_);
  ASSERT_THAT(db, IsOk());
  ASSERT_THAT(db.value().checkpoint(), IsOk());
  EXPECT_EQ(load<SectionArrayIndex>(config_).size(), 2u);
  const std::vector<float> v = {0.5f, 0.25f};
  ASSERT_THAT(db.value().insert(7, v), IsOk());
  ASSERT_THAT(db.value().remove(10), IsOk());
  ASSERT_THAT(db.value().checkpoint(), IsOk());
  const auto loaded = load<SectionArrayIndex>(config_);
  EXPECT_THAT(loaded.ids(), ElementsAre(20, 7));
  EXPECT_TRUE(same_content(loaded, db.value().index()));
}

TEST_F(SnapshotIoTest, MutatingALoadedIndexThenSavingRoundTrips) {
  save(make_index<SectionArrayIndex>(3, 2, DistanceMetric::Euclidean));
  auto db = PersistedIndex<SectionArrayIndex>::load(config_);
  ASSERT_THAT(db, IsOk());
  ASSERT_THAT(db.value().remove(20), IsOk());
  ASSERT_THAT(db.value().save(), IsOk());
  EXPECT_THAT(load<SectionArrayIndex>(config_).ids(), ElementsAre(10, 30));
}

// Atomic save under injected faults.

class FailedSaveTest : public SnapshotIoTest {
 protected:
  FailedSaveTest() : fs_(std::make_shared<FaultInjectionFileSystem>()) {}

  // Saves `old_index` normally, then fails every call of every operation of a
  // save of `new_index` in turn, checking after each that the old snapshot is
  // intact and no temporary file is left.
  template <class I>
  void check_every_failure_keeps_old_snapshot(const I& old_index, const I& new_index) {
    save(old_index);
    PersistConfig faulty = config_;
    faulty.file_system = fs_;
    auto db = PersistedIndex<I>::open_with(new_index, faulty, OpenMode::Overwrite);
    ASSERT_THAT(db, IsOk());

    {  // A dry run elsewhere counts the calls a save makes.
      TempDir scratch;
      PersistConfig counting = faulty;
      counting.path = scratch.file("idx.iqdb");
      fs_->reset_counts();
      ASSERT_THAT(
          PersistedIndex<I>::open_with(new_index, counting, OpenMode::Overwrite).value().save(),
          IsOk());
    }
    const std::vector<FsOp> ops = {FsOp::CreateNew, FsOp::WriteAt, FsOp::Truncate,
                                   FsOp::Sync,      FsOp::Close,   FsOp::Rename};
    std::map<FsOp, std::size_t> counts;
    for (const FsOp op : ops) counts[op] = fs_->calls(op);
    EXPECT_EQ(counts[FsOp::CreateNew], 1u);
    EXPECT_GE(counts[FsOp::WriteAt], 3u);  // payload, header, prefix
    EXPECT_EQ(counts[FsOp::Sync], 1u);
    EXPECT_EQ(counts[FsOp::Rename], 1u);

    for (const FsOp op : ops) {
      for (std::size_t n = 1; n <= counts[op]; ++n) {
        SCOPED_TRACE(std::string(to_string(op)) + " #" + std::to_string(n));
        fs_->fail_nth(op, n);
        EXPECT_THAT(db.value().save(), IsError(ErrorKind::Io, {"injected fault", ".tmp-"}));
        EXPECT_TRUE(fs_->fault_fired());
        EXPECT_THAT(dir_.entries(), ElementsAre("idx.iqdb", "idx.iqdb.lock"));
        EXPECT_TRUE(same_content(load<I>(config_), old_index));
      }
    }
    fs_->disarm();
  }

  std::shared_ptr<FaultInjectionFileSystem> fs_;
};

TEST_F(FailedSaveTest, StreamPersistenceFailureAtAnyStepKeepsTheOldSnapshot) {
  // Over 1 MiB of payload, so the stream is flushed in several writes.
  check_every_failure_keeps_old_snapshot(
      make_index<StreamMapIndex>(3, 4, DistanceMetric::Cosine),
      make_index<StreamMapIndex>(300, 1000, DistanceMetric::Cosine));
}

TEST_F(FailedSaveTest, SectionPersistenceFailureAtAnyStepKeepsTheOldSnapshot) {
  check_every_failure_keeps_old_snapshot(
      make_index<SectionArrayIndex>(3, 4, DistanceMetric::DotProduct),
      make_index<SectionArrayIndex>(50, 4, DistanceMetric::DotProduct, 9));
}

TEST_F(FailedSaveTest, FailedDirectorySyncReportsIoAfterTheNewSnapshotIsInPlace) {
  // The rename has happened when the directory sync fails: the new snapshot is
  // complete and valid, only its durability is unknown.
  save(make_index<StreamMapIndex>(3, 4, DistanceMetric::Cosine));
  const auto new_index = make_index<StreamMapIndex>(4, 4, DistanceMetric::Cosine, 2);
  config_.file_system = fs_;
  fs_->fail_nth(FsOp::SyncDir, 1);
  auto db = PersistedIndex<StreamMapIndex>::open_with(new_index, config_, OpenMode::Overwrite);
  ASSERT_THAT(db, IsOk());
  EXPECT_THAT(db.value().save(), IsError(ErrorKind::Io, {"sync_dir", "injected fault"}));
  EXPECT_THAT(dir_.entries(), ElementsAre("idx.iqdb", "idx.iqdb.lock"));
  EXPECT_TRUE(same_content(load<StreamMapIndex>(config_), new_index));
}

TEST_F(FailedSaveTest, FailedSaveNamesTheSnapshotWithTheTemporaryFileAsDetail) {
  // A user saving idx.iqdb must read idx.iqdb first, not a temporary name
  // they never gave; the temporary file still follows, for diagnosis.
  config_.file_system = fs_;
  auto db = PersistedIndex<StreamMapIndex>::open_with(
      make_index<StreamMapIndex>(2, 2, DistanceMetric::Cosine), config_);
  ASSERT_THAT(db, IsOk());
  for (const FsOp op : {FsOp::CreateNew, FsOp::WriteAt, FsOp::Rename}) {
    SCOPED_TRACE(to_string(op));
    fs_->fail_nth(op, 1);
    const auto saved = db.value().save();
    ASSERT_THAT(saved, IsError(ErrorKind::Io, {"injected fault", ".tmp-"}));
    EXPECT_THAT(
        saved.error().message(),
        ::testing::StartsWith(path_.string() + ": save failed: " + path_.string() + ".tmp-"));
  }
}

TEST_F(FailedSaveTest, FsyncPolicyDecidesWhatIsSynced) {
  config_.file_system = fs_;
  const auto saves_with = [&](FsyncPolicy policy) {
    config_.fsync_policy = policy;
    fs_->reset_counts();
    save(make_index<StreamMapIndex>(2, 2, DistanceMetric::Cosine));
    return std::make_pair(fs_->calls(FsOp::Sync), fs_->calls(FsOp::SyncDir));
  };
  EXPECT_EQ(saves_with(FsyncPolicy::always()), std::make_pair(std::size_t{1}, std::size_t{1}));
  EXPECT_EQ(saves_with(FsyncPolicy::periodic(std::chrono::milliseconds(10))),
            std::make_pair(std::size_t{1}, std::size_t{1}));
  EXPECT_EQ(saves_with(FsyncPolicy::never()), std::make_pair(std::size_t{0}, std::size_t{0}));
}

TEST_F(FailedSaveTest, SaveGoesThroughTheConfiguredFileSystemOnly) {
  config_.file_system = fs_;
  save(make_index<StreamMapIndex>(2, 2, DistanceMetric::Cosine));
  EXPECT_EQ(fs_->calls(FsOp::CreateNew), 1u);
  EXPECT_EQ(fs_->calls(FsOp::Close), 1u);
  EXPECT_EQ(fs_->calls(FsOp::Truncate), 1u);
  EXPECT_EQ(fs_->calls(FsOp::ListDir), 2u);  // a write-ahead log? stale temp files?
  EXPECT_EQ(fs_->calls(FsOp::Remove), 0u);
  fs_->reset_counts();
  (void)load<StreamMapIndex>(config_);
  EXPECT_EQ(fs_->calls(FsOp::OpenReadable), 1u);
  fs_->fail_nth(FsOp::OpenReadable, 1);
  EXPECT_THAT(PersistedIndex<StreamMapIndex>::load(config_),
              IsError(ErrorKind::Io, {"open_readable", "injected fault"}));
}

// Stale temporary files of killed saves.

pid_t dead_pid() {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  int status = 0;
  ::waitpid(child, &status, 0);
  return child;
}

class StaleTempFileTest : public SnapshotIoTest {
 protected:
  void touch(const std::string& name) {
    const std::byte junk[] = {std::byte{1}, std::byte{2}};
    write_file(dir_.file(name), junk);
  }
};

TEST_F(StaleTempFileTest, NextSaveRemovesTempFilesOfDeadProcessesOnly) {
  const std::string dead = std::to_string(dead_pid());
  const std::string live = std::to_string(::getpid());
  touch("idx.iqdb.tmp-" + dead + "-0-1f");
  touch("idx.iqdb.tmp-" + dead + "-17-abc");
  touch("idx.iqdb.tmp-" + live + "-0-1f");
  touch("other.iqdb.tmp-" + dead + "-0-1f");  // another snapshot's
  touch("idx.iqdb.tmp-" + dead);              // not the temp-file pattern
  touch("idx.iqdb.tmp-x-0-1f");
  save(make_index<StreamMapIndex>(2, 2, DistanceMetric::Cosine));
  EXPECT_THAT(dir_.entries(),
              UnorderedElementsAre("idx.iqdb", "idx.iqdb.lock", "idx.iqdb.tmp-" + dead,
                                   "idx.iqdb.tmp-" + live + "-0-1f", "idx.iqdb.tmp-x-0-1f",
                                   "other.iqdb.tmp-" + dead + "-0-1f"));
}

TEST_F(StaleTempFileTest, FailingCleanupDoesNotFailTheSave) {
  const std::string stale = "idx.iqdb.tmp-" + std::to_string(dead_pid()) + "-0-1f";
  touch(stale);
  auto fs = std::make_shared<FaultInjectionFileSystem>();
  config_.file_system = fs;
  fs->fail_nth(FsOp::Remove, 1);
  save(make_index<StreamMapIndex>(2, 2, DistanceMetric::Cosine));
  EXPECT_TRUE(fs->fault_fired());
  EXPECT_THAT(dir_.entries(), UnorderedElementsAre("idx.iqdb", "idx.iqdb.lock", stale));
  fs->fail_nth(FsOp::ListDir, 2);  // the first looks for a write-ahead log; the second, stale files
  save(make_index<StreamMapIndex>(2, 2, DistanceMetric::Cosine));
  EXPECT_TRUE(fs->fault_fired());
  EXPECT_THAT(dir_.entries(), UnorderedElementsAre("idx.iqdb", "idx.iqdb.lock", stale));
  save(make_index<StreamMapIndex>(2, 2, DistanceMetric::Cosine));
  EXPECT_THAT(dir_.entries(), ElementsAre("idx.iqdb", "idx.iqdb.lock"));
}

}  // namespace
}  // namespace iqdb::persist::test
