// One writer per database: the writer lock ("<snapshot>.lock") through
// PersistedIndex, rewrite_snapshot() and real processes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "iqdb/persist.h"
#include "support/fault_injection_file_system.h"
#include "support/mock_indexes.h"
#include "support/test_util.h"

namespace iqdb::persist::test {
namespace {

using Db = PersistedIndex<StreamMapIndex>;
using ::testing::HasSubstr;
constexpr std::size_t kDim = 4;
constexpr DistanceMetric kMetric = DistanceMetric::Euclidean;

std::vector<float> vector_of(std::uint64_t id) {
  const auto x = static_cast<float>(id);
  return {x, x + 1, x + 2, x + 3};
}

StreamMapIndex empty_index() { return StreamMapIndex(kDim, kMetric); }

// In a forked child: never outlive the test, whatever happens to the parent
// (a failed assertion, a crash) or to the child itself.
void bound_child_lifetime(pid_t parent) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(5);
  ::alarm(120);
}

// Kills and reaps a child when the test leaves its scope, however it leaves.
struct ChildGuard {
  pid_t pid = -1;
  ~ChildGuard() {
    if (pid <= 0) return;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
};

class DatabaseLockTest : public ::testing::Test {
 protected:
  PersistConfig wal_config() const {
    PersistConfig config(path_);
    config.wal_enabled = true;
    return config;
  }
  PersistConfig plain_config() const { return PersistConfig(path_); }
  std::filesystem::path lock_path() const {
    std::filesystem::path lock = path_;
    lock += ".lock";
    return lock;
  }

