// Helpers shared by the tests: a per-test temporary directory, whole-file
// read/write and corruption helpers, and matchers that check a Result's
// specific ErrorKind and message (never merely "not ok"), and kSanitized for
// tests that do less work under a sanitizer.
//
//   TempDir dir;
//   flip_byte(dir.file("x.iqdb"), 100, 0x01);
//   EXPECT_THAT(verify_snapshot(path), IsError(ErrorKind::ChecksumMismatch, "'vectors'"));
#ifndef IQDB_PERSIST_TESTS_SUPPORT_TEST_UTIL_H_
#define IQDB_PERSIST_TESTS_SUPPORT_TEST_UTIL_H_

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include "iqdb/persist/error.h"

namespace iqdb::persist {

// Prints errors and Results readably in gtest failure messages (found by ADL).
inline void PrintTo(const PersistError& error, std::ostream* os) { *os << error.to_string(); }

template <class T>
void PrintTo(const Result<T>& result, std::ostream* os) {
  if (result.has_value()) {
    *os << "success";
  } else {
    *os << "failure " << result.error().to_string();
  }
}

}  // namespace iqdb::persist

namespace iqdb::persist::test {

// Whether this build runs under AddressSanitizer or ThreadSanitizer (GCC's
// macros, or Clang's __has_feature), which run the same code many times slower.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif
#else
inline constexpr bool kSanitized = false;
#endif

// A fresh directory under the system temp directory, removed with its contents.
class TempDir {
 public:
  TempDir() {
    static std::atomic<unsigned> counter{0};
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name =
        "iqdb-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1));
    if (info != nullptr) name += std::string("-") + info->name();
    std::replace(name.begin(), name.end(), '/', '_');
    path_ = std::filesystem::temp_directory_path() / name;
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path file(const std::string& name) const { return path_ / name; }

  // The names of the directory's entries, sorted.
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(path_)) {
      names.push_back(entry.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

 private:
  std::filesystem::path path_;
};

// While it lives, caps the process's address space (RLIMIT_AS) at its size
// now plus `headroom` bytes and makes new threads ask for a stack larger than
// that: a mapping larger than what is left fails with ENOMEM and no thread can
// start, as in a process at its memory or thread limit. The cap is process-
// wide: make what the test needs before, assert after (gtest allocates).
// Unusable under sanitizers (kSanitized), whose shadow memory alone needs
// terabytes of address space.
class AddressSpaceLimit {
 public:
  explicit AddressSpaceLimit(std::size_t headroom) {
    std::ifstream statm("/proc/self/statm");
    std::uint64_t pages = 0;
    if (!(statm >> pages) || ::getrlimit(RLIMIT_AS, &saved_limit_) != 0) return;
    rlimit limit = saved_limit_;
    limit.rlim_cur = pages * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE)) + headroom;
    if (limit.rlim_max != RLIM_INFINITY && limit.rlim_cur > limit.rlim_max) return;
    if (::pthread_getattr_default_np(&saved_attr_) != 0) return;
    pthread_attr_t huge_stack;
    ::pthread_attr_init(&huge_stack);
    ::pthread_attr_setstacksize(&huge_stack, std::max<std::size_t>(4 * headroom, 256 << 20));
    const bool stack_set = ::pthread_setattr_default_np(&huge_stack) == 0;
    ::pthread_attr_destroy(&huge_stack);
    if (!stack_set || ::setrlimit(RLIMIT_AS, &limit) != 0) {
      ::pthread_setattr_default_np(&saved_attr_);
      ::pthread_attr_destroy(&saved_attr_);
      return;
    }
    active_ = true;
  }
  ~AddressSpaceLimit() {
    if (!active_) return;
    ::setrlimit(RLIMIT_AS, &saved_limit_);
    ::pthread_setattr_default_np(&saved_attr_);
    ::pthread_attr_destroy(&saved_attr_);
  }
  AddressSpaceLimit(const AddressSpaceLimit&) = delete;
  AddressSpaceLimit& operator=(const AddressSpaceLimit&) = delete;

  // False if the limit could not be set (nothing was changed).
  bool active() const { return active_; }

