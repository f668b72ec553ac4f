// default_file_system(): the POSIX implementation of the I/O seam.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "iqdb/persist/file_system.h"
#include "support/test_util.h"

namespace iqdb::persist::test {
namespace {

using ::testing::UnorderedElementsAre;

class PosixFileSystemTest : public ::testing::Test {
 protected:
  std::shared_ptr<FileSystem> fs_ = default_file_system();
  TempDir dir_;
};

TEST_F(PosixFileSystemTest, WritesPositionallyAndReadsBack) {
  const auto path = dir_.file("f");
  auto file = fs_->create_new(path);
  ASSERT_THAT(file, IsOk());
  const std::vector<std::byte> data = random_bytes(100, 1);
  ASSERT_THAT(file.value()->write_at(50, data), IsOk());
  ASSERT_THAT(file.value()->write_at(0, std::span(data).first(10)), IsOk());
  ASSERT_THAT(file.value()->truncate(200), IsOk());
  ASSERT_THAT(file.value()->sync(), IsOk());
  ASSERT_THAT(file.value()->close(), IsOk());
  EXPECT_EQ(file.value()->path(), path);

  auto readable = fs_->open_readable(path);
  ASSERT_THAT(readable, IsOk());
  EXPECT_EQ(readable.value()->size(), 200u);
  std::vector<std::byte> back(100);
  ASSERT_THAT(readable.value()->read_at(50, back), IsOk());
  EXPECT_EQ(back, data);
  auto mapping = readable.value()->map();
  ASSERT_THAT(mapping, IsOk());
  const auto bytes = mapping.value()->bytes();
  ASSERT_EQ(bytes.size(), 200u);
  EXPECT_TRUE(std::equal(data.begin(), data.begin() + 10, bytes.begin()));
  EXPECT_EQ(bytes[10], std::byte{0});
  EXPECT_EQ(bytes[199], std::byte{0});
  readable.value().reset();  // the mapping outlives the file object
  EXPECT_TRUE(std::equal(data.begin(), data.end(), bytes.begin() + 50));
}

TEST_F(PosixFileSystemTest, CreateNewRefusesAnExistingFile) {
  const auto path = dir_.file("f");
  ASSERT_THAT(fs_->create_new(path), IsOk());
  EXPECT_THAT(fs_->create_new(path), IsError(ErrorKind::Io, {path.string(), "create", "exists"}));
}

TEST_F(PosixFileSystemTest, MissingFilesToReadAndMissingDirectoriesAreNotFoundOthersIo) {
  const auto missing = dir_.file("missing");
  EXPECT_THAT(fs_->open_readable(missing),
              IsError(ErrorKind::NotFound, {missing.string(), "open"}));
  EXPECT_THAT(fs_->remove(missing), IsError(ErrorKind::Io, {missing.string(), "unlink"}));
  EXPECT_THAT(fs_->rename(missing, dir_.file("x")), IsError(ErrorKind::Io, "rename"));
  EXPECT_THAT(fs_->sync_dir(missing), IsError(ErrorKind::Io, "open directory"));
  EXPECT_THAT(fs_->list_dir(missing), IsError(ErrorKind::NotFound, "open directory"));
  EXPECT_THAT(fs_->create_new(missing / "f"), IsError(ErrorKind::NotFound, "create"));
}

TEST_F(PosixFileSystemTest, OpeningADirectoryIsIo) {
  EXPECT_THAT(fs_->open_readable(dir_.path()), IsError(ErrorKind::Io, "not a regular file"));
}

TEST_F(PosixFileSystemTest, ReadingPastTheEndIsIo) {
  const auto path = dir_.file("f");
  write_file(path, random_bytes(10, 2));
  auto file = fs_->open_readable(path);
  ASSERT_THAT(file, IsOk());
  std::vector<std::byte> out(5);
  EXPECT_THAT(file.value()->read_at(6, out),
              IsError(ErrorKind::Io, {path.string(), "5 bytes at offset 6", "10-byte file"}));
  EXPECT_THAT(file.value()->read_at(UINT64_MAX, out), IsError(ErrorKind::Io, "past the end"));
  EXPECT_THAT(file.value()->read_at(5, out), IsOk());
}

// The size is taken when the file is opened; a file cut short meanwhile (by
// another process) must not be read as if the missing bytes were there.
TEST_F(PosixFileSystemTest, ReadingAFileThatShrankSinceItWasOpenedIsIo) {
  const auto path = dir_.file("f");
  write_file(path, random_bytes(100, 3));
  auto file = fs_->open_readable(path);
  ASSERT_THAT(file, IsOk());
  truncate_file(path, 40);
  std::vector<std::byte> out(50);
  EXPECT_THAT(
      file.value()->read_at(20, out),
      IsError(ErrorKind::Io, {path.string(), "file shrank while being read (at offset 40)"}));
}

// Offsets beyond what the OS can address fail with its reason; they never
// wrap around to a write at the start of the file.
TEST_F(PosixFileSystemTest, OffsetsBeyondTheOsRangeAreIoAndWriteNothing) {
  const auto path = dir_.file("f");
  auto file = fs_->create_new(path);
  ASSERT_THAT(file, IsOk());
  const std::vector<std::byte> data = random_bytes(8, 4);
  const std::uint64_t beyond = std::uint64_t{1} << 63;
  EXPECT_THAT(file.value()->write_at(beyond, data),
              IsError(ErrorKind::Io,
                      {path.string(), "write of 8 bytes at offset " + std::to_string(beyond)}));
  EXPECT_THAT(file.value()->truncate(beyond),
              IsError(ErrorKind::Io, {path.string(), "ftruncate to " + std::to_string(beyond)}));
  ASSERT_THAT(file.value()->close(), IsOk());
  EXPECT_EQ(std::filesystem::file_size(path), 0u);
}

// After close(), the file refuses every operation (with the OS's "bad file
// descriptor") instead of acting on a descriptor number reused meanwhile.
TEST_F(PosixFileSystemTest, AClosedFileRefusesEveryOperation) {
  const auto path = dir_.file("f");
  auto file = fs_->create_new(path);
  ASSERT_THAT(file, IsOk());
  ASSERT_THAT(file.value()->close(), IsOk());
  const std::vector<std::byte> data = random_bytes(8, 5);
  EXPECT_THAT(file.value()->write_at(0, data), IsError(ErrorKind::Io, {path.string(), "write"}));
  EXPECT_THAT(file.value()->truncate(10), IsError(ErrorKind::Io, {path.string(), "ftruncate"}));
  EXPECT_THAT(file.value()->sync(), IsError(ErrorKind::Io, {path.string(), "fdatasync"}));
  EXPECT_THAT(file.value()->close(), IsError(ErrorKind::Io, {path.string(), "close"}));
  EXPECT_EQ(std::filesystem::file_size(path), 0u);
}

// Some files cannot be synced (procfs, pipes): that is reported, not ignored.
TEST_F(PosixFileSystemTest, SyncingAFileTheOsCannotSyncIsIo) {
  const std::filesystem::path unsyncable = "/proc/version";
  if (!std::filesystem::exists(unsyncable)) GTEST_SKIP() << "no procfs";
  EXPECT_THAT(fs_->sync_file(unsyncable),
              IsError(ErrorKind::Io, {unsyncable.string(), "fdatasync"}));
}

// A FIFO would block open(2) until a writer came: every entry point that
// opens a file refuses it at once instead.
TEST_F(PosixFileSystemTest, FifoIsRefusedAtOnceByEveryOpen) {
  const auto fifo = dir_.file("f.iqdb");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  EXPECT_THAT(fs_->open_readable(fifo), IsError(ErrorKind::Io, {fifo.string(), "FIFO"}));
  EXPECT_THAT(fs_->sync_file(fifo), IsError(ErrorKind::Io, {fifo.string(), "FIFO"}));
  EXPECT_THAT(fs_->lock_file(fifo), IsError(ErrorKind::Io, {fifo.string(), "FIFO"}));
}

TEST_F(PosixFileSystemTest, CreatedFilesAreReadOnly) {
  const auto path = dir_.file("f");
  auto file = fs_->create_new(path);
  ASSERT_THAT(file, IsOk());
  ASSERT_THAT(file.value()->write_at(0, random_bytes(10, 1)), IsOk());  // the creator writes
  struct stat info {};
  ASSERT_EQ(::stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0222, 0u) << std::oct << info.st_mode;
}

TEST_F(PosixFileSystemTest, LockIsExclusivePerLockObjectEvenInOneProcess) {
  const auto path = dir_.file("db.lock");
  auto first = fs_->lock_file(path);
  ASSERT_THAT(first, IsOk());
  EXPECT_EQ(first.value()->path(), path);
  const std::string holder = "pid " + std::to_string(::getpid()) + " on host ";
  EXPECT_THAT(fs_->lock_file(path), IsError(ErrorKind::Locked, {path.string(), holder}));
  // Unlike a classic POSIX lock, closing another descriptor of the file does
  // not release it.
  { auto reader = fs_->open_readable(path); }
  EXPECT_THAT(fs_->lock_file(path), IsError(ErrorKind::Locked));
  first.value().reset();
  EXPECT_THAT(fs_->lock_file(path), IsOk());
  EXPECT_TRUE(std::filesystem::exists(path));  // never removed
}

TEST_F(PosixFileSystemTest, LockHolderRecordIsSanitizedForTheMessage) {
  const auto path = dir_.file("db.lock");
  auto first = fs_->lock_file(path);
  ASSERT_THAT(first, IsOk());
  const std::string hostile = "pid 1\x1b[31m on host\x07 x" + std::string(500, 'y') + "\nz";
  write_file(path, std::as_bytes(std::span(hostile)));
  auto second = fs_->lock_file(path);
  ASSERT_THAT(second, IsError(ErrorKind::Locked, "pid 1[31m on host x"));
  EXPECT_LT(second.error().message().size(), path.string().size() + 200);
}

// A file larger than the address space left cannot be mapped: Io naming the
// file, and the same file maps once there is room.
TEST_F(PosixFileSystemTest, MappingMoreThanTheAddressSpaceLeftIsIo) {
  if (kSanitized) GTEST_SKIP() << "sanitizers need more address space than the limit leaves";
  const auto path = dir_.file("big");
  write_file(path, {});
  truncate_file(path, std::uint64_t{64} << 20);  // sparse: no disk used
  auto file = fs_->open_readable(path);
  ASSERT_THAT(file, IsOk());
  std::optional<Result<std::shared_ptr<const MappedRegion>>> mapping;
  {
    AddressSpaceLimit limit(std::size_t{16} << 20);
    ASSERT_TRUE(limit.active());
    mapping = file.value()->map();
  }
  EXPECT_THAT(*mapping, IsError(ErrorKind::Io, {path.string(), "mmap"}));
  EXPECT_THAT(file.value()->map(), IsOk());
}

TEST_F(PosixFileSystemTest, EmptyFileMapsToNoBytes) {
  const auto path = dir_.file("empty");
  write_file(path, {});
  auto file = fs_->open_readable(path);
  ASSERT_THAT(file, IsOk());
  auto mapping = file.value()->map();
  ASSERT_THAT(mapping, IsOk());
  EXPECT_TRUE(mapping.value()->bytes().empty());
}

TEST_F(PosixFileSystemTest, RenameReplacesAndDirectoryOperationsWork) {
  write_file(dir_.file("a"), random_bytes(3, 1));
  write_file(dir_.file("b"), random_bytes(4, 1));
  ASSERT_THAT(fs_->rename(dir_.file("a"), dir_.file("b")), IsOk());
  EXPECT_EQ(read_file(dir_.file("b")), random_bytes(3, 1));
  ASSERT_THAT(fs_->sync_dir(dir_.path()), IsOk());
  write_file(dir_.file("c"), {});
  auto names = fs_->list_dir(dir_.path());
  ASSERT_THAT(names, IsOk());
  EXPECT_THAT(names.value(), UnorderedElementsAre("b", "c"));
  ASSERT_THAT(fs_->remove(dir_.file("c")), IsOk());
  EXPECT_THAT(dir_.entries(), ::testing::ElementsAre("b"));
}

TEST_F(PosixFileSystemTest, DefaultFileSystemIsOneSharedInstance) {
  EXPECT_EQ(default_file_system().get(), fs_.get());
}

}  // namespace
}  // namespace iqdb::persist::test
