#include "output/progress.h"

#include <unistd.h>

#include <cstdio>

#include <fmt/format.h>

#include "output/text_format.h"

namespace iqdb::tools {

namespace {
constexpr auto kRedrawInterval = std::chrono::milliseconds(100);
}  // namespace

ProgressLine::ProgressLine(std::string label)
    : label_(std::move(label)), terminal_(::isatty(STDERR_FILENO) == 1) {}

void ProgressLine::start(std::uint64_t total_bytes) {
  if (!terminal_ || total_bytes < kMinBytesWorthShowing) return;
  draw(label_ + " ...");
}

void ProgressLine::update(std::uint64_t done_bytes, std::uint64_t total_bytes) {
  if (!terminal_ || total_bytes < kMinBytesWorthShowing) return;
  const auto now = Clock::now();
  if (drawn_width_ > 0 && now - last_draw_ < kRedrawInterval) return;
  last_draw_ = now;
  const double seconds = std::chrono::duration<double>(now - start_).count();
  const double percent = 100.0 * static_cast<double>(done_bytes) / static_cast<double>(total_bytes);
  const double rate = seconds > 0 ? static_cast<double>(done_bytes) / seconds / 1e9 : 0.0;
  draw(fmt::format("{}  {} of {}  {:5.1f}%  {:.2f} GB/s", label_, format_bytes(done_bytes),
                   format_bytes(total_bytes), percent, rate));
}

void ProgressLine::draw(const std::string& line) {
  // Pad over the previous, possibly longer, line instead of relying on ANSI codes.
  const std::size_t padding = drawn_width_ > line.size() ? drawn_width_ - line.size() : 0;
  fmt::print(stderr, "\r{}{}", line, std::string(padding, ' '));
  std::fflush(stderr);
  drawn_width_ = line.size();
}

void ProgressLine::clear() {
  if (drawn_width_ == 0) return;
  fmt::print(stderr, "\r{}\r", std::string(drawn_width_, ' '));
  std::fflush(stderr);
  drawn_width_ = 0;
}

}  // namespace iqdb::tools
