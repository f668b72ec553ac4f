#include "follow_command.h"

#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "flat_index.h"
#include "iqdb/persist/file_header.h"
#include "iqdb/persist/replica.h"
#include "output/exit_status.h"
#include "output/json_writer.h"
#include "output/text_format.h"
#include "stop_signals.h"

namespace iqdb::tools {
namespace {

using persist::ErrorKind;
using persist::PersistError;
using persist::Result;
using Clock = std::chrono::steady_clock;
using FlatReplica = persist::Replica<examples::FlatIndex>;

constexpr auto kLineInterval = std::chrono::seconds(1);

// What the refreshes between two lines did.
struct Interval {
  std::uint64_t records = 0;
  bool switched = false;
  std::string waiting;                // as the last refresh said
  std::optional<PersistError> error;  // of the last refresh, if it failed
};

// The tool can rebuild one index type only; say so before opening anything.
Result<void> check_index_type(const std::filesystem::path& file) {
  IQDB_TRY_ASSIGN(const persist::FileHeader header, persist::read_file_header(file));
  if (header.index_type == examples::FlatIndex::kIndexType) return persist::success();
  return persist::fail(
      ErrorKind::Unsupported,
      fmt::format("{}: index type '{}': follow can replicate only the example flat index ('{}'), "
                  "the one index type this tool is built with",
                  file.string(), header.index_type, examples::FlatIndex::kIndexType));
}

std::string error_text(const PersistError& error) {
  return fmt::format("{}: {}", persist::to_string(error.kind()), error.message());
}

std::uint64_t milliseconds(std::chrono::nanoseconds duration) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(duration).count());
}

std::string render_json(const FlatReplica& replica, const Interval& interval,
                        std::uint64_t seconds) {
  const persist::ReplicaLag lag = replica.lag();
  const auto view = replica.acquire();
  JsonWriter json(JsonWriter::Layout::OneLine);
  json.begin_object();
  json.key("seconds").number(seconds);
  json.key("lsn").number(lag.lsn);
  json.key("generation").number(view.generation());
  json.key("snapshot_lsn").number(view.snapshot_lsn());
  json.key("lag_records").number(lag.records);
  json.key("lag_bytes").number(lag.bytes);
  json.key("behind_ms").number(milliseconds(lag.behind));
  json.key("writer_lsn").number(lag.writer_lsn);
  json.key("notified").boolean(lag.notified);
  json.key("records_applied").number(interval.records);
  json.key("switched").boolean(interval.switched);
  json.key("waiting").string(interval.waiting);
  json.key("error").string(interval.error ? error_text(*interval.error) : "");
  json.end_object();
  return json.str();
}

std::string render_text(const FlatReplica& replica, const Interval& interval) {
  const persist::ReplicaLag lag = replica.lag();
  std::string line = fmt::format(
      "lsn {}  generation {}  lag {} records, {}, {} ms  writer lsn {} ({})  applied {}", lag.lsn,
      replica.generation(), lag.records, format_bytes(lag.bytes), milliseconds(lag.behind),
      lag.writer_lsn, lag.notified ? "control file" : "log", interval.records);
  if (interval.switched) line += "  switched";
  if (!interval.waiting.empty()) line += "  waiting: " + escape_for_terminal(interval.waiting);
  if (interval.error) line += "  failing: " + escape_for_terminal(error_text(*interval.error));
  return line + "\n";
}

}  // namespace

// The loop refreshes the replica itself, every poll interval, rather than
// starting its follower (Replica::follow()): each RefreshReport says what
// the line reports (records applied, a switch, why it waits), which the
// follower keeps to itself, and errors are seen as they happen. A line is
// printed right after a refresh, so the lag it shows is what the replica
// could not apply, not what arrived since the last look. The price: the
// writer's notification is not used, so the replica is up to one poll
// interval (50 ms) behind where a follower would be microseconds.
int run_follow(const FollowOptions& options) {
  const StopSignals signals;
  if (auto checked = check_index_type(options.file); !checked) return report(checked.error());
  auto opened = FlatReplica::open(persist::PersistConfig(options.file));
  if (!opened) return report(opened.error());
  FlatReplica replica = std::move(opened).value();
  const auto poll = persist::ReplicaOptions{}.poll_interval;

  if (!options.json) {
    fmt::print("following {} from LSN {}, generation {}\n",
               escape_for_terminal(options.file.string()), replica.lsn(), replica.generation());
  }
  const Clock::time_point start = Clock::now();
  Interval interval;
  std::string last_error;  // printed once, not at every refresh
  for (std::uint64_t line = 1; options.seconds == 0 || line <= options.seconds; ++line) {
    const Clock::time_point due = start + line * kLineInterval;
    for (;;) {
      auto refreshed = replica.refresh();
      if (refreshed) {
        interval.records += refreshed.value().records;
        interval.switched = interval.switched || refreshed.value().switched;
        interval.waiting = refreshed.value().waiting;
        interval.error.reset();
        last_error.clear();
      } else {
        interval.error = refreshed.error();
        if (error_text(refreshed.error()) != last_error) {
          last_error = error_text(refreshed.error());
          report(refreshed.error());
        }
      }
      const Clock::time_point now = Clock::now();
      if (now >= due) break;
      if (signals.wait(std::min<Clock::duration>(poll, due - now))) {
        return interval.error ? exit_status_for(interval.error->kind()) : kExitOk;
      }
    }
    const std::string text =
        options.json ? render_json(replica, interval, line) : render_text(replica, interval);
    std::fputs(text.c_str(), stdout);
    if (std::fflush(stdout) != 0) {
      print_error("Io", "cannot write to standard output");
      return kExitOther;
    }
    interval.records = 0;
    interval.switched = false;
  }
  return interval.error ? exit_status_for(interval.error->kind()) : kExitOk;
}

}  // namespace iqdb::tools
