// Helpers of the shared-memory publication tests: unique publication names,
// the objects of a publication as files in /dev/shm (iqdb.NAME,
// iqdb.NAME.current, iqdb.NAME.<16 hex digits>; listed and removed directly,
// whatever state they are in), and a digest of an index's content
// that a child process can send its parent.
#ifndef IQDB_PERSIST_TESTS_SUPPORT_SHARED_MEMORY_UTIL_H_
#define IQDB_PERSIST_TESTS_SUPPORT_SHARED_MEMORY_UTIL_H_

#include <gtest/gtest.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "shared/publication_format.h"
#include "support/mock_indexes.h"

namespace iqdb::persist::test {

// A publication name unique to this process and the running test.
inline std::string unique_publication_name(std::string_view suffix = {}) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return fmt::format("test-{}-{}{}", ::getpid(), info != nullptr ? info->name() : "none", suffix);
}

// Whether `file` (a name in /dev/shm) is a segment of `name` being written
// (or left so): iqdb.NAME.<16 lowercase hex digits>.
inline bool is_building_object(std::string_view file, std::string_view name) {
  const std::string head = publication_format::head_object(name);
  if (file.size() != head.size() + 17 || file.substr(0, head.size()) != head ||
      file[head.size()] != '.') {
    return false;
  }
  return std::all_of(file.begin() + static_cast<std::ptrdiff_t>(head.size()) + 1, file.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// Whether `file` (a name in /dev/shm) is the head, the current segment or a
// building segment of `name`.
inline bool is_publication_object(std::string_view file, std::string_view name) {
  return file == publication_format::head_object(name) ||
         file == publication_format::current_object(name) || is_building_object(file, name);
}

// The objects of `name` in /dev/shm, sorted by name (the head first; a
// building segment of a small generation, whose digits start with 0, sorts
// before the current one).
inline std::vector<std::string> publication_objects(std::string_view name) {
  std::vector<std::string> objects;
  std::error_code error;
  for (const auto& entry :
       std::filesystem::directory_iterator(publication_format::kShmDirectory, error)) {
    const std::string file = entry.path().filename().string();
    if (is_publication_object(file, name)) objects.push_back(file);
  }
  std::sort(objects.begin(), objects.end());
  return objects;
}

// Removes every object of `name` (whatever its type: a test may plant a FIFO
// or a symbolic link); returns how many there were.
inline std::size_t remove_publication_objects(std::string_view name) {
  std::size_t removed = 0;
  for (const std::string& object : publication_objects(name)) {
    std::error_code ignored;
    removed += std::filesystem::remove(publication_format::object_path(object), ignored) ? 1 : 0;
  }
  return removed;
}

// FNV-1a over an index's dimension, ids and vector bits.
inline std::uint64_t content_digest(const SectionArrayIndex& index) {
  std::uint64_t hash = 0xcbf29ce484222325ull;
  const auto mix = [&hash](const void* data, std::size_t size) {
    const auto* bytes = static_cast<const unsigned char*>(data);
    for (std::size_t i = 0; i < size; ++i) hash = (hash ^ bytes[i]) * 0x100000001b3ull;
  };
  const std::uint64_t dim = index.dim();
  mix(&dim, sizeof dim);
  mix(index.ids().data(), index.ids().size_bytes());
  mix(index.vectors().data(), index.vectors().size_bytes());
  return hash;
}

}  // namespace iqdb::persist::test

#endif  // IQDB_PERSIST_TESTS_SUPPORT_SHARED_MEMORY_UTIL_H_
