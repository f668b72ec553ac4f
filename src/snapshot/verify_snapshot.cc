#include "iqdb/persist/verify_snapshot.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include <fmt/format.h>

#include "iqdb/persist/file_system.h"
#include "snapshot/header_codec.h"
#include "snapshot/section_codec.h"
#include "snapshot/section_decoder.h"
#include "snapshot/verify_snapshot.h"
#include "util/crc32.h"
#include "util/parallel_for.h"

namespace iqdb::persist {
namespace {

// Offset of the first non-zero byte of `bytes`, or bytes.size().
std::size_t first_nonzero(std::span<const std::byte> bytes) {
  static constexpr std::array<std::byte, 4096> kZeros{};
  std::size_t checked = 0;
  while (checked < bytes.size()) {
    const std::size_t n = std::min(kZeros.size(), bytes.size() - checked);
    if (std::memcmp(bytes.data() + checked, kZeros.data(), n) != 0) {
      const auto block = bytes.subspan(checked, n);
      return checked +
             static_cast<std::size_t>(std::find_if(block.begin(), block.end(),
                                                   [](std::byte b) { return b != std::byte{0}; }) -
                                      block.begin());
    }
    checked += n;
  }
  return bytes.size();
}

// Everything outside the prefix, the header and the sections must be zero.
Result<void> check_padding(std::span<const std::byte> file, const FileHeader& header,
                           const std::string& path) {
  std::vector<ByteRange> used = {{0, format::kPrefixSize},
                                 {header.header_offset, header.header_length}};
  for (const SectionInfo& section : header.sections) {
    used.push_back({section.offset, section.stored_length});
  }
  std::sort(used.begin(), used.end(),
            [](const ByteRange& a, const ByteRange& b) { return a.offset < b.offset; });
  std::uint64_t cursor = 0;
  for (const ByteRange& range : used) {
    if (range.offset > cursor) {
      const auto gap = file.subspan(static_cast<std::size_t>(cursor),
                                    static_cast<std::size_t>(range.offset - cursor));
      const std::size_t at = first_nonzero(gap);
      if (at != gap.size()) {
        return fail(ErrorKind::InvalidPayload,
                    fmt::format("{}: padding byte at offset {} is 0x{:02x}, expected zero", path,
                                cursor + at, static_cast<unsigned>(gap[at])));
      }
    }
    cursor = std::max(cursor, range.offset + range.length);
  }
  return success();
}

// Each chunk table's CRCs, combined in order, must make its section's CRC.
// Checked here rather than when the header is decoded: a combination costs
// about 0.1 us per chunk, which would double a 1,000-chunk Skip load.
Result<void> check_chunk_crcs(const FileHeader& header, const std::string& path) {
  for (const SectionInfo& section : header.sections) {
    if (section.chunks.empty()) continue;
    std::uint32_t crc = 0;
    for (const SectionChunk& chunk : section.chunks) {
      crc = crc32_combine(crc, chunk.crc32, chunk.stored_length);
    }
    if (crc != section.crc32) {
      return fail(ErrorKind::InvalidHeader,
                  fmt::format("{}: section '{}' chunk table: chunk CRCs combine to 0x{:08x}, the "
                              "section's CRC32 is 0x{:08x}",
                              path, section.name, crc, section.crc32));
    }
  }
  return success();
}

// One compressed chunk to decode.
struct DecodeJob {
  const SectionInfo* section = nullptr;
  std::size_t chunk = 0;
  std::uint64_t offset = 0;  // of its stored bytes in the file
};

std::vector<DecodeJob> decode_jobs(const FileHeader& header) {
  std::vector<DecodeJob> jobs;
  for (const SectionInfo& section : header.sections) {
    if (section.compression == SectionCompression::None) continue;
    std::uint64_t offset = section.offset;
    for (std::size_t i = 0; i < section.chunks.size(); ++i) {
      // A chunk as long as its logical length is stored raw: nothing to decode.
      if (section.chunks[i].stored_length != section.chunk_logical_length(i)) {
        jobs.push_back({&section, i, offset});
      }
      offset += section.chunks[i].stored_length;
    }
  }
  return jobs;
}

// A CRC only says the bytes are those written: a chunk must also decode to
// exactly its logical length, or a load fails. Decodes each into scratch
// memory (a chunk at a time per thread, not the whole section), with the
// load's decoder and context, so the error is the one a load would report.
Result<void> check_compressed_chunks_decode(std::span<const std::byte> file,
                                            const FileHeader& header, const std::string& path,
                                            unsigned threads) {
  const std::vector<DecodeJob> jobs = decode_jobs(header);
  std::mutex mutex;
  std::optional<std::size_t> failed_at;  // the first failing chunk in table order wins
  std::optional<PersistError> failure;
  parallel_for(jobs.size(), resolve_thread_count(threads), [&](std::size_t i) {
    const DecodeJob& job = jobs[i];
    const SectionInfo& section = *job.section;
    const auto stored = file.subspan(job.offset, section.chunks[job.chunk].stored_length);
    const auto logical = static_cast<std::size_t>(section.chunk_logical_length(job.chunk));
    const auto out = std::make_unique_for_overwrite<std::byte[]>(logical);
    auto decoded = decode_chunk(section.compression, stored, {out.get(), logical},
                                chunk_context(path, section, job.chunk, job.offset));
    if (decoded) return;
    std::lock_guard lock(mutex);
    if (!failed_at || i < *failed_at) {
      failed_at = i;
      failure = decoded.error();
    }
  });
  if (failure) return *failure;
  return success();
}

}  // namespace

std::uint64_t bytes_to_verify(const FileHeader& header, bool check_compressed) {
  std::uint64_t total = 0;
  for (const SectionInfo& section : header.sections) {
    if (check_compressed || section.compression == SectionCompression::None) {
      total += section.stored_length;
    }
  }
  return total;
}

Result<std::uint64_t> verify_mapped_snapshot(std::span<const std::byte> file,
                                             const FileHeader& header, const std::string& path,
                                             const VerifyPassOptions& options) {
  IQDB_TRY(check_chunk_crcs(header, path));
  IQDB_TRY(check_padding(file, header, path));
  // One range per chunk (per section without a chunk table), so that damage
  // is reported by chunk.
  struct Checked {
    const SectionInfo* section;
    std::optional<std::size_t> chunk;
    std::uint32_t crc;
  };
  std::vector<ByteRange> ranges;
  std::vector<Checked> checked;
  for (const SectionInfo& section : header.sections) {
    if (!options.check_compressed && section.compression != SectionCompression::None) continue;
    if (section.chunks.empty()) {
      ranges.push_back({section.offset, section.stored_length});
      checked.push_back({&section, std::nullopt, section.crc32});
      continue;
    }
    std::uint64_t offset = section.offset;
    for (std::size_t i = 0; i < section.chunks.size(); ++i) {
      ranges.push_back({offset, section.chunks[i].stored_length});
      checked.push_back({&section, i, section.chunks[i].crc32});
      offset += section.chunks[i].stored_length;
    }
  }
  const auto crcs = crc32_ranges(file, ranges, options.threads, options.progress,
                                 options.progress_interval, options.stop);
  if (options.stop != nullptr && options.stop->load()) {
    return fail(ErrorKind::Io, fmt::format("{}: verification stopped", path));
  }
  for (std::size_t i = 0; i < crcs.size(); ++i) {
    if (crcs[i] == checked[i].crc) continue;
    const SectionInfo& section = *checked[i].section;
    const std::string what =
        checked[i].chunk ? fmt::format("section '{}' chunk {}", section.name, *checked[i].chunk)
                         : fmt::format("section '{}'", section.name);
    return fail(
        ErrorKind::ChecksumMismatch,
        fmt::format("{}: {} (offset {}, {} bytes): CRC32 expected 0x{:08x}, found 0x{:08x}", path,
                    what, ranges[i].offset, ranges[i].length, checked[i].crc, crcs[i]));
  }
  if (options.check_compressed) {
    IQDB_TRY(check_compressed_chunks_decode(file, header, path, options.threads));
  }
  return bytes_to_verify(header, options.check_compressed);
}

Result<VerifyReport> verify_snapshot(const std::filesystem::path& path,
                                     const VerifyOptions& options) {
  IQDB_TRY_ASSIGN(auto file, file_system_or_default(options.file_system).open_readable(path));
  IQDB_TRY_ASSIGN(auto header, read_header(*file));
  IQDB_TRY_ASSIGN(auto mapping, file->map());
  const auto started = std::chrono::steady_clock::now();
  VerifyPassOptions pass;
  pass.threads = options.threads;
  pass.progress = options.progress;
  pass.progress_interval = options.progress_interval;
  IQDB_TRY_ASSIGN(auto bytes_checked,
                  verify_mapped_snapshot(mapping->bytes(), header, path.string(), pass));
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - started;
  return VerifyReport{std::move(header), bytes_checked, elapsed.count()};
}

}  // namespace iqdb::persist
