#include "section_decoder.h"

#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <optional>

#include <fmt/format.h>

#include "crc32.h"
#include "parallel_crc.h"
#include "parallel_for.h"
#include "section_codec.h"

namespace iqdb::persist {
namespace {

constexpr std::uint64_t kHugePageSize = std::uint64_t{2} << 20;

// A private anonymous mapping of `length` bytes starting at a multiple of
// `alignment` (a power of two): the mapping is made larger, then trimmed.
class AnonymousRegion {
 public:
  static Result<std::unique_ptr<AnonymousRegion>> create(std::uint64_t length,
                                                         std::uint64_t alignment,
                                                         const std::string& context) {
    // A region of 2 MiB or more is made of whole 2 MiB huge pages (aligned
    // and rounded up, then advised MADV_HUGEPAGE): it is written in full at
    // once, and 4 KiB pages would cost a page fault per 4 KiB decoded (a
    // quarter of an LZ4 load's time), for at most 2 MiB of slack.
    const std::uint64_t page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
    const bool huge = length >= kHugePageSize;
    const std::uint64_t unit = huge ? kHugePageSize : page;
    alignment = std::max(alignment, unit);
    const std::uint64_t rounded = (length + unit - 1) / unit * unit;
    if (rounded > SIZE_MAX - alignment) {
      return fail(ErrorKind::Io, fmt::format("{}: {} bytes cannot be mapped", context, length));
    }
    const std::size_t reserved = static_cast<std::size_t>(rounded + alignment);
    void* base = ::mmap(nullptr, reserved, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) {
      return fail(ErrorKind::Io, fmt::format("{}: cannot map {} bytes of memory: {}", context,
                                             length, std::strerror(errno)));
    }
    // Trim the reservation to [aligned, aligned + rounded).
    const std::size_t misalignment = reinterpret_cast<std::uintptr_t>(base) & (alignment - 1);
    const std::size_t lead = misalignment == 0 ? 0 : alignment - misalignment;
    std::byte* aligned = static_cast<std::byte*>(base) + lead;
    if (lead > 0) ::munmap(base, lead);
    const std::size_t tail = reserved - lead - rounded;
    if (tail > 0) ::munmap(aligned + rounded, tail);
    if (huge) (void)::madvise(aligned, rounded, MADV_HUGEPAGE);  // advice: the kernel may decline
    return std::unique_ptr<AnonymousRegion>(new AnonymousRegion(
        aligned, static_cast<std::size_t>(length), static_cast<std::size_t>(rounded)));
  }

  ~AnonymousRegion() {
    if (mapped_ > 0) ::munmap(data_, mapped_);
  }
  AnonymousRegion(const AnonymousRegion&) = delete;
  AnonymousRegion& operator=(const AnonymousRegion&) = delete;

  std::span<std::byte> bytes() const { return {data_, length_}; }
  // After decoding: a stray write through a cast crashes, as on the file mapping.
  void make_read_only() const {
    if (mapped_ > 0) ::mprotect(data_, mapped_, PROT_READ);
  }

 private:
  AnonymousRegion(std::byte* data, std::size_t length, std::size_t mapped)
      : data_(data), length_(length), mapped_(mapped) {}

  std::byte* data_;
  std::size_t length_;
  std::size_t mapped_;
};

using Regions = std::vector<std::unique_ptr<AnonymousRegion>>;

// One chunk to check and decode.
struct ChunkJob {
  const SectionInfo* section = nullptr;
  std::size_t chunk = 0;
  std::uint64_t offset = 0;  // of the stored bytes in the file
  std::span<const std::byte> stored;
  std::span<std::byte> out;
};

Result<void> check_and_decode(const ChunkJob& job, const std::string& path) {
  const SectionInfo& section = *job.section;
  const std::string where = fmt::format("{}: section '{}' chunk {} (offset {}, {} bytes)", path,
                                        section.name, job.chunk, job.offset, job.stored.size());
  const std::uint32_t expected = section.chunks[job.chunk].crc32;
  const std::uint32_t found = crc32(job.stored);
  if (found != expected) {
    return fail(ErrorKind::ChecksumMismatch,
                fmt::format("{}: CRC32 expected 0x{:08x}, found 0x{:08x}", where, expected, found));
  }
  if (job.stored.size() == job.out.size()) {  // stored raw within the compressed section
    std::memcpy(job.out.data(), job.stored.data(), job.out.size());
    return boost::outcome_v2::success();
  }
  return decode_chunk(section.compression, job.stored, job.out, where);
}

// The jobs of one section of the mapped `file`, decoding into `out`.
void add_jobs(const SectionInfo& section, std::span<const std::byte> file, std::span<std::byte> out,
              std::vector<ChunkJob>& jobs) {
  std::uint64_t stored_at = section.offset;
  for (std::size_t i = 0; i < section.chunks.size(); ++i) {
    const std::uint64_t length = section.chunks[i].stored_length;
    const std::uint64_t logical = section.chunk_logical_length(i);
    jobs.push_back({&section, i, stored_at, file.subspan(stored_at, length),
                    out.subspan(i * section.chunk_size, logical)});
    stored_at += length;
  }
}

}  // namespace

Result<DecodedSections> decode_compressed_sections(std::span<const std::byte> file,
                                                   const FileHeader& header,
                                                   const std::string& path, unsigned threads) {
  DecodedSections decoded;
  decoded.bytes.resize(header.sections.size());
  auto regions = std::make_shared<Regions>();
  std::vector<ChunkJob> jobs;
  for (std::size_t s = 0; s < header.sections.size(); ++s) {
    const SectionInfo& section = header.sections[s];
    if (section.compression == SectionCompression::None) continue;
    const std::string context = fmt::format("{}: section '{}'", path, section.name);
    IQDB_TRY(check_codec_available(section.compression, context));
    IQDB_TRY_ASSIGN(auto region,
                    AnonymousRegion::create(section.logical_length, section.alignment, context));
    add_jobs(section, file, region->bytes(), jobs);
    decoded.bytes[s] = region->bytes();
    decoded.stored_bytes += section.stored_length;
    decoded.decoded_bytes += section.logical_length;
    regions->push_back(std::move(region));
  }
  if (jobs.empty()) return decoded;

  // The first failing chunk in table order is reported, whatever the threads' timing.
  std::mutex mutex;
  std::optional<std::size_t> failed_at;
  std::optional<PersistError> failure;
  std::atomic<bool> failed{false};
  parallel_for(jobs.size(), resolve_thread_count(threads), [&](std::size_t i) {
    if (failed.load(std::memory_order_relaxed)) return;
    auto result = check_and_decode(jobs[i], path);
    if (result) return;
    std::lock_guard lock(mutex);
    if (!failed_at || i < *failed_at) {
      failed_at = i;
      failure = result.error();
    }
    failed.store(true, std::memory_order_relaxed);
  });
  if (failure) return *failure;
  for (const auto& region : *regions) region->make_read_only();
  decoded.memory = std::move(regions);
  return decoded;
}

}  // namespace iqdb::persist
