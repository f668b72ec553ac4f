#include "iqdb/persist/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include <chrono>

#include "iqdb/persist/persisted_index.h"
#include "support/mock_indexes.h"
#include "support/test_util.h"

namespace iqdb::persist::test {
namespace {

using std::chrono::milliseconds;

class PersistConfigTest : public ::testing::Test {
 protected:
  TempDir dir_;
  PersistConfig config_{dir_.file("x.iqdb")};
};

TEST_F(PersistConfigTest, DefaultsAreValid) {
  EXPECT_THAT(config_.validate(), IsOk());
  EXPECT_EQ(config_.fsync_policy, FsyncPolicy::always());
  EXPECT_EQ(config_.compression, Compression::none());
  EXPECT_EQ(config_.verify, VerifyMode::Eager);
  EXPECT_EQ(config_.section_alignment, 4096u);
}

TEST_F(PersistConfigTest, EmptyPathIsInvalidConfig) {
  EXPECT_THAT(PersistConfig().validate(), IsError(ErrorKind::InvalidConfig, "path is empty"));
}

TEST_F(PersistConfigTest, DirectoryPathIsInvalidConfig) {
  PersistConfig config(dir_.path() / "");
  EXPECT_THAT(config.validate(), IsError(ErrorKind::InvalidConfig, "names a directory"));
}

TEST_F(PersistConfigTest, BadAlignmentsAreInvalidConfig) {
  for (const std::uint64_t alignment :
       {std::uint64_t{0}, std::uint64_t{1000}, std::uint64_t{2048}, std::uint64_t{4097},
        std::uint64_t{1} << 31, std::uint64_t{3} << 20}) {
    config_.section_alignment = alignment;
    EXPECT_THAT(config_.validate(),
                IsError(ErrorKind::InvalidConfig,
                        {"section_alignment " + std::to_string(alignment), config_.path.string()}));
  }
}

TEST_F(PersistConfigTest, PowerOfTwoAlignmentsFrom4KiBTo1GiBAreValid) {
  for (std::uint64_t alignment = 4096; alignment <= (std::uint64_t{1} << 30); alignment *= 2) {
    config_.section_alignment = alignment;
    EXPECT_THAT(config_.validate(), IsOk()) << alignment;
  }
}

TEST_F(PersistConfigTest, NonPositivePeriodicIntervalIsInvalidConfig) {
  config_.fsync_policy = FsyncPolicy::periodic(milliseconds(0));
  EXPECT_THAT(config_.validate(), IsError(ErrorKind::InvalidConfig, "interval must be positive"));
  config_.fsync_policy = FsyncPolicy::periodic(milliseconds(-5));
  EXPECT_THAT(config_.validate(), IsError(ErrorKind::InvalidConfig, "got -5 ms"));
  config_.fsync_policy = FsyncPolicy::periodic(milliseconds(100));
  EXPECT_THAT(config_.validate(), IsOk());
  EXPECT_EQ(config_.fsync_policy.interval(), milliseconds(100));
}

TEST_F(PersistConfigTest, FsyncPolicySyncsSnapshotsUnlessNever) {
  EXPECT_TRUE(FsyncPolicy::always().syncs_snapshots());
  EXPECT_TRUE(FsyncPolicy::periodic(milliseconds(5)).syncs_snapshots());
  EXPECT_FALSE(FsyncPolicy::never().syncs_snapshots());
}

// The names reports and the CLI print (`iqdb-persist wal` lists every mode).
TEST_F(PersistConfigTest, RecoveryModesAreNamedAsInTheApi) {
  EXPECT_EQ(to_string(WalRecoveryMode::TolerateCorruptedTail), "TolerateCorruptedTail");
  EXPECT_EQ(to_string(WalRecoveryMode::AbsoluteConsistency), "AbsoluteConsistency");
  EXPECT_EQ(to_string(WalRecoveryMode::PointInTime), "PointInTime");
  EXPECT_EQ(to_string(WalRecoveryMode::SkipCorruptedRecords), "SkipCorruptedRecords");
  EXPECT_EQ(to_string(static_cast<WalRecoveryMode>(99)), "Unknown");
}

TEST_F(PersistConfigTest, LoadOptionsAreNamedAsInTheApi) {
  EXPECT_EQ(to_string(VerifyMode::Eager), "Eager");
  EXPECT_EQ(to_string(VerifyMode::Background), "Background");
  EXPECT_EQ(to_string(VerifyMode::Skip), "Skip");
  EXPECT_EQ(to_string(WarmUp::Lazy), "Lazy");
  EXPECT_EQ(to_string(WarmUp::WillNeed), "WillNeed");
  EXPECT_EQ(to_string(WarmUp::Populate), "Populate");
  EXPECT_EQ(to_string(WarmUp::Prefetch), "Prefetch");
  EXPECT_EQ(to_string(WarmUp::Lock), "Lock");
  EXPECT_EQ(to_string(static_cast<VerifyMode>(99)), "Unknown");
  EXPECT_EQ(to_string(static_cast<WarmUp>(99)), "Unknown");
}

TEST_F(PersistConfigTest, WalIsAValidChoice) {
  config_.wal_enabled = true;
  EXPECT_THAT(config_.validate(), IsOk());
}

TEST_F(PersistConfigTest, CompressionNeedsItsCodecInTheBuild) {
  const struct {
    Compression compression;
    const char* option;
  } cases[] = {{Compression::zstd(5), "IQDB_PERSIST_WITH_ZSTD"},
               {Compression::lz4(), "IQDB_PERSIST_WITH_LZ4"}};
  for (const auto& [compression, option] : cases) {
    config_.compression = compression;
    if (compression.available()) {
      EXPECT_THAT(config_.validate(), IsOk());
    } else {
      EXPECT_THAT(config_.validate(), IsError(ErrorKind::Unsupported, option));
    }
  }
  EXPECT_EQ(Compression::zstd(5).level(), 5);
  EXPECT_TRUE(Compression::none().available());
}

TEST_F(PersistConfigTest, BadCompressionSettingsAreInvalidConfig) {
  if (Compression::zstd().available()) {
    config_.compression = Compression::zstd(1000);
    EXPECT_THAT(config_.validate(), IsError(ErrorKind::InvalidConfig, "zstd level 1000"));
  }
  config_.compression = Compression::none();
  for (const double ratio : {0.0, -1.0, 1.5, std::nan("")}) {
    config_.compression_max_ratio = ratio;
    EXPECT_THAT(config_.validate(), IsError(ErrorKind::InvalidConfig, "compression_max_ratio"));
  }
  config_.compression_max_ratio = 1.0;
  EXPECT_THAT(config_.validate(), IsOk());
  config_.compressed_sections = {"vectors", ""};
  EXPECT_THAT(config_.validate(), IsError(ErrorKind::InvalidConfig, "compressed_sections"));
}

TEST_F(PersistConfigTest, OpenWithAndLoadRejectInvalidConfigBeforeTouchingDisk) {
  using Db = PersistedIndex<StreamMapIndex>;
  PersistConfig config = config_;
  config.wal_enabled = true;
  config.section_alignment = 1000;
  EXPECT_THAT(Db::open_with(StreamMapIndex(2, DistanceMetric::Cosine), config),
              IsError(ErrorKind::InvalidConfig, "section_alignment"));
  EXPECT_THAT(Db::load(config), IsError(ErrorKind::InvalidConfig, "section_alignment"));
  config = config_;
  config.compression_max_ratio = 0;
  EXPECT_THAT(Db::load(config), IsError(ErrorKind::InvalidConfig, "compression_max_ratio"));
  config = PersistConfig();
  EXPECT_THAT(Db::load(config), IsError(ErrorKind::InvalidConfig, "path is empty"));
  EXPECT_TRUE(dir_.entries().empty());
}

}  // namespace
}  // namespace iqdb::persist::test
