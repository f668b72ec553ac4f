#include "util/parallel_crc.h"

#include <algorithm>
#include <atomic>
#include <system_error>
#include <thread>

#include "util/crc32.h"

namespace iqdb::persist {
namespace {

struct Piece {
  std::size_t range = 0;
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
};

std::vector<Piece> cut_into_pieces(std::span<const ByteRange> ranges) {
  std::vector<Piece> pieces;
  for (std::size_t r = 0; r < ranges.size(); ++r) {
    std::uint64_t offset = ranges[r].offset;
    std::uint64_t left = ranges[r].length;
    do {
      const std::uint64_t length = std::min(left, kCrcPieceSize);
      pieces.push_back({r, offset, length});
      offset += length;
      left -= length;
    } while (left > 0);
  }
  return pieces;
}

// Shared state of one crc32_ranges() call.
class CrcJob {
 public:
  CrcJob(std::span<const std::byte> bytes, std::vector<Piece> pieces, const std::atomic<bool>* stop)
      : bytes_(bytes), pieces_(std::move(pieces)), crcs_(pieces_.size()), stop_(stop) {}

  // Computes the next unclaimed piece; false when none is left (or stopped).
  bool run_one() {
    if (stopped()) return false;
    const std::size_t i = next_.fetch_add(1, std::memory_order_relaxed);
    if (i >= pieces_.size()) return false;
    const Piece& piece = pieces_[i];
    crcs_[i] = crc32(bytes_.subspan(static_cast<std::size_t>(piece.offset),
                                    static_cast<std::size_t>(piece.length)));
    done_.fetch_add(piece.length, std::memory_order_relaxed);
    return true;
  }

  void run_all() {
    while (run_one()) {
    }
  }

  bool stopped() const { return stop_ != nullptr && stop_->load(std::memory_order_relaxed); }
  std::uint64_t done() const { return done_.load(std::memory_order_relaxed); }
  std::size_t piece_count() const { return pieces_.size(); }

  std::vector<std::uint32_t> combine(std::size_t range_count) const {
    std::vector<std::uint32_t> result(range_count, 0);
    for (std::size_t i = 0; i < pieces_.size(); ++i) {
      auto& crc = result[pieces_[i].range];
      crc = crc32_combine(crc, crcs_[i], pieces_[i].length);
    }
    return result;
  }

 private:
  std::span<const std::byte> bytes_;
  std::vector<Piece> pieces_;
  std::vector<std::uint32_t> crcs_;
  const std::atomic<bool>* stop_;
  std::atomic<std::size_t> next_{0};
  std::atomic<std::uint64_t> done_{0};
};

}  // namespace

unsigned resolve_thread_count(unsigned requested) {
  if (requested != 0) return requested;
  return std::max(1u, std::thread::hardware_concurrency());
}

std::vector<std::uint32_t> crc32_ranges(std::span<const std::byte> bytes,
                                        std::span<const ByteRange> ranges, unsigned threads,
                                        const ProgressCallback& progress,
                                        std::chrono::milliseconds interval,
                                        const std::atomic<bool>* stop) {
  std::uint64_t total = 0;
  for (const ByteRange& range : ranges) total += range.length;
  CrcJob job(bytes, cut_into_pieces(ranges), stop);

  // Helper threads besides the caller; none when there is nothing to do.
  const std::size_t used = std::min<std::size_t>(resolve_thread_count(threads), job.piece_count());
  const std::size_t helpers = used > 0 ? used - 1 : 0;
  std::vector<std::thread> workers;
  workers.reserve(helpers);
  for (std::size_t i = 0; i < helpers; ++i) {
    try {
      workers.emplace_back([&job] { job.run_all(); });
    } catch (const std::system_error&) {
      break;  // Fewer threads than asked for: the caller still finishes the job.
    }
  }
  auto last_report = std::chrono::steady_clock::now();
  while (job.run_one()) {
    if (progress && std::chrono::steady_clock::now() - last_report >= interval) {
      progress(job.done(), total);
      last_report = std::chrono::steady_clock::now();
    }
  }
  for (std::thread& worker : workers) worker.join();
  if (job.stopped()) return {};
  if (progress) progress(total, total);
  return job.combine(ranges.size());
}

}  // namespace iqdb::persist
