// CrashFileSystem, the model itself: what survives a power loss or a process
// crash, and how crash_after() stops a workload at a chosen call.
#include "support/crash_file_system.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstddef>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "support/test_util.h"

namespace iqdb::persist::test {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

std::vector<std::byte> bytes_of(std::string_view text) {
  std::vector<std::byte> bytes(text.size());
  std::transform(text.begin(), text.end(), bytes.begin(),
                 [](char c) { return static_cast<std::byte>(c); });
  return bytes;
}

class CrashFileSystemTest : public ::testing::Test {
 protected:
  CrashFileSystemTest() { fs_.create_dir("/db"); }

  // The whole file as its reader sees it now, or the open error.
  Result<std::string> contents(const std::filesystem::path& path) { return contents(path, fs_); }
  // "/db/a" on `fs`, its entry synced and `synced` written and synced into it.
  static std::unique_ptr<WritableFile> file_with_synced_prefix(CrashFileSystem& fs,
                                                               const std::string& synced) {
    fs.create_dir("/db");
    auto file = fs.create_new("/db/a").value();
    EXPECT_THAT(fs.sync_dir("/db"), IsOk());
    EXPECT_THAT(file->write_at(0, bytes_of(synced)), IsOk());
    EXPECT_THAT(file->sync(), IsOk());
    return file;
  }
  static Result<std::string> contents(const std::filesystem::path& path, CrashFileSystem& fs) {
    IQDB_TRY_ASSIGN(auto file, fs.open_readable(path));
    std::vector<std::byte> bytes(file->size());
    IQDB_TRY(file->read_at(0, bytes));
    return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }

  std::unique_ptr<WritableFile> create(const std::filesystem::path& path) {
    auto file = fs_.create_new(path);
    EXPECT_THAT(file, IsOk());
    return file ? std::move(file).value() : nullptr;
  }

  // Creates `path` holding `text`, synced, with its entry synced.
  void create_durable(const std::filesystem::path& path, std::string_view text) {
    auto file = create(path);
    ASSERT_NE(file, nullptr);
    ASSERT_THAT(file->write_at(0, bytes_of(text)), IsOk());
    ASSERT_THAT(file->sync(), IsOk());
    ASSERT_THAT(file->close(), IsOk());
    ASSERT_THAT(fs_.sync_dir("/db"), IsOk());
  }

