// iqdb-persist: inspect, verify, compact and demonstrate iqdb-persist snapshots,
// follow a database as a replica, serve a snapshot from shared memory (publish,
// attach, unpublish), and torture-test crash consistency.
// This file only wires the command line (CLI11) to the commands.
#include <cctype>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <limits>
#include <string>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "attach_command.h"
#include "compact_command.h"
#include "demo/demo_command.h"
#include "follow_command.h"
#include "inspect_command.h"
#include "iqdb/persist/version.h"
#include "output/exit_status.h"
#include "publish_command.h"
#include "torture/torture_command.h"
#include "unpublish_command.h"
#include "verify_command.h"
#include "wal_command.h"

namespace {

using iqdb::persist::Compression;
using iqdb::tools::AttachCommandOptions;
using iqdb::tools::CompactOptions;
using iqdb::tools::DemoOptions;
using iqdb::tools::FollowOptions;
using iqdb::tools::InspectOptions;
using iqdb::tools::PublishCommandOptions;
using iqdb::tools::TortureOptions;
using iqdb::tools::UnpublishOptions;
using iqdb::tools::VerifyCommandOptions;
using iqdb::tools::WalCommandOptions;

constexpr unsigned kMaxThreads = 1024;
constexpr std::uint64_t kMaxPollMs = 3'600'000;  // an hour
// Durations in seconds stay far below what a std::chrono clock can add (about
// 292 years in nanoseconds): 10^9 seconds is 31 years.
constexpr std::uint64_t kMaxSeconds = 1'000'000'000;

// Accepts a decimal whole number in [low, high], with a message that says so.
CLI::Validator whole_number(std::uint64_t low,
                            std::uint64_t high = std::numeric_limits<std::uint64_t>::max()) {
  const std::string range = high == std::numeric_limits<std::uint64_t>::max()
                                ? fmt::format("of at least {}", low)
                                : fmt::format("from {} to {}", low, high);
  return CLI::Validator(
      [low, high, range](std::string& text) -> std::string {
        std::uint64_t value = 0;
        const char* end = text.data() + text.size();
        const auto parsed = std::from_chars(text.data(), end, value);
        if (parsed.ec != std::errc() || parsed.ptr != end || value < low || value > high) {
          return fmt::format("expected a whole number {}, got '{}'", range, text);
        }
        return {};
      },
      "");
}

// `text` in lower case (ASCII), so that names on the command line ignore case.
std::string lower_case(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

// "iqdb-persist: Usage: ..." for a bad command line, like every other error.
int usage_error(const CLI::App& app, const CLI::Error& error) {
  if (error.get_exit_code() == 0) return app.exit(error);  // --help, --version
  iqdb::tools::print_error("Usage", error.what());
  std::fputs("Run with --help for more information.\n", stderr);
  return iqdb::tools::kExitUsage;
}

int run(int argc, char** argv) {
  CLI::App app(
      "Inspect, verify, compact and demonstrate iqdb-persist snapshot files, follow a database "
      "as a replica, serve a snapshot from shared memory, and check crash consistency.",
      "iqdb-persist");
  app.footer(std::string(iqdb::tools::exit_status_help()));
  app.set_version_flag("--version", fmt::format("iqdb-persist {}", iqdb::persist::kVersion));
  app.require_subcommand(1);

  InspectOptions inspect;
  CLI::App* inspect_command = app.add_subcommand(
      "inspect", "Print a snapshot's header and section table (reads the header only).");
  inspect_command->add_option("FILE", inspect.file, "Snapshot file")->required();
  inspect_command->add_flag("--json", inspect.json, "Print one JSON object instead of text");

  VerifyCommandOptions verify;
  CLI::App* verify_command = app.add_subcommand(
      "verify", "Check every byte of a snapshot: header, section CRC-32s and padding.");
  verify_command->add_option("FILE", verify.file, "Snapshot file")->required();
  verify_command
      ->add_option("--threads", verify.threads, "Checking threads (0: one per hardware thread)")
      ->type_name("N")
      ->check(whole_number(0, kMaxThreads));

  WalCommandOptions wal;
  CLI::App* wal_command = app.add_subcommand(
      "wal", "Report on a snapshot's write-ahead log and what each recovery mode would keep.");
  wal_command
      ->add_option("FILE", wal.file,
                   "Snapshot file (its log is FILE.wal-*), or one segment file, such as one a "
                   "load moved aside (FILE.wal-*.damaged)")
      ->required();

  FollowOptions follow;
  CLI::App* follow_command = app.add_subcommand(
      "follow",
      "Run a read-only replica of a database and print its LSN, generation and lag each second.");
  follow_command->add_option("FILE", follow.file, "Snapshot file (its log is FILE.wal-*)")
      ->required();
  follow_command
      ->add_option("--seconds", follow.seconds,
                   "Stop after N seconds (default: at SIGINT or SIGTERM)")
      ->type_name("N")
      ->check(whole_number(1));
  follow_command->add_flag("--json", follow.json, "Print one JSON object per line instead of text");

  PublishCommandOptions publish;
  CLI::App* publish_command = app.add_subcommand(
      "publish",
      "Serve a snapshot, decoded, from shared memory under a name; publish it again when it is "
      "replaced; withdraw it at SIGINT or SIGTERM.");
  publish_command->add_option("FILE", publish.file, "Snapshot file")->required();
  publish_command
      ->add_option("--name", publish.name, "Publication name (1 to 200 of A-Z a-z 0-9 _ -)")
      ->type_name("NAME")
      ->required();
  publish_command->add_option("--poll-ms", publish.poll_ms, "How often to look at FILE")
      ->type_name("N")
      ->capture_default_str()
      ->check(whole_number(1, kMaxPollMs));
  publish_command
      ->add_option("--seconds", publish.seconds,
                   "Stop N seconds after the first publication (default: at SIGINT or SIGTERM)")
      ->type_name("N")
      ->check(whole_number(1, kMaxSeconds));
  publish_command->add_flag("--json", publish.json,
                            "Print one JSON object per generation instead of text");

  AttachCommandOptions attach;
  CLI::App* attach_command = app.add_subcommand(
      "attach",
      "Attach a publication's current generation and print its descriptor and section table.");
  attach_command->add_option("NAME", attach.name, "Publication name")->required();
  attach_command->add_flag("--verify", attach.verify,
                           "Check every section's CRC-32 (reads the whole image)");
  attach_command->add_flag("--json", attach.json, "Print one JSON object instead of text");
  attach_command
      ->add_option("--hold", attach.hold,
                   "Keep the mapping SECONDS after printing (SIGINT or SIGTERM ends it)")
      ->type_name("SECONDS")
      ->check(whole_number(1, kMaxSeconds));

  UnpublishOptions unpublish;
  CLI::App* unpublish_command = app.add_subcommand(
      "unpublish", "Remove what a publisher that is no longer running left in shared memory.");
  unpublish_command->add_option("NAME", unpublish.name, "Publication name")->required();

  CompactOptions compact;
  std::string codec = "zstd";
  int zstd_level = Compression::zstd().level();
  CLI::App* compact_command = app.add_subcommand(
      "compact",
      "Rewrite a snapshot with other compression, after verifying it (the log is untouched).");
  compact_command->alias("rewrite");
  compact_command->add_option("FILE", compact.file, "Snapshot file")->required();
  compact_command->add_option("--output", compact.output, "Write to OUT instead of replacing FILE")
      ->type_name("OUT");
  compact_command->add_option("--compression", codec, "Codec of compressed sections")
      ->type_name("NAME")
      ->capture_default_str()
      ->transform(lower_case)
      ->check(CLI::IsMember({"none", "zstd", "lz4"}));
  CLI::Option* level_option =
      compact_command->add_option("--level", zstd_level, "zstd compression level")
          ->type_name("N")
          ->capture_default_str();
  compact_command
      ->add_option("--sections", compact.sections,
                   "Compress only these sections (comma-separated names; default: all)")
      ->type_name("A,B")
      ->delimiter(',');
  compact_command
      ->add_option("--max-ratio", compact.max_ratio,
                   "Keep a section raw unless its first chunk shrinks to this fraction, in (0, 1]")
      ->type_name("R")
      ->capture_default_str();

  DemoOptions demo;
  std::string metric_name = "cosine";
  CLI::App* demo_command = app.add_subcommand(
      "demo", "Build a random index, save it, and time zero-copy loads against a full read.");
  demo_command->add_option("--vectors", demo.vectors, "Number of vectors (at least 1)")
      ->type_name("N")
      ->capture_default_str()
      ->check(whole_number(1));
  demo_command->add_option("--dim", demo.dim, "Vector dimension (1 to 65536)")
      ->type_name("D")
      ->capture_default_str()
      ->check(whole_number(1, iqdb::tools::kMaxDemoDim));
  demo_command
      ->add_option("--dir", demo.dir,
                   "Keep the snapshot in DIR (created if missing) instead of a temporary "
                   "directory removed at exit")
      ->type_name("DIR");
  demo_command->add_option("--seed", demo.seed, "Seed of the random vectors")
      ->type_name("S")
      ->capture_default_str()
      ->check(whole_number(0));
  demo_command->add_option("--metric", metric_name, "Distance metric")
      ->type_name("NAME")
      ->capture_default_str()
      ->check(
          CLI::IsMember({"cosine", "dot", "euclidean", "manhattan", "hamming"}, CLI::ignore_case));

  TortureOptions torture;
  CLI::App* torture_command = app.add_subcommand(
      "torture",
      "Check crash consistency on this storage: SIGKILL random writers, recover, compare.");
  torture_command
      ->add_option("--dir", torture.dir,
                   "Work in DIR/iqdb-torture (created if missing; must hold nothing else)")
      ->type_name("DIR")
      ->required();
  torture_command->add_option("--seconds", torture.seconds, "How long to run")
      ->type_name("N")
      ->capture_default_str()
      ->check(whole_number(1));
  torture_command->add_option("--seed", torture.seed, "Seed of the workload (default: random)")
      ->type_name("S")
      ->check(whole_number(0));
  torture_command
      ->add_option("--fsync", torture.fsync, "Fsync policy of the log (periodic: every 100 ms)")
      ->type_name("POLICY")
      ->capture_default_str()
      ->transform(lower_case)
      ->check(CLI::IsMember({"always", "periodic", "never"}));
  torture_command->add_option("--dim", torture.dim, "Vector dimension")
      ->type_name("D")
      ->capture_default_str()
      ->check(whole_number(1, iqdb::tools::kMaxTortureDim));
  torture_command->add_flag("--keep", torture.keep, "Keep the database at the end");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return usage_error(app, error);
  }

  if (inspect_command->parsed()) return iqdb::tools::run_inspect(inspect);
  if (verify_command->parsed()) return iqdb::tools::run_verify(verify);
  if (wal_command->parsed()) return iqdb::tools::run_wal(wal);
  if (follow_command->parsed()) return iqdb::tools::run_follow(follow);
  if (publish_command->parsed()) return iqdb::tools::run_publish(publish);
  if (attach_command->parsed()) return iqdb::tools::run_attach(attach);
  if (unpublish_command->parsed()) return iqdb::tools::run_unpublish(unpublish);
  if (torture_command->parsed()) return iqdb::tools::run_torture(torture);
  if (compact_command->parsed()) {
    if (level_option->count() > 0 && codec != "zstd") {
      return usage_error(app,
                         CLI::ValidationError("--level", "applies to --compression zstd only"));
    }
    compact.compression = codec == "none"  ? Compression::none()
                          : codec == "lz4" ? Compression::lz4()
                                           : Compression::zstd(zstd_level);
    return iqdb::tools::run_compact(compact);
  }
  demo.metric = iqdb::tools::parse_metric_name(metric_name).value();
  return iqdb::tools::run_demo(demo);
}

}  // namespace

int main(int argc, char** argv) {
  int status = iqdb::tools::kExitOther;
  try {
    status = run(argc, argv);
  } catch (const std::exception& error) {
    iqdb::tools::print_error("Internal", error.what());
    return iqdb::tools::kExitOther;
  }
  if (std::fflush(stdout) != 0 || std::ferror(stdout) != 0) {
    iqdb::tools::print_error("Io", "cannot write to standard output");
    return iqdb::tools::kExitOther;
  }
  return status;
}
