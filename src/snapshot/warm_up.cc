#include "snapshot/warm_up.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include <fmt/format.h>

namespace iqdb::persist {
namespace {

constexpr std::uint64_t kHugePageSize = std::uint64_t{2} << 20;

std::size_t page_size() { return static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)); }

// The whole pages spanning `bytes` (which starts on a page boundary here:
// sections are at least page aligned, decoded memory is page aligned).
std::pair<void*, std::size_t> pages_of(std::span<const std::byte> bytes) {
  const std::size_t page = page_size();
  const std::size_t length = (bytes.size() + page - 1) / page * page;
  return {const_cast<std::byte*>(bytes.data()), length};
}

// Reads one byte per page, so that every page is faulted in. Stops early when
// `stop` becomes true.
void touch_pages(std::span<const std::byte> bytes, const std::atomic<bool>* stop = nullptr) {
  const std::size_t page = page_size();
  unsigned char sink = 0;
  for (std::size_t at = 0; at < bytes.size(); at += page) {
    if (stop != nullptr && (at / page) % 256 == 0 && stop->load(std::memory_order_relaxed)) return;
    sink ^= static_cast<unsigned char>(*static_cast<const volatile std::byte*>(&bytes[at]));
  }
  static std::atomic<unsigned char> keep;
  keep.store(sink, std::memory_order_relaxed);
}

void populate(std::span<const std::byte> bytes) {
#ifdef MADV_POPULATE_READ
  const auto [address, length] = pages_of(bytes);
  if (::madvise(address, length, MADV_POPULATE_READ) == 0) return;
#endif
  touch_pages(bytes);  // kernels before 5.14
}

WarmUp warm_up_for(const WarmUpSettings& settings, const std::string& name) {
  for (const auto& [section, mode] : settings.sections) {
    if (section == name) return mode;
  }
  return settings.mode;
}

Result<void> lock(std::span<const std::byte> bytes, std::string_view path,
                  const std::string& name) {
  const auto [address, length] = pages_of(bytes);
  if (::mlock(address, length) == 0) return success();
  return fail(ErrorKind::Io,
              fmt::format("{}: section '{}': mlock of {} bytes failed: {} (WarmUp::Lock needs "
                          "RLIMIT_MEMLOCK, `ulimit -l`, of at least the section's size)",
                          path, name, length, std::strerror(errno)));
}

}  // namespace

Prefetcher::Prefetcher(std::vector<std::span<const std::byte>> ranges) {
  try {
    thread_ = std::thread([this, ranges = std::move(ranges)] {
      for (const auto& range : ranges) touch_pages(range, &stop_);
    });
  } catch (const std::system_error&) {
    // No thread: the pages fault in on first use, as with WarmUp::Lazy.
  }
}

Prefetcher::~Prefetcher() {
  stop_.store(true, std::memory_order_relaxed);
  if (thread_.joinable()) thread_.join();
}

Result<std::unique_ptr<Prefetcher>> warm_up_sections(
    std::span<const std::byte> file, const FileHeader& header,
    const std::vector<std::span<const std::byte>>& decoded, const WarmUpSettings& settings,
    std::string_view path) {
  std::vector<std::span<const std::byte>> prefetch;
  for (std::size_t i = 0; i < header.sections.size(); ++i) {
    const SectionInfo& section = header.sections[i];
    const bool raw = section.compression == SectionCompression::None;
    const auto bytes = raw ? file.subspan(section.offset, section.stored_length) : decoded[i];
    if (bytes.empty()) continue;
    const auto [address, length] = pages_of(bytes);
    // (Decoded sections got theirs before they were written.)
    if (settings.huge_pages && raw && section.alignment >= kHugePageSize) {
      (void)::madvise(address, length, MADV_HUGEPAGE);  // advice: the kernel may decline
    }
    switch (warm_up_for(settings, section.name)) {
      case WarmUp::Lazy: break;
      case WarmUp::WillNeed: (void)::madvise(address, length, MADV_WILLNEED); break;
      case WarmUp::Populate: populate(bytes); break;
      case WarmUp::Prefetch: prefetch.push_back(bytes); break;
      case WarmUp::Lock:
        populate(bytes);
        IQDB_TRY(lock(bytes, path, section.name));
        break;
    }
  }
  if (prefetch.empty()) return std::unique_ptr<Prefetcher>();
  return std::make_unique<Prefetcher>(std::move(prefetch));
}

}  // namespace iqdb::persist
