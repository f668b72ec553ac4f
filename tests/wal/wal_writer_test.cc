// WalWriter: segments it writes scan back frame for frame, and a failed write
// or sync makes it refuse every later call (no retry-and-pretend).
#include "wal/wal_writer.h"
#include "wal/wal_segments.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "support/fault_injection_file_system.h"
#include "support/test_util.h"
#include "wal/wal_format.h"
#include "wal/wal_reader.h"

namespace iqdb::persist::test {
namespace {

std::vector<std::byte> body_of(const std::string& text) {
  const auto* data = reinterpret_cast<const std::byte*>(text.data());
  return {data, data + text.size()};
}

class WalWriterTest : public ::testing::Test {
 protected:
  TempDir dir_;
  std::filesystem::path snapshot_ = dir_.file("db.iqdb");
};

TEST_F(WalWriterTest, SegmentIsNamedAfterTheSnapshotWithItsNumberInHex) {
  EXPECT_EQ(wal_segment_path("/d/db.iqdb", 26), "/d/db.iqdb.wal-000000000000001a");
}

TEST_F(WalWriterTest, AppendedFramesScanBackInOrderWithConsecutiveLsns) {
  auto writer = WalWriter::create(*default_file_system(), snapshot_, 3, 100, true);
  ASSERT_THAT(writer, IsOk());
  const std::vector<std::string> bodies = {"a", "second", std::string(5000, 'x')};
  for (std::size_t i = 0; i < bodies.size(); ++i) {
    auto lsn = writer.value()->append(body_of(bodies[i]), 0);
    ASSERT_THAT(lsn, IsOk());
    EXPECT_EQ(lsn.value(), 100 + i);
  }
  ASSERT_THAT(writer.value()->sync(), IsOk());
  ASSERT_THAT(writer.value()->close(), IsOk());

  const auto bytes = read_file(wal_segment_path(snapshot_, 3));
  EXPECT_EQ(bytes.size(), writer.value()->size());
  auto scan = scan_wal_segment(bytes, "seg");
  ASSERT_THAT(scan, IsOk());
  EXPECT_TRUE(scan.value().intact());
  EXPECT_EQ(scan.value().number, 3u);
  EXPECT_EQ(scan.value().first_lsn, 100u);
  EXPECT_EQ(scan.value().last_lsn, 102u);
  std::vector<std::string> seen;
  ASSERT_THAT(for_each_wal_frame(bytes, scan.value(), UINT64_MAX,
                                 [&](std::uint64_t lsn, std::span<const std::byte> body) {
                                   EXPECT_EQ(lsn, 100 + seen.size());
                                   seen.emplace_back(reinterpret_cast<const char*>(body.data()),
                                                     body.size());
                                   return Result<void>(success());
                                 }),
              IsOk());
  EXPECT_EQ(seen, bodies);
}

TEST_F(WalWriterTest, EmptyOrOversizedBodyIsInvalidArgument) {
  auto writer = WalWriter::create(*default_file_system(), snapshot_, 1, 1, false);
  ASSERT_THAT(writer, IsOk());
  EXPECT_THAT(writer.value()->append({}, 0), IsError(ErrorKind::InvalidArgument, "0 bytes"));
  EXPECT_EQ(writer.value()->next_lsn(), 1u);
}

TEST_F(WalWriterTest, DurableLsnIsRecordedAndMustBeBelowTheFramesLsn) {
  auto writer = WalWriter::create(*default_file_system(), snapshot_, 1, 10, false);
  ASSERT_THAT(writer, IsOk());
  EXPECT_THAT(writer.value()->append(body_of("x"), 10),
              IsError(ErrorKind::InvalidArgument, "durable LSN 10"));
  ASSERT_THAT(writer.value()->append(body_of("x"), 9), IsOk());
  ASSERT_THAT(writer.value()->close(), IsOk());
  const auto bytes = read_file(wal_segment_path(snapshot_, 1));
  auto scan = scan_wal_segment(bytes, "seg");
  ASSERT_THAT(scan, IsOk());
  EXPECT_EQ(scan.value().frame_count, 1u);
  EXPECT_EQ(scan.value().max_durable_lsn, 9u);
}

TEST_F(WalWriterTest, ExistingSegmentIsNeverReopened) {
  ASSERT_THAT(WalWriter::create(*default_file_system(), snapshot_, 1, 1, false), IsOk());
  EXPECT_THAT(WalWriter::create(*default_file_system(), snapshot_, 1, 1, false),
              IsError(ErrorKind::Io, "wal-0000000000000001"));
}

TEST_F(WalWriterTest, CreateWithSyncMakesTheDirectoryEntryDurable) {
  auto fs = std::make_shared<FaultInjectionFileSystem>();
  ASSERT_THAT(WalWriter::create(*fs, snapshot_, 1, 1, true), IsOk());
  EXPECT_EQ(fs->calls(FsOp::Sync), 1u);
  EXPECT_EQ(fs->calls(FsOp::SyncDir), 1u);
  ASSERT_THAT(WalWriter::create(*fs, snapshot_, 2, 1, false), IsOk());
  EXPECT_EQ(fs->calls(FsOp::SyncDir), 1u);
}

TEST_F(WalWriterTest, FailedSyncIsFatalForTheSegment) {
  auto fs = std::make_shared<FaultInjectionFileSystem>();
  auto writer = WalWriter::create(*fs, snapshot_, 1, 1, false);
  ASSERT_THAT(writer, IsOk());
  ASSERT_THAT(writer.value()->append(body_of("x"), 0), IsOk());
  fs->fail_nth(FsOp::Sync, 1);
  EXPECT_THAT(writer.value()->sync(), IsError(ErrorKind::Io, "injected"));
  fs->disarm();
  EXPECT_THAT(writer.value()->sync(), IsError(ErrorKind::Io, "no longer writable"));
  EXPECT_THAT(writer.value()->append(body_of("y"), 0),
              IsError(ErrorKind::Io, "no longer writable"));
}

TEST_F(WalWriterTest, FailedWriteIsFatalForTheSegment) {
  auto fs = std::make_shared<FaultInjectionFileSystem>();
  auto writer = WalWriter::create(*fs, snapshot_, 1, 1, false);
  ASSERT_THAT(writer, IsOk());
  fs->fail_nth(FsOp::WriteAt, 1);
  EXPECT_THAT(writer.value()->append(body_of("x"), 0), IsError(ErrorKind::Io, "injected"));
  EXPECT_EQ(writer.value()->next_lsn(), 1u) << "a failed append consumes no LSN";
  fs->disarm();
  EXPECT_THAT(writer.value()->append(body_of("x"), 0),
              IsError(ErrorKind::Io, "no longer writable"));
}

}  // namespace
}  // namespace iqdb::persist::test