  TempDir dir_;
  std::filesystem::path path_ = dir_.file("db.iqdb");
};

TEST_F(DatabaseLockTest, SecondWriterInTheSameProcessIsLockedNamingPathAndHolder) {
  auto writer = Db::open_with(empty_index(), wal_config());
  ASSERT_THAT(writer, IsOk());
  ASSERT_THAT(writer.value().insert(VectorId(1), vector_of(1)), IsOk());

  const std::string pid = "pid " + std::to_string(::getpid());
  EXPECT_THAT(Db::load(wal_config()), IsError(ErrorKind::Locked, {path_.string(), pid}));
  EXPECT_THAT(Db::open(wal_config(), empty_index), IsError(ErrorKind::Locked, path_.string()));
  EXPECT_THAT(Db::open_with(empty_index(), wal_config(), OpenMode::Overwrite),
              IsError(ErrorKind::Locked, path_.string()));

  // The refused writers touched nothing: the acknowledged insert is there.
  ASSERT_THAT(writer.value().insert(VectorId(2), vector_of(2)), IsOk());
  writer = fail(ErrorKind::Io, "closed");  // destroys the writer, releasing the lock
  auto reopened = Db::load(wal_config());
  ASSERT_THAT(reopened, IsOk());
  EXPECT_EQ(reopened.value().index().vectors().size(), 2u);
}

TEST_F(DatabaseLockTest, RefusedWriterLeavesEveryFileAsItWas) {
  auto writer = Db::open_with(empty_index(), wal_config());
  ASSERT_THAT(writer, IsOk());
  ASSERT_THAT(writer.value().insert(VectorId(1), vector_of(1)), IsOk());
  const auto entries = dir_.entries();
  const auto snapshot = read_file(path_);

  EXPECT_THAT(Db::open_with(empty_index(), wal_config(), OpenMode::Overwrite),
              IsError(ErrorKind::Locked));
  EXPECT_EQ(dir_.entries(), entries);
  EXPECT_EQ(read_file(path_), snapshot);
}

TEST_F(DatabaseLockTest, ReadersOfTheLastCheckpointWorkBesideTheWriter) {
  auto writer = Db::open_with(empty_index(), wal_config());
  ASSERT_THAT(writer, IsOk());
  ASSERT_THAT(writer.value().insert(VectorId(1), vector_of(1)), IsOk());
  ASSERT_THAT(writer.value().checkpoint(), IsOk());

  auto reader = Db::load(plain_config());
  ASSERT_THAT(reader, IsOk());
  EXPECT_EQ(reader.value().index().vectors().size(), 1u);
  // A reader writes nothing: it cannot save beside the writer either.
  EXPECT_THAT(reader.value().save(), IsError(ErrorKind::Locked, path_.string()));
}

TEST_F(DatabaseLockTest, ReaderCreatesNoLockFile) {
  {
    auto db = Db::open_with(empty_index(), plain_config());
    ASSERT_THAT(db, IsOk());
    ASSERT_THAT(db.value().save(), IsOk());
  }
  std::filesystem::remove(lock_path());
  ASSERT_THAT(Db::load(plain_config()), IsOk());
  EXPECT_FALSE(std::filesystem::exists(lock_path()));
}

TEST_F(DatabaseLockTest, SaveWithoutTheLogHoldsTheLockForTheSaveOnly) {
  auto db = Db::open_with(empty_index(), plain_config());
  ASSERT_THAT(db, IsOk());
  ASSERT_THAT(db.value().save(), IsOk());
  EXPECT_TRUE(std::filesystem::exists(lock_path()));
  ASSERT_THAT(db.value().save(), IsOk());  // released after the first save
  auto other = Db::load(plain_config());
  ASSERT_THAT(other, IsOk());
  EXPECT_THAT(other.value().save(), IsOk());
}

TEST_F(DatabaseLockTest, RewriteIsRefusedWhileAWriterHoldsTheTarget) {
  auto writer = Db::open_with(empty_index(), wal_config());
  ASSERT_THAT(writer, IsOk());
  EXPECT_THAT(rewrite_snapshot(path_, path_), IsError(ErrorKind::Locked, path_.string()));
  writer = fail(ErrorKind::Io, "closed");
  EXPECT_THAT(rewrite_snapshot(path_, path_), IsOk());
}

TEST_F(DatabaseLockTest, OpenCreatesOnceThenLoads) {
  int made = 0;
  const auto make_empty = [&made] {
    ++made;
    return empty_index();
  };
  {
    auto created = Db::open(wal_config(), make_empty);
    ASSERT_THAT(created, IsOk());
    ASSERT_THAT(created.value().insert(VectorId(7), vector_of(7)), IsOk());
  }
  auto loaded = Db::open(wal_config(), make_empty);
  ASSERT_THAT(loaded, IsOk());
  EXPECT_EQ(made, 1);
  EXPECT_EQ(loaded.value().index().vectors().size(), 1u);
}

TEST_F(DatabaseLockTest, OpenWithoutTheLogLoadsAnExistingSnapshot) {
  {
    auto db = Db::open(plain_config(), empty_index);
    ASSERT_THAT(db, IsOk());
    ASSERT_THAT(db.value().insert(VectorId(3), vector_of(3)), IsOk());
    ASSERT_THAT(db.value().save(), IsOk());
  }
  auto loaded = Db::open(plain_config(), empty_index);
  ASSERT_THAT(loaded, IsOk());
  EXPECT_EQ(loaded.value().index().vectors().size(), 1u);
}

TEST_F(DatabaseLockTest, OpenWithWithoutTheLogRefusesAnExistingSnapshot) {
  {
    auto db = Db::open_with(empty_index(), plain_config());
    ASSERT_THAT(db, IsOk());
    ASSERT_THAT(db.value().insert(VectorId(1), vector_of(1)), IsOk());
    ASSERT_THAT(db.value().save(), IsOk());
  }
  EXPECT_THAT(Db::open_with(empty_index(), plain_config()),
              IsError(ErrorKind::AlreadyExists, path_.string()));
  auto replaced = Db::open_with(empty_index(), plain_config(), OpenMode::Overwrite);
  ASSERT_THAT(replaced, IsOk());
  ASSERT_THAT(replaced.value().save(), IsOk());
  auto loaded = Db::load(plain_config());
  ASSERT_THAT(loaded, IsOk());
  EXPECT_TRUE(loaded.value().index().vectors().empty());
}

TEST_F(DatabaseLockTest, FailureToTakeTheLockFailsTheOpenBeforeAnyWrite) {
  auto fs = std::make_shared<FaultInjectionFileSystem>();
  PersistConfig config = wal_config();
  config.file_system = fs;
  fs->fail_nth(FsOp::LockFile, 1);
  EXPECT_THAT(Db::open_with(empty_index(), config), IsError(ErrorKind::Io, "injected"));
  EXPECT_EQ(fs->calls(FsOp::CreateNew), 0u);
  EXPECT_FALSE(std::filesystem::exists(path_));
}

// A writer in another process: its lock is seen, named, and released by the
// kernel when it is killed, with every acknowledged write kept.
TEST_F(DatabaseLockTest, WriterInAChildProcessLocksUntilKilled) {
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t parent = ::getpid();
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    bound_child_lifetime(parent);
    ::close(ready[0]);
    auto writer = Db::open_with(empty_index(), wal_config());
    bool ok = writer.has_value();
    for (std::uint64_t id = 1; ok && id <= 5; ++id) {
      ok = writer.value().insert(VectorId(id), vector_of(id)).has_value();
    }
    const char status = ok ? 'y' : 'n';
    (void)!::write(ready[1], &status, 1);
    ::pause();  // holds the lock until killed
    ::_exit(0);
  }
  ChildGuard guard{child};
  ::close(ready[1]);
  char status = 0;
  ASSERT_EQ(::read(ready[0], &status, 1), 1);
  ::close(ready[0]);
  EXPECT_EQ(status, 'y');

