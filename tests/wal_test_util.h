// Writing small write-ahead-log segments for tests, through the real writer.
#ifndef IQDB_PERSIST_TESTS_WAL_TEST_UTIL_H_
#define IQDB_PERSIST_TESTS_WAL_TEST_UTIL_H_

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "test_util.h"
#include "wal_writer.h"

namespace iqdb::persist::test {

// Writes segment `number` of the log of `snapshot` with `count` frames whose
// bodies are "frame <lsn>", LSNs from `first_lsn`; returns each frame's offset.
// `synced`: each frame records the one before it as durable, as under
// FsyncPolicy::always(); else none does (durable LSN 0), as under never().
inline std::vector<std::uint64_t> write_wal_segment(const std::filesystem::path& snapshot,
                                                    std::uint64_t number, std::uint64_t first_lsn,
                                                    int count, bool synced = true) {
  auto writer = WalWriter::create(*default_file_system(), snapshot, number, first_lsn, false);
  EXPECT_THAT(writer, IsOk());
  std::vector<std::uint64_t> offsets;
  if (!writer) return offsets;
  for (int i = 0; i < count; ++i) {
    offsets.push_back(writer.value()->size());
    const std::string body = "frame " + std::to_string(first_lsn + i);
    const std::uint64_t durable = synced ? writer.value()->next_lsn() - 1 : 0;
    EXPECT_THAT(writer.value()->append(std::as_bytes(std::span(body.data(), body.size())), durable),
                IsOk());
  }
  EXPECT_THAT(writer.value()->close(), IsOk());
  return offsets;
}

}  // namespace iqdb::persist::test

#endif  // IQDB_PERSIST_TESTS_WAL_TEST_UTIL_H_
