#include "util/anonymous_region.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <optional>
#include <vector>

#include <fmt/format.h>

namespace iqdb::persist {
namespace {

constexpr std::uint64_t kHugePageSize = std::uint64_t{2} << 20;

struct Mapping {
  std::byte* data = nullptr;
  std::size_t size = 0;
};

// Released mappings, oldest first: at most kRegionCacheCapacity bytes in at
// most kRegionCacheSlots mappings.
class RegionCache {
 public:
  // The cached mapping that fits `size` bytes at `alignment` best: the
  // smallest of at least `size` and at most a quarter more (the newest of
  // equals: its pages are the likeliest still to be there), trimmed to `size`.
  std::optional<Mapping> take(std::size_t size, std::size_t alignment) {
    std::optional<Mapping> found;
    {
      std::lock_guard lock(mutex_);
      auto best = kept_.end();
      for (auto it = kept_.begin(); it != kept_.end(); ++it) {
        const bool aligned = (reinterpret_cast<std::uintptr_t>(it->data) & (alignment - 1)) == 0;
        if (!aligned || it->size < size || it->size - size > size / 4) continue;
        if (best == kept_.end() || it->size <= best->size) best = it;
      }
      if (best == kept_.end()) return std::nullopt;
      found = *best;
      kept_bytes_ -= best->size;
      kept_.erase(best);
    }
    if (found->size > size) ::munmap(found->data + size, found->size - size);
    if (::mprotect(found->data, size, PROT_READ | PROT_WRITE) != 0) {
      ::munmap(found->data, size);
      return std::nullopt;
    }
    return Mapping{found->data, size};
  }

  // Keeps `mapping` (unmapping the oldest ones to make room), or unmaps it
  // when it is larger than the cache or the kernel cannot take it back lazily.
  void give(Mapping mapping) {
    if (mapping.size > kRegionCacheCapacity ||
        ::madvise(mapping.data, mapping.size, MADV_FREE) != 0) {
      ::munmap(mapping.data, mapping.size);
      return;
    }
    std::vector<Mapping> evicted;
    {
      std::lock_guard lock(mutex_);
      kept_.push_back(mapping);
      kept_bytes_ += mapping.size;
      while (kept_bytes_ > kRegionCacheCapacity || kept_.size() > kRegionCacheSlots) {
        evicted.push_back(kept_.front());
        kept_bytes_ -= kept_.front().size;
        kept_.erase(kept_.begin());
      }
    }
    for (const Mapping& old : evicted) ::munmap(old.data, old.size);
  }

 private:
  std::mutex mutex_;
  std::vector<Mapping> kept_;
  std::size_t kept_bytes_ = 0;
};

RegionCache& region_cache() {
  // Never destroyed: a snapshot may be closed during static destruction.
  static auto* cache = new RegionCache;
  return *cache;
}

// A fresh mapping of `size` bytes at a multiple of `alignment`: a larger
// reservation, trimmed.
Result<Mapping> map_fresh(std::size_t size, std::size_t alignment, const std::string& context) {
  const std::size_t reserved = size + alignment;
  void* base = ::mmap(nullptr, reserved, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) {
    return fail(ErrorKind::Io, fmt::format("{}: cannot map {} bytes of memory: {}", context, size,
                                           std::strerror(errno)));
  }
  const std::size_t misalignment = reinterpret_cast<std::uintptr_t>(base) & (alignment - 1);
  const std::size_t lead = misalignment == 0 ? 0 : alignment - misalignment;
  std::byte* aligned = static_cast<std::byte*>(base) + lead;
  if (lead > 0) ::munmap(base, lead);
  const std::size_t tail = reserved - lead - size;
  if (tail > 0) ::munmap(aligned + size, tail);
  return Mapping{aligned, size};
}

}  // namespace

Result<std::unique_ptr<AnonymousRegion>> AnonymousRegion::create(std::uint64_t length,
                                                                 std::uint64_t alignment,
                                                                 const std::string& context) {
  const std::uint64_t page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  const bool huge = length >= kHugePageSize;
  const std::uint64_t unit = huge ? kHugePageSize : page;
  alignment = std::max(alignment, unit);
  const std::uint64_t rounded = (length + unit - 1) / unit * unit;
  if (rounded > SIZE_MAX - alignment) {
    return fail(ErrorKind::Io, fmt::format("{}: {} bytes cannot be mapped", context, length));
  }
  const auto size = static_cast<std::size_t>(rounded);
  std::optional<Mapping> mapping;
  if (size > 0) mapping = region_cache().take(size, static_cast<std::size_t>(alignment));
  if (!mapping) {
    IQDB_TRY_ASSIGN(mapping, map_fresh(size, static_cast<std::size_t>(alignment), context));
    if (huge) (void)::madvise(mapping->data, size, MADV_HUGEPAGE);  // the kernel may decline
  }
  return std::unique_ptr<AnonymousRegion>(
      new AnonymousRegion(mapping->data, static_cast<std::size_t>(length), size));
}

AnonymousRegion::~AnonymousRegion() {
  if (mapped_ > 0) region_cache().give({data_, mapped_});
}

void AnonymousRegion::make_read_only() const {
  if (mapped_ > 0) ::mprotect(data_, mapped_, PROT_READ);
}

}  // namespace iqdb::persist
