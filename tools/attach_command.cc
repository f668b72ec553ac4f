#include "attach_command.h"

#include <chrono>
#include <cstdio>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "iqdb/persist/file_header.h"
#include "iqdb/persist/shared_memory.h"
#include "output/exit_status.h"
#include "output/json_writer.h"
#include "output/section_table.h"
#include "output/text_format.h"
#include "stop_signals.h"

namespace iqdb::tools {
namespace {

using persist::FileHeader;
using persist::SharedDescriptor;
using persist::SharedSnapshot;

// Whether every section's CRC-32 was checked and matched.
bool verified(const SharedSnapshot& snapshot) {
  return snapshot.verification().state() == persist::Verification::State::Passed;
}

std::string render_json(const SharedSnapshot& snapshot) {
  const SharedDescriptor& descriptor = snapshot.descriptor();
  const FileHeader& header = snapshot.view().header();
  JsonWriter json;
  json.begin_object();
  json.key("name").string(descriptor.name);
  json.key("object").string(descriptor.object);
  json.key("generation").number(descriptor.generation);
  json.key("wal_lsn").number(descriptor.wal_lsn);
  json.key("content_xxh3").string(fmt::format("{:016x}", descriptor.content_hash));
  json.key("image_bytes").number(descriptor.image_bytes);
  json.key("segment_bytes").number(descriptor.segment_bytes);
  json.key("source_path").string(descriptor.source_path);
  json.key("source_size").number(descriptor.source_size);
  json.key("source_modified").string(format_utc_time(descriptor.source_modified));
  json.key("published").string(format_utc_time(descriptor.published));
  json.key("publisher_pid").number(descriptor.publisher_pid);
  json.key("newer_published").boolean(snapshot.newer_published());
  json.key("verified").boolean(verified(snapshot));
  json.key("index_type").string(header.index_type);
  json.key("dim").number(header.dim);
  json.key("metric").string(to_string(header.metric));
  json.key("n_vectors").number(header.n_vectors);
  json.key("total_logical_length").number(total_logical_length(header.sections));
  json.key("sections");
  write_section_table(json, header.sections);
  json.end_object();
  return json.str();
}

std::string render_text(const SharedSnapshot& snapshot) {
  const SharedDescriptor& descriptor = snapshot.descriptor();
  const FileHeader& header = snapshot.view().header();
  std::string out;
  const auto field = [&out](std::string_view name, const std::string& value) {
    out += fmt::format("{:<17}{}\n", name, value);
  };
  const auto bytes = [](std::uint64_t count) {
    return fmt::format("{} bytes ({})", count, format_bytes(count));
  };
  field("name", escape_for_terminal(descriptor.name));
  field("object", escape_for_terminal(descriptor.object));
  field("generation", fmt::format("{}", descriptor.generation));
  field("wal lsn", fmt::format("{}", descriptor.wal_lsn));
  // The source snapshot's, whatever its compression: compare with `inspect`.
  field("content xxh3", fmt::format("{:016x}", descriptor.content_hash));
  field("index type", escape_for_terminal(header.index_type));
  field("dimension", fmt::format("{}", header.dim));
  field("metric", std::string(to_string(header.metric)));
  field("vectors", fmt::format("{}", header.n_vectors));
  field("image", bytes(descriptor.image_bytes));
  field("segment", bytes(descriptor.segment_bytes));
  field("source", escape_for_terminal(descriptor.source_path));
  field("source size", bytes(descriptor.source_size));
  field("source modified", format_utc_time(descriptor.source_modified));
  field("published", fmt::format("{} by pid {}", format_utc_time(descriptor.published),
                                 descriptor.publisher_pid));
  field("newer published", snapshot.newer_published() ? "yes: attach again for it" : "no");
  field("verified", verified(snapshot) ? "yes: every section's CRC-32 matches"
                                       : "no: head, descriptor and header only (--verify)");
  out += fmt::format("\nsections ({}):\n", header.sections.size());
  out += render_section_table(header.sections);
  return out;
}

}  // namespace

int run_attach(const AttachCommandOptions& options) {
  const StopSignals signals;  // before verification threads start
  persist::AttachOptions attach_options;
  if (options.verify) attach_options.verify = persist::VerifyMode::Eager;
  auto attached = SharedSnapshot::attach(options.name, attach_options);
  if (!attached) return report(attached.error());
  const SharedSnapshot& snapshot = attached.value();

  const std::string text = options.json ? render_json(snapshot) : render_text(snapshot);
  std::fputs(text.c_str(), stdout);
  if (options.hold == 0) return kExitOk;
  if (!options.json) {
    fmt::print("holding the mapping for {} s (SIGINT or SIGTERM ends it)\n", options.hold);
  }
  // Flushed now, not at exit: whoever measures reads it while we hold.
  if (std::fflush(stdout) != 0) {
    print_error("Io", "cannot write to standard output");
    return kExitOther;
  }
  signals.wait(std::chrono::seconds(options.hold));
  return kExitOk;
}

}  // namespace iqdb::tools