  CrashFileSystem fs_{42};
};

TEST_F(CrashFileSystemTest, ReadsSeeUnsyncedWritesBeforeAnyCrash) {
  auto file = create("/db/a");
  ASSERT_THAT(file->write_at(0, bytes_of("hello")), IsOk());
  ASSERT_THAT(file->write_at(3, bytes_of("p!")), IsOk());
  EXPECT_EQ(contents("/db/a").value(), "help!");
  ASSERT_THAT(file->truncate(7), IsOk());
  EXPECT_EQ(contents("/db/a").value(), std::string("help!\0\0", 7));
  EXPECT_THAT(fs_.list_dir("/db").value(), ElementsAre("a"));
}

TEST_F(CrashFileSystemTest, PowerLossDropsDataWrittenAfterTheLastSync) {
  create_durable("/db/a", "durable");
  auto file = create("/db/b");
  ASSERT_THAT(fs_.sync_dir("/db"), IsOk());  // b's entry is durable, its data never synced
  ASSERT_THAT(file->write_at(0, bytes_of("lost")), IsOk());

  fs_.simulate_power_loss();

  EXPECT_EQ(contents("/db/a").value(), "durable");
  EXPECT_EQ(contents("/db/b").value(), "");
}

TEST_F(CrashFileSystemTest, PowerLossKeepsSyncedPrefixAndDropsLaterWrites) {
  auto file = create("/db/a");
  ASSERT_THAT(fs_.sync_dir("/db"), IsOk());
  ASSERT_THAT(file->write_at(0, bytes_of("abc")), IsOk());
  ASSERT_THAT(file->sync(), IsOk());
  ASSERT_THAT(file->write_at(1, bytes_of("XYZ")), IsOk());

  fs_.simulate_power_loss();

  EXPECT_EQ(contents("/db/a").value(), "abc");
}

TEST_F(CrashFileSystemTest, PowerLossLosesSyncedFileWhoseEntryWasNotSynced) {
  auto file = create("/db/new");
  ASSERT_THAT(file->write_at(0, bytes_of("synced data")), IsOk());
  ASSERT_THAT(file->sync(), IsOk());
  ASSERT_THAT(file->close(), IsOk());

  fs_.simulate_power_loss();

  EXPECT_THAT(fs_.open_readable("/db/new"), IsError(ErrorKind::NotFound, "/db/new"));
  EXPECT_THAT(fs_.list_dir("/db").value(), IsEmpty());
}

TEST_F(CrashFileSystemTest, RenameIsUndoneByPowerLossUntilTheDirectoryIsSynced) {
  create_durable("/db/target", "old");
  create_durable("/db/temp", "new");
  ASSERT_THAT(fs_.rename("/db/temp", "/db/target"), IsOk());
  EXPECT_EQ(contents("/db/target").value(), "new");

  fs_.simulate_power_loss();
  EXPECT_EQ(contents("/db/target").value(), "old");
  EXPECT_EQ(contents("/db/temp").value(), "new");

  ASSERT_THAT(fs_.rename("/db/temp", "/db/target"), IsOk());
  ASSERT_THAT(fs_.sync_dir("/db"), IsOk());
  fs_.simulate_power_loss();
  EXPECT_EQ(contents("/db/target").value(), "new");
  EXPECT_THAT(fs_.list_dir("/db").value(), ElementsAre("target"));
}

TEST_F(CrashFileSystemTest, RemoveIsUndoneByPowerLossUntilTheDirectoryIsSynced) {
  create_durable("/db/a", "kept");
  ASSERT_THAT(fs_.remove("/db/a"), IsOk());
  EXPECT_THAT(fs_.open_readable("/db/a"), IsError(ErrorKind::NotFound));
  fs_.simulate_power_loss();
  EXPECT_EQ(contents("/db/a").value(), "kept");
}

TEST_F(CrashFileSystemTest, KeptEntriesNameFilesWithOnlyTheirSyncedData) {
  create_durable("/db/target", "old");
  auto file = create("/db/temp");
  ASSERT_THAT(file->write_at(0, bytes_of("never synced")), IsOk());
  ASSERT_THAT(file->close(), IsOk());
  ASSERT_THAT(fs_.rename("/db/temp", "/db/target"), IsOk());

  fs_.simulate_power_loss({.entries = PowerLoss::UnsyncedEntries::Keep});

  EXPECT_EQ(contents("/db/target").value(), "");  // the "zero-length file" after rename
  EXPECT_THAT(fs_.list_dir("/db").value(), ElementsAre("target"));
}

TEST_F(CrashFileSystemTest, TornPowerLossKeepsAPrefixOfTheUnsyncedWrites) {
  const std::string text = "0123456789abcdefghijklmnopqrstuvwxyz";
  bool saw_partial = false;
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    CrashFileSystem fs(seed);
    auto file = file_with_synced_prefix(fs, "SYNCED");
    ASSERT_THAT(file->write_at(6, bytes_of(text.substr(0, 18))), IsOk());
    ASSERT_THAT(file->write_at(24, bytes_of(text.substr(18))), IsOk());

    fs.simulate_power_loss({.data = PowerLoss::UnsyncedData::TornPrefix});

    auto reader = fs.open_readable("/db/a").value();
    std::vector<std::byte> got(reader->size());
    ASSERT_THAT(reader->read_at(0, got), IsOk());
    const std::string survived(reinterpret_cast<const char*>(got.data()), got.size());
    const std::string full = "SYNCED" + text;
    ASSERT_TRUE(full.starts_with(survived)) << "seed " << seed << ": " << survived;
    ASSERT_GE(survived.size(), 6u) << "seed " << seed;
    if (survived.size() > 6 && survived.size() < full.size()) saw_partial = true;
  }
  EXPECT_TRUE(saw_partial);
}

TEST_F(CrashFileSystemTest, AnySubsetPowerLossKeepsAnySubsetOfTheUnsyncedWrites) {
  // Three unsynced writes at distinct offsets after a synced prefix: every
  // subset may survive (a later write without an earlier one included), each
  // write whole or not at all, and the synced bytes always.
  const std::string pieces[] = {"aaaa", "bbbb", "cccc"};
  std::set<std::string> seen;
  for (std::uint64_t seed = 1; seed <= 64; ++seed) {
    CrashFileSystem fs(seed);
    auto file = file_with_synced_prefix(fs, "SYNCED");
    for (std::size_t i = 0; i < 3; ++i) {
      ASSERT_THAT(file->write_at(6 + 4 * i, bytes_of(pieces[i])), IsOk());
    }

    fs.simulate_power_loss({.data = PowerLoss::UnsyncedData::AnySubset});

    const std::string survived = contents("/db/a", fs).value();
    ASSERT_GE(survived.size(), 6u) << "seed " << seed;
    ASSERT_EQ(survived.substr(0, 6), "SYNCED") << "seed " << seed;
    // Which writes survived: each 4-byte slot holds its write or zeros, and
    // the file ends with the last surviving write.
    std::string mask;
    for (std::size_t i = 0; i < 3; ++i) {
      const std::string slot = survived.size() > 6 + 4 * i ? survived.substr(6 + 4 * i, 4) : "";
      if (slot == pieces[i]) {
        mask += '1';
      } else {
        ASSERT_TRUE(slot.empty() || slot == std::string(4, '\0'))
            << "seed " << seed << ": write " << i << " partly survived: " << survived;
        mask += '0';
      }
    }
    ASSERT_EQ(survived.size(), 6 + 4 * (mask.find_last_of('1') + 1)) << "seed " << seed;
    seen.insert(mask);
  }
  EXPECT_TRUE(seen.contains("010") || seen.contains("001") || seen.contains("011") ||
              seen.contains("101"))
      << "no later write survived an earlier lost one";
  EXPECT_EQ(seen.size(), 8u) << "every subset shows up across 64 seeds";
}

