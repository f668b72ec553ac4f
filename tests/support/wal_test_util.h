// Writing small write-ahead-log segments for tests, through the real writer.
#ifndef IQDB_PERSIST_TESTS_SUPPORT_WAL_TEST_UTIL_H_
#define IQDB_PERSIST_TESTS_SUPPORT_WAL_TEST_UTIL_H_

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "support/test_util.h"
#include "util/crc32.h"
#include "util/little_endian.h"
#include "wal/wal_format.h"
#include "wal/wal_record.h"
#include "wal/wal_writer.h"

namespace iqdb::persist::test {

// Writes segment `number` of the log of `snapshot` with `count` frames, LSNs
// from `first_lsn`, each a Remove of id <lsn> (a record a load decodes);
// returns each frame's offset. `synced`: each frame records the one before it
// as durable, as under FsyncPolicy::always(); else none does (durable LSN 0),
// as under never(). The header records `database_id`.
inline std::vector<std::uint64_t> write_wal_segment(const std::filesystem::path& snapshot,
                                                    std::uint64_t number, std::uint64_t first_lsn,
                                                    int count, bool synced = true,
                                                    std::uint64_t database_id = 0) {
  auto writer =
      WalWriter::create(*default_file_system(), snapshot, number, first_lsn, false, database_id);
  EXPECT_THAT(writer, IsOk());
  std::vector<std::uint64_t> offsets;
  if (!writer) return offsets;
  for (int i = 0; i < count; ++i) {
    offsets.push_back(writer.value()->size());
    std::vector<std::byte> body;
    encode_remove(body, VectorId(first_lsn + static_cast<std::uint64_t>(i)));
    const std::uint64_t durable = synced ? writer.value()->next_lsn() - 1 : 0;
    EXPECT_THAT(writer.value()->append(body, durable), IsOk());
  }
  EXPECT_THAT(writer.value()->close(), IsOk());
  return offsets;
}

// Rewrites the database id the header of segment file `path` records (0: as
// segments written before ids existed), with the header's CRC to match.
inline void set_segment_database_id(const std::filesystem::path& path, std::uint64_t id) {
  std::vector<std::byte> bytes = read_file(path);
  ASSERT_GE(bytes.size(), wal_format::kHeaderSize) << path;
  store_le(bytes, wal_format::kDatabaseIdOffset, id, 8);
  store_le(bytes, wal_format::kHeaderCrcOffset,
           crc32(std::span<const std::byte>(bytes).first(wal_format::kHeaderCrcOffset)), 4);
  write_file(path, bytes);
}

// Writes a frame header at `at`: CRC, body length, LSN, durable LSN.
inline void put_frame_header(std::span<std::byte> segment, std::uint64_t at, std::uint32_t crc,
                             std::uint64_t length, std::uint64_t lsn, std::uint64_t durable_lsn) {
  store_le(segment, at + wal_format::kFrameCrcOffset, crc, 4);
  store_le(segment, at + wal_format::kFrameLengthOffset, length, 4);
  store_le(segment, at + wal_format::kFrameLsnOffset, lsn, 8);
  store_le(segment, at + wal_format::kFrameDurableLsnOffset, durable_lsn, 8);
}

// Writes a valid frame holding `body` at `at`; returns the offset after it.
inline std::uint64_t put_frame(std::span<std::byte> segment, std::uint64_t at, std::uint64_t lsn,
                               std::uint64_t durable_lsn, std::string_view body) {
  put_frame_header(segment, at, 0, body.size(), lsn, durable_lsn);
  std::transform(body.begin(), body.end(), segment.begin() + static_cast<std::ptrdiff_t>(at) + 24,
                 [](char c) { return static_cast<std::byte>(c); });
  const auto covered =
      segment.subspan(at + wal_format::kFrameLengthOffset,
                      wal_format::kFrameHeaderSize - wal_format::kFrameLengthOffset + body.size());
  store_le(segment, at + wal_format::kFrameCrcOffset, crc32(covered), 4);
  return at + wal_format::kFrameHeaderSize + body.size();
}

// Fills [from, end) with a frame header every 24 bytes that passes every check
// of a resynchronisation candidate but the CRC (docs/FORMAT.md, "Damage"): LSN
// `lsn`, durable LSN 0 and a length reaching to `end`. Each would cost a
// search a CRC of the rest: about (end - from)^2 / 48 bytes in all, unbounded.
inline void put_crafted_headers(std::span<std::byte> segment, std::uint64_t from, std::uint64_t end,
                                std::uint64_t lsn) {
  constexpr std::uint64_t kHeader = wal_format::kFrameHeaderSize;
  for (std::uint64_t at = from; at + kHeader < end; at += kHeader) {
    const std::uint64_t length =
        std::min<std::uint64_t>(end - at - kHeader, wal_format::kMaxBodyLength);
    put_frame_header(segment, at, 0, length, lsn, 0);
  }
}

// Appends 64 KiB of put_crafted_headers() (LSN `lsn`) to the segment file at
// `path`: far more CRC work than a scan's budget allows, so that the scan
// leaves the rest of the segment Unscanned. Returns where they start.
inline std::uint64_t append_crafted_headers(const std::filesystem::path& path, std::uint64_t lsn) {
  auto bytes = read_file(path);
  const std::uint64_t from = bytes.size();
  bytes.resize(from + 64 * 1024);
  put_crafted_headers(bytes, from, bytes.size(), lsn);
  write_file(path, bytes);
  return from;
}

}  // namespace iqdb::persist::test

#endif  // IQDB_PERSIST_TESTS_SUPPORT_WAL_TEST_UTIL_H_
