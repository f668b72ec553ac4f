// The fuzz targets' memory bound: while an AllocationBudget lives, the bytes
// allocated with malloc/new and not yet freed may not exceed its limit; the
// first allocation past it aborts, naming both figures (a finding).
// The library promises that no input makes it allocate more than a bound
// derived from the input's size (docs/FORMAT.md: a chunk decodes to at most
// kMaxChunkExpansion = 256 times its stored size), so each target sets
// budget_for(input size) = kMaxChunkExpansion * size + kBudgetSlack.
//
// It counts through the sanitizer allocator's hooks, so it is active in ASan
// builds (libFuzzer's and the asan-ubsan preset's) and does nothing
// elsewhere. Anonymous mappings (decoded sections) are not malloc: libFuzzer's
// -rss_limit_mb bounds those. Inputs are run one at a time: one budget at once.
#ifndef IQDB_PERSIST_FUZZ_ALLOCATION_BUDGET_H_
#define IQDB_PERSIST_FUZZ_ALLOCATION_BUDGET_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "snapshot/section_codec.h"

#if defined(__SANITIZE_ADDRESS__)
#define IQDB_FUZZ_COUNT_ALLOCATIONS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define IQDB_FUZZ_COUNT_ALLOCATIONS 1
#endif
#endif

#ifdef IQDB_FUZZ_COUNT_ALLOCATIONS
extern "C" {
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void*,
                                                                  std::size_t),
                                              void (*free_hook)(const volatile void*));
std::size_t __sanitizer_get_allocated_size(const volatile void* p);
}
#endif

namespace iqdb::persist::fuzz {

// Allocations of the harness itself (copies of the input, the memory file
// system, error messages) and fixed-size buffers of the library.
inline constexpr std::size_t kBudgetSlack = std::size_t{8} << 20;

inline std::size_t budget_for(std::size_t input_size) {
  return kMaxChunkExpansion * input_size + kBudgetSlack;
}

class AllocationBudget {
 public:
  explicit AllocationBudget(std::size_t limit) {
#ifdef IQDB_FUZZ_COUNT_ALLOCATIONS
    static const bool installed =
        __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free) != 0;
    if (!installed) return;
    live().store(0);
    this->limit().store(limit);
    active().store(true);
#else
    (void)limit;
#endif
  }
  ~AllocationBudget() { active().store(false); }
  AllocationBudget(const AllocationBudget&) = delete;
  AllocationBudget& operator=(const AllocationBudget&) = delete;

 private:
  static std::atomic<bool>& active() {
    static std::atomic<bool> flag{false};
    return flag;
  }
  static std::atomic<std::int64_t>& live() {
    static std::atomic<std::int64_t> bytes{0};
    return bytes;
  }
  static std::atomic<std::size_t>& limit() {
    static std::atomic<std::size_t> bytes{0};
    return bytes;
  }

#ifdef IQDB_FUZZ_COUNT_ALLOCATIONS
  static void on_malloc(const volatile void*, std::size_t size) {
    if (!active().load(std::memory_order_relaxed)) return;
    const std::int64_t now =
        live().fetch_add(static_cast<std::int64_t>(size)) + static_cast<std::int64_t>(size);
    if (now > static_cast<std::int64_t>(limit().load())) {
      active().store(false);
      std::fprintf(stderr, "allocation budget exceeded: %lld bytes live, the limit is %zu\n",
                   static_cast<long long>(now), limit().load());
      std::abort();
    }
  }
  // Frees of blocks allocated before the budget began make `live` dip below
  // zero; that only loosens the bound by the size of those blocks.
  static void on_free(const volatile void* block) {
    if (!active().load(std::memory_order_relaxed) || block == nullptr) return;
    live().fetch_sub(static_cast<std::int64_t>(__sanitizer_get_allocated_size(block)));
  }
#endif
};

}  // namespace iqdb::persist::fuzz

#endif  // IQDB_PERSIST_FUZZ_ALLOCATION_BUDGET_H_