TEST_F(CrashFileSystemTest, AnySubsetPowerLossTreatsPagesOfOneWriteAndTruncatesSeparately) {
  // A write spanning a page boundary may keep either page alone; a truncate
  // may be lost while a later write survives.
  bool saw_second_page_only = false;
  bool saw_first_page_only = false;
  bool saw_lost_truncate = false;
  for (std::uint64_t seed = 1; seed <= 64; ++seed) {
    CrashFileSystem fs(seed);
    auto file = file_with_synced_prefix(fs, std::string(100, 'd'));
    ASSERT_THAT(file->truncate(50), IsOk());
    // 200 bytes from offset 4000: 96 in page 0, 104 in page 1.
    ASSERT_THAT(file->write_at(4000, bytes_of(std::string(200, 'w'))), IsOk());

    fs.simulate_power_loss({.data = PowerLoss::UnsyncedData::AnySubset});

    const std::string survived = contents("/db/a", fs).value();
    const bool first = survived.size() > 4000 && survived[4000] == 'w';
    const bool second = survived.size() == 4200 && survived[4096] == 'w';
    if (survived.size() == 4200) {
      ASSERT_EQ(survived.substr(4000, 96), first ? std::string(96, 'w') : std::string(96, '\0'));
      ASSERT_EQ(survived.substr(4096, 104),
                second ? std::string(104, 'w') : std::string(104, '\0'));
    } else if (survived.size() == 4096) {
      ASSERT_TRUE(first) << "seed " << seed;
    } else {
      ASSERT_FALSE(first || second) << "seed " << seed;
    }
    // Bytes [50, 100) are 'd' while the truncate is lost, zeros (or gone) once it survives.
    const bool truncated = survived.size() == 50 || (survived.size() > 100 && survived[50] == '\0');
    if (!truncated) {
      ASSERT_EQ(survived.substr(0, 100), std::string(100, 'd')) << "seed " << seed;
    }
    if (second && !first) saw_second_page_only = true;
    if (first && !second) saw_first_page_only = true;
    if (!truncated && (first || second)) saw_lost_truncate = true;
  }
  EXPECT_TRUE(saw_second_page_only);
  EXPECT_TRUE(saw_first_page_only);
  EXPECT_TRUE(saw_lost_truncate);
}

TEST_F(CrashFileSystemTest, CrashAfterStopsTheNthMutatingCallAndEveryLaterCall) {
  const std::uint64_t before = fs_.call_count();
  fs_.crash_after(3);
  auto file = create("/db/a");                              // call 1
  ASSERT_THAT(file->write_at(0, bytes_of("one")), IsOk());  // call 2
  EXPECT_FALSE(fs_.is_down());
  EXPECT_THAT(file->write_at(3, bytes_of("two")),  // call 3: not made
              IsError(ErrorKind::Io, {"/db/a", "crashed at this call (#"}));
  EXPECT_TRUE(fs_.is_down());
  EXPECT_THAT(file->sync(), IsError(ErrorKind::Io, "machine is down"));
  EXPECT_THAT(fs_.sync_dir("/db"), IsError(ErrorKind::Io, "machine is down"));
  EXPECT_THAT(fs_.list_dir("/db"), IsError(ErrorKind::Io, "machine is down"));
  EXPECT_THAT(fs_.open_readable("/db/a"), IsError(ErrorKind::Io, "machine is down"));
  EXPECT_EQ(fs_.call_count() - before, 5u);

  fs_.simulate_process_crash();
  EXPECT_FALSE(fs_.is_down());
  EXPECT_EQ(contents("/db/a").value(), "one");
}

TEST_F(CrashFileSystemTest, CrashAfterWithTornWriteWritesAProperPrefix) {
  auto file = create("/db/a");
  fs_.crash_after(1, CrashingCall::TornWrite);
  EXPECT_THAT(file->write_at(0, bytes_of("0123456789")), IsError(ErrorKind::Io, "crashed"));
  fs_.simulate_process_crash();
  const std::string survived = contents("/db/a").value();
  EXPECT_GE(survived.size(), 1u);
  EXPECT_LT(survived.size(), 10u);
  EXPECT_TRUE(std::string("0123456789").starts_with(survived)) << survived;
}