 private:
  bool active_ = false;
  rlimit saved_limit_{};
  pthread_attr_t saved_attr_{};
};

inline std::vector<std::byte> read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> bytes(chars.size());
  std::transform(chars.begin(), chars.end(), bytes.begin(),
                 [](char c) { return static_cast<std::byte>(c); });
  return bytes;
}

// Snapshots and log segments are created read-only (mode 0444): a test that
// damages one on purpose makes it writable first (root needs no permission).
inline void allow_writes(const std::filesystem::path& path) {
  std::error_code ignored;
  std::filesystem::permissions(path, std::filesystem::perms::owner_write,
                               std::filesystem::perm_options::add, ignored);
}

inline void write_file(const std::filesystem::path& path, std::span<const std::byte> bytes) {
  allow_writes(path);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

// XORs the byte at `offset` with `mask` in place.
inline void flip_byte(const std::filesystem::path& path, std::uint64_t offset, std::uint8_t mask) {
  allow_writes(path);
  std::fstream file(path, std::ios::binary | std::ios::in | std::ios::out);
  file.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  file.get(c);
  c = static_cast<char>(static_cast<unsigned char>(c) ^ mask);
  file.seekp(static_cast<std::streamoff>(offset));
  file.put(c);
  ASSERT_TRUE(file.good()) << "cannot flip byte " << offset << " of " << path;
}

inline void truncate_file(const std::filesystem::path& path, std::uint64_t size) {
  allow_writes(path);
  std::filesystem::resize_file(path, size);
}

inline std::vector<std::byte> random_bytes(std::size_t n, std::uint64_t seed) {
  std::vector<std::byte> bytes(n);
  std::uint64_t state = seed * 0x9E3779B97F4A7C15ull + 1;
  for (std::byte& b : bytes) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    b = static_cast<std::byte>(state >> 24);
  }
  return bytes;
}

// Matches a successful Result; explains the error otherwise.
class IsOkMatcher {
 public:
  using is_gtest_matcher = void;
  template <class R>
  bool MatchAndExplain(const R& result, std::ostream* os) const {
    if (result.has_value()) return true;
    if (os != nullptr) *os << "which failed with " << result.error().to_string();
    return false;
  }
  void DescribeTo(std::ostream* os) const { *os << "succeeds"; }
  void DescribeNegationTo(std::ostream* os) const { *os << "fails"; }
};

inline IsOkMatcher IsOk() { return {}; }

// Matches a failed Result (or a PersistError) of `kind` whose message contains
// every one of `substrings`.
class IsErrorMatcher {
 public:
  using is_gtest_matcher = void;
  IsErrorMatcher(ErrorKind kind, std::vector<std::string> substrings)
      : kind_(kind), substrings_(std::move(substrings)) {}

  bool MatchAndExplain(const PersistError& error, std::ostream* os) const {
    if (error.kind() != kind_) {
      if (os != nullptr) *os << "which is " << error.to_string();
      return false;
    }
    for (const std::string& substring : substrings_) {
      if (error.message().find(substring) == std::string::npos) {
        if (os != nullptr) {
          *os << "whose message lacks \"" << substring << "\": " << error.to_string();
        }
        return false;
      }
    }
    return true;
  }

  template <class R>
  bool MatchAndExplain(const R& result, std::ostream* os) const {
    if (result.has_value()) {
      if (os != nullptr) *os << "which succeeded";
      return false;
    }
    return MatchAndExplain(result.error(), os);
  }

  void DescribeTo(std::ostream* os) const {
    *os << "fails with " << to_string(kind_);
    for (const std::string& s : substrings_) *os << " mentioning \"" << s << "\"";
  }
  void DescribeNegationTo(std::ostream* os) const {
    *os << "does not fail with " << to_string(kind_);
  }

 private:
  ErrorKind kind_;
  std::vector<std::string> substrings_;
};

inline IsErrorMatcher IsError(ErrorKind kind, std::initializer_list<std::string> substrings = {}) {
  return {kind, std::vector<std::string>(substrings)};
}
inline IsErrorMatcher IsError(ErrorKind kind, const std::string& substring) {
  return {kind, {substring}};
}
inline IsErrorMatcher IsError(ErrorKind kind, const char* substring) {
  return {kind, {std::string(substring)}};
}

}  // namespace iqdb::persist::test

#endif  // IQDB_PERSIST_TESTS_SUPPORT_TEST_UTIL_H_