  const std::string holder = "pid " + std::to_string(child);
  EXPECT_THAT(Db::load(wal_config()), IsError(ErrorKind::Locked, {path_.string(), holder}));
  EXPECT_THAT(Db::open(wal_config(), empty_index), IsError(ErrorKind::Locked, holder));
  auto reader = Db::load(plain_config());  // the last checkpoint: the empty index
  ASSERT_THAT(reader, IsOk());

  ASSERT_EQ(::kill(child, SIGKILL), 0);
  int wait_status = 0;
  ASSERT_EQ(::waitpid(child, &wait_status, 0), child);
  guard.pid = -1;
  auto recovered = Db::load(wal_config());
  ASSERT_THAT(recovered, IsOk());
  EXPECT_EQ(recovered.value().index().vectors().size(), 5u);
}

// Processes that start at once: exactly one creates the database; every
// other one either loads it or is told it is locked, and no insert is lost.
TEST_F(DatabaseLockTest, ProcessesStartingAtOnceNeverBothCreate) {
  constexpr int kProcesses = 4;
  const pid_t parent = ::getpid();
  std::vector<pid_t> children;
  for (int p = 0; p < kProcesses; ++p) {
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      bound_child_lifetime(parent);
      // Retries until it gets the lock; inserts its own id; exits.
      for (int attempt = 0; attempt < 20000; ++attempt) {
        auto db = Db::open(wal_config(), empty_index);
        if (!db) {
          if (db.error().kind() != ErrorKind::Locked) ::_exit(2);
          ::usleep(500);
          continue;
        }
        const auto id = static_cast<std::uint64_t>(100 + p);
        ::_exit(db.value().insert(VectorId(id), vector_of(id)) ? 0 : 3);
      }
      ::_exit(4);
    }
    children.push_back(child);
  }
  for (const pid_t child : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  }
  auto loaded = Db::load(wal_config());
  ASSERT_THAT(loaded, IsOk());
  EXPECT_EQ(loaded.value().index().vectors().size(), static_cast<std::size_t>(kProcesses));
}

}  // namespace
}  // namespace iqdb::persist::test
