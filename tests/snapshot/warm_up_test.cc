// Warm-up on load: every mode loads the same index; Populate, Lock and
// Prefetch leave the section's pages resident (mincore); per-section overrides
// apply by name; a refused mlock is an error naming RLIMIT_MEMLOCK.
#include "snapshot/warm_up.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <thread>

#include "iqdb/persist.h"
#include "support/mock_indexes.h"
#include "support/test_util.h"

namespace iqdb::persist::test {
namespace {

using Db = PersistedIndex<SectionArrayIndex>;

// The fraction of the pages under `bytes` that are resident.
double resident_fraction(std::span<const float> values) {
  const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto begin = reinterpret_cast<std::uintptr_t>(values.data()) / page * page;
  const auto end = reinterpret_cast<std::uintptr_t>(values.data() + values.size());
  const std::size_t pages = (end - begin + page - 1) / page;
  std::vector<unsigned char> resident(pages);
  if (::mincore(reinterpret_cast<void*>(begin), pages * page, resident.data()) != 0) return -1;
  std::size_t count = 0;
  for (const unsigned char flag : resident) count += flag & 1;
  return static_cast<double>(count) / static_cast<double>(pages);
}

// While it lives, the calling thread lacks CAP_IPC_LOCK in its effective
// capabilities, so that mlock() obeys RLIMIT_MEMLOCK even for root.
// Capabilities are per thread, and the permitted set keeps it: the destructor
// raises it again.
class WithoutIpcLockCapability {
 public:
  WithoutIpcLockCapability() {
    if (::syscall(SYS_capget, &header_, saved_) != 0) return;
    __user_cap_data_struct reduced[2] = {saved_[0], saved_[1]};
    reduced[CAP_TO_INDEX(CAP_IPC_LOCK)].effective &= ~CAP_TO_MASK(CAP_IPC_LOCK);
    dropped_ = ::syscall(SYS_capset, &header_, reduced) == 0;
  }
  ~WithoutIpcLockCapability() {
    if (dropped_) ::syscall(SYS_capset, &header_, saved_);
  }
  WithoutIpcLockCapability(const WithoutIpcLockCapability&) = delete;
  WithoutIpcLockCapability& operator=(const WithoutIpcLockCapability&) = delete;

 private:
  __user_cap_header_struct header_{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct saved_[2]{};
  bool dropped_ = false;
};

class WarmUpTest : public ::testing::Test {
 protected:
  WarmUpTest() : config_(dir_.file("db.iqdb")) {
    index_ = SectionArrayIndex(64, DistanceMetric::Cosine, make_vectors(16'000, 64));  // 4 MB
    auto db = Db::open_with(index_, config_);
    EXPECT_THAT(db, IsOk());
    EXPECT_THAT(db.value().save(), IsOk());
  }

  Result<Db> load(WarmUp mode) {
    PersistConfig config = config_;
    config.warm_up = mode;
    return Db::load(config);
  }

  TempDir dir_;
  PersistConfig config_;
  SectionArrayIndex index_{64, DistanceMetric::Cosine};
};

TEST_F(WarmUpTest, EveryModeLoadsTheSameIndex) {
  for (const WarmUp mode :
       {WarmUp::Lazy, WarmUp::WillNeed, WarmUp::Populate, WarmUp::Prefetch, WarmUp::Lock}) {
    auto db = load(mode);
    if (!db && mode == WarmUp::Lock) {  // an unprivileged process under a small limit
      EXPECT_THAT(db, IsError(ErrorKind::Io, "RLIMIT_MEMLOCK"));
      continue;
    }
    ASSERT_THAT(db, IsOk()) << static_cast<int>(mode);
    EXPECT_TRUE(same_content(db.value().index(), index_));
  }
}

TEST_F(WarmUpTest, PopulateReturnsWithEveryPageResident) {
  auto db = load(WarmUp::Populate);
  ASSERT_THAT(db, IsOk());
  EXPECT_EQ(resident_fraction(db.value().index().vectors()), 1.0);
}

TEST_F(WarmUpTest, PrefetchMakesThePagesResidentAfterLoadReturns) {
  auto db = load(WarmUp::Prefetch);
  ASSERT_THAT(db, IsOk());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (resident_fraction(db.value().index().vectors()) < 1.0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(resident_fraction(db.value().index().vectors()), 1.0);
}

TEST_F(WarmUpTest, PerSectionOverridesApplyByName) {
  config_.section_warm_up = {{"vectors", WarmUp::Populate}, {"no-such-section", WarmUp::Lock}};
  auto db = load(WarmUp::Lazy);
  ASSERT_THAT(db, IsOk());
  EXPECT_EQ(resident_fraction(db.value().index().vectors()), 1.0);
  config_.section_warm_up = {{"", WarmUp::Populate}};
  EXPECT_THAT(load(WarmUp::Lazy), IsError(ErrorKind::InvalidConfig, "section_warm_up"));
}

TEST_F(WarmUpTest, RefusedLockFailsTheLoadNamingTheLimit) {
  if (kSanitized) GTEST_SKIP() << "the sanitizers' interceptors make mlock() a no-op";
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_MEMLOCK, &saved), 0);
  rlimit small = saved;
  small.rlim_cur = 1 << 20;  // room for the 128 KB of ids, far below the 4 MB of vectors
  ASSERT_EQ(::setrlimit(RLIMIT_MEMLOCK, &small), 0);
  std::optional<Result<Db>> loaded;
  {
    const WithoutIpcLockCapability unprivileged;
    loaded = load(WarmUp::Lock);
  }
  ::setrlimit(RLIMIT_MEMLOCK, &saved);
  const Result<Db>& db = *loaded;
  if (db) {
    ASSERT_EQ(::geteuid(), 0u) << "mlock beyond RLIMIT_MEMLOCK needs CAP_IPC_LOCK";
    GTEST_SKIP() << "privileged: mlock ignores RLIMIT_MEMLOCK";
  }
  EXPECT_THAT(
      db, IsError(ErrorKind::Io, {config_.path.string(), "section 'vectors'", "RLIMIT_MEMLOCK"}));
}

TEST_F(WarmUpTest, HugePageAdviceOnAlignedAndDecodedSections) {
  index_.set_vectors_alignment(2 << 20);
  config_.huge_pages = true;
  if (Compression::lz4().available()) config_.compression = Compression::lz4();
  auto db = Db::open_with(index_, config_, OpenMode::Overwrite);
  ASSERT_THAT(db, IsOk());
  ASSERT_THAT(db.value().save(), IsOk());
  auto loaded = load(WarmUp::Populate);
  ASSERT_THAT(loaded, IsOk());
  EXPECT_TRUE(same_content(loaded.value().index(), index_));
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(loaded.value().index().vectors().data()) % (2 << 20),
            0u);
}

}  // namespace
}  // namespace iqdb::persist::test