TEST_F(CrashFileSystemTest, ProcessCrashKeepsEverythingVisibleButKillsOpenHandles) {
  auto file = create("/db/a");
  ASSERT_THAT(file->write_at(0, bytes_of("unsynced")), IsOk());
  ASSERT_THAT(fs_.rename("/db/a", "/db/b"), IsOk());
  auto reader = fs_.open_readable("/db/b").value();

  fs_.simulate_process_crash();

  EXPECT_EQ(contents("/db/b").value(), "unsynced");
  EXPECT_THAT(fs_.list_dir("/db").value(), ElementsAre("b"));
  EXPECT_THAT(file->write_at(0, bytes_of("x")), IsError(ErrorKind::Io, "died in a crash"));
  EXPECT_THAT(file->close(), IsError(ErrorKind::Io, "died in a crash"));
  std::byte one{};
  EXPECT_THAT(reader->read_at(0, std::span(&one, 1)), IsError(ErrorKind::Io, "died in a crash"));

  // The page cache is still unsynced: a later power loss takes it.
  fs_.simulate_power_loss();
  EXPECT_THAT(fs_.open_readable("/db/b"), IsError(ErrorKind::NotFound));
}

TEST_F(CrashFileSystemTest, PowerLossKillsOpenWritableHandles) {
  auto file = create("/db/a");
  fs_.simulate_power_loss();
  EXPECT_THAT(file->sync(), IsError(ErrorKind::Io, "died in a crash"));
}

TEST_F(CrashFileSystemTest, MappingKeepsTheBytesOfTheTimeOfTheCall) {
  create_durable("/db/a", "first");
  auto reader = fs_.open_readable("/db/a").value();
  auto mapping = reader->map().value();
  create_durable("/db/b", "second");
  ASSERT_THAT(fs_.rename("/db/b", "/db/a"), IsOk());
  fs_.simulate_power_loss();
  const auto bytes = mapping->bytes();
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()), "first");
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(bytes.data()) % 4096, 0u);
}

TEST_F(CrashFileSystemTest, FollowsTheFileSystemErrorContract) {
  EXPECT_THAT(fs_.open_readable("/db/missing"), IsError(ErrorKind::NotFound, "/db/missing"));
  EXPECT_THAT(fs_.open_readable("/nodir/x"), IsError(ErrorKind::NotFound, "/nodir/x"));
  create_durable("/db/a", "abc");
  EXPECT_THAT(fs_.create_new("/db/a"), IsError(ErrorKind::Io, {"/db/a", "exists"}));
  EXPECT_THAT(fs_.create_new("/nodir/x"), IsError(ErrorKind::NotFound, "no such directory"));
  EXPECT_THAT(fs_.list_dir("/nodir"), IsError(ErrorKind::NotFound, "no such directory"));
  EXPECT_THAT(fs_.rename("/db/missing", "/db/b"), IsError(ErrorKind::Io, "/db/missing"));
  EXPECT_THAT(fs_.remove("/db/missing"), IsError(ErrorKind::Io, "/db/missing"));
  EXPECT_THAT(fs_.sync_dir("/nodir"), IsError(ErrorKind::Io, "/nodir"));
  auto reader = fs_.open_readable("/db/a").value();
  std::vector<std::byte> four(4);
  EXPECT_THAT(reader->read_at(0, four), IsError(ErrorKind::Io, "past the end"));
  auto file = create("/db/b");
  ASSERT_THAT(file->close(), IsOk());
  EXPECT_THAT(file->write_at(0, four), IsError(ErrorKind::Io, "closed"));
}

TEST_F(CrashFileSystemTest, ConcurrentWritersToDistinctFilesAllLand) {
  constexpr int kThreads = 4;
  constexpr int kWrites = 200;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, t] {
      auto file = fs_.create_new("/db/f" + std::to_string(t)).value();
      for (int i = 0; i < kWrites; ++i) {
        const auto byte = static_cast<std::byte>(t);
        (void)file->write_at(static_cast<std::uint64_t>(i), std::span(&byte, 1));
        if (i % 50 == 0) (void)fs_.sync_dir("/db");
      }
      (void)file->sync();
    });
  }
  for (auto& thread : threads) thread.join();
  ASSERT_THAT(fs_.sync_dir("/db"), IsOk());
  fs_.simulate_power_loss();
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(contents("/db/f" + std::to_string(t)).value(),
              std::string(kWrites, static_cast<char>(t)));
  }
  // Per thread: create, the writes, a sync_dir every 50 writes, sync; then one sync_dir.
  EXPECT_EQ(fs_.call_count(), std::uint64_t{kThreads} * (1 + kWrites + kWrites / 50 + 1) + 1);
}

}  // namespace
}  // namespace iqdb::persist::test
