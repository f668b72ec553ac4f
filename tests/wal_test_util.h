// Writing small write-ahead-log segments for tests, through the real writer.
#ifndef IQDB_PERSIST_TESTS_WAL_TEST_UTIL_H_
#define IQDB_PERSIST_TESTS_WAL_TEST_UTIL_H_

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "test_util.h"
#include "wal_record.h"
#include "wal_writer.h"

namespace iqdb::persist::test {

// Writes segment `number` of the log of `snapshot` with `count` frames, LSNs
// from `first_lsn`, each a Remove of id <lsn> (a record a load decodes);
// returns each frame's offset.
inline std::vector<std::uint64_t> write_wal_segment(const std::filesystem::path& snapshot,
                                                    std::uint64_t number, std::uint64_t first_lsn,
                                                    int count) {
  auto writer = WalWriter::create(*default_file_system(), snapshot, number, first_lsn, false);
  EXPECT_THAT(writer, IsOk());
  std::vector<std::uint64_t> offsets;
  if (!writer) return offsets;
  for (int i = 0; i < count; ++i) {
    offsets.push_back(writer.value()->size());
    std::vector<std::byte> body;
    encode_remove(body, VectorId(first_lsn + static_cast<std::uint64_t>(i)));
    // As if each frame had been synced before the next was written.
    const std::uint64_t durable = writer.value()->next_lsn() - 1;
    EXPECT_THAT(writer.value()->append(body, durable), IsOk());
  }
  EXPECT_THAT(writer.value()->close(), IsOk());
  return offsets;
}

}  // namespace iqdb::persist::test

#endif  // IQDB_PERSIST_TESTS_WAL_TEST_UTIL_H_
