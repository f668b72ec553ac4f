#include "snapshot/section_decoder.h"

#include <atomic>
#include <cstring>
#include <mutex>
#include <optional>

#include <fmt/format.h>

#include "snapshot/section_codec.h"
#include "util/anonymous_region.h"
#include "util/crc32.h"
#include "util/parallel_crc.h"
#include "util/parallel_for.h"

namespace iqdb::persist {
namespace {

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
  const std::string where = chunk_context(path, section, job.chunk, job.offset);
  const std::uint32_t expected = section.chunks[job.chunk].crc32;
  const std::uint32_t found = crc32(job.stored);
  if (found != expected) {
    return fail(ErrorKind::ChecksumMismatch,
                fmt::format("{}: CRC32 expected 0x{:08x}, found 0x{:08x}", where, expected, found));
  }
  if (job.stored.size() == job.out.size()) {  // stored raw within the compressed section
    std::memcpy(job.out.data(), job.stored.data(), job.out.size());
    return success();
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

std::string chunk_context(const std::string& path, const SectionInfo& section, std::size_t chunk,
                          std::uint64_t offset) {
  return fmt::format("{}: section '{}' chunk {} (offset {}, {} bytes)", path, section.name, chunk,
                     offset, section.chunks[chunk].stored_length);
}

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
