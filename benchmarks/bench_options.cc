#include "bench_options.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <string_view>

namespace iqdb::bench {
namespace {

// Parses a whole decimal number in [min, max]; nullopt otherwise.
std::optional<std::uint64_t> parse_count(std::string_view text, std::uint64_t min,
                                         std::uint64_t max) {
  std::uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value < min || value > max) {
    return std::nullopt;
  }
  return value;
}

}  // namespace

std::string options_help() {
  return "iqdb_persist_bench options (before or among the --benchmark_* flags):\n"
         "  --vectors=N        vectors in the main snapshot (default 1000000)\n"
         "  --small-vectors=N  vectors in the snapshot for the flatness check (default N/10)\n"
         "  --dim=D            vector dimension (default 128)\n"
         "  --data-dir=DIR     where snapshots are kept and reused across runs\n"
         "  --check            exit 1 when a ratio target is missed or none was checked\n";
}

std::optional<BenchOptions> parse_options(int& argc, char** argv,
                                          const std::filesystem::path& default_data_dir) {
  BenchOptions options;
  options.data_dir = default_data_dir;
  std::optional<std::uint64_t> small;
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const auto value_of = [&](std::string_view flag) -> std::optional<std::string_view> {
      if (!arg.starts_with(flag) || arg.size() <= flag.size() || arg[flag.size()] != '=') {
        return std::nullopt;
      }
      return arg.substr(flag.size() + 1);
    };
    const auto bad = [&] {
      std::fprintf(stderr, "iqdb_persist_bench: bad option '%s'\n%s", argv[i],
                   options_help().c_str());
      return std::nullopt;
    };
    if (const auto text = value_of("--vectors")) {
      const auto value = parse_count(*text, 1, std::uint64_t{1} << 34);
      if (!value) return bad();
      options.vectors = *value;
    } else if (const auto small_text = value_of("--small-vectors")) {
      small = parse_count(*small_text, 1, std::uint64_t{1} << 34);
      if (!small) return bad();
    } else if (const auto dim_text = value_of("--dim")) {
      const auto value = parse_count(*dim_text, 1, 1u << 16);
      if (!value) return bad();
      options.dim = static_cast<std::uint32_t>(*value);
    } else if (const auto dir = value_of("--data-dir")) {
      if (dir->empty()) return bad();
      options.data_dir = std::filesystem::path(*dir);
    } else if (arg == "--check") {
      options.check = true;
    } else {
      if (arg.starts_with("--benchmark_min_time=")) options.save_min_time = 0;
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  argv[argc] = nullptr;
  options.small_vectors = small.value_or(std::max<std::uint64_t>(1, options.vectors / 10));
  return options;
}

}  // namespace iqdb::bench
