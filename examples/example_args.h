// The command line of the example programs: "[FILE]", or --help / -h.
// Header-only so that each example stays one file plus the flat index.
#ifndef IQDB_EXAMPLES_EXAMPLE_ARGS_H_
#define IQDB_EXAMPLES_EXAMPLE_ARGS_H_

#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

namespace iqdb::examples {

// What main() should do: run on `path`, or exit at once with `exit_status`.
struct ExampleArgs {
  std::string path;
  std::optional<int> exit_status;
};

// Parses "[--] [FILE]" (default `default_path`). --help / -h print `usage`
// to stdout (exit 0). Any other argument starting with '-' (before "--"), or
// a second FILE, is refused on stderr (exit 2): a mistyped option must never
// become the name of a database file.
inline ExampleArgs parse_example_args(int argc, char** argv, std::string_view usage,
                                      std::string_view default_path) {
  ExampleArgs args;
  bool options_done = false;
  bool have_path = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (!options_done && (arg == "--help" || arg == "-h")) {
      std::fputs(std::string(usage).c_str(), stdout);
      args.exit_status = 0;
      return args;
    }
    if (!options_done && arg == "--") {
      options_done = true;
      continue;
    }
    if ((!options_done && arg.starts_with('-')) || have_path) {
      std::fprintf(stderr, "%s: unexpected argument '%s'\n%s", argv[0], argv[i],
                   std::string(usage).c_str());
      args.exit_status = 2;
      return args;
    }
    args.path = arg;
    have_path = true;
  }
  if (!have_path) args.path = default_path;
  return args;
}

}  // namespace iqdb::examples

#endif  // IQDB_EXAMPLES_EXAMPLE_ARGS_H_
