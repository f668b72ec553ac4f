#include "inspect_command.h"

#include <cstdio>
#include <string>

#include <fmt/format.h>

#include "iqdb/persist/file_header.h"
#include "output/exit_status.h"
#include "output/json_writer.h"
#include "output/section_table.h"
#include "output/text_format.h"

namespace iqdb::tools {
namespace {

using persist::FileHeader;

std::string render_json(const std::filesystem::path& file, const FileHeader& header) {
  JsonWriter json;
  json.begin_object();
  json.key("file").string(file.string());
  json.key("file_size").number(header.file_size);
  json.key("format_version").number(header.version);
  json.key("writer_version").string(header.writer_version);
  json.key("index_type").string(header.index_type);
  json.key("dim").number(header.dim);
  json.key("metric").string(to_string(header.metric));
  json.key("n_vectors").number(header.n_vectors);
  json.key("crc32").number(header.crc32);
  json.key("crc32_hex").string(format_crc32(header.crc32));
  json.key("wal_lsn").number(header.wal_lsn);
  json.key("content_xxh3").string(fmt::format("{:016x}", header.content_hash));
  json.key("database_id").string(fmt::format("{:016x}", header.database_id));
  json.key("header_offset").number(header.header_offset);
  json.key("header_length").number(header.header_length);
  json.key("total_logical_length").number(total_logical_length(header.sections));
  json.key("sections");
  write_section_table(json, header.sections);
  json.end_object();
  return json.str();
}

std::string render_text(const std::filesystem::path& file, const FileHeader& header) {
  std::string out;
  const auto field = [&out](std::string_view name, const std::string& value) {
    out += fmt::format("{:<16}{}\n", name, value);
  };
  field("file", escape_for_terminal(file.string()));
  field("file size",
        fmt::format("{} bytes ({})", header.file_size, format_bytes(header.file_size)));
  field("format version", fmt::format("{}", header.version));
  field("writer", escape_for_terminal(header.writer_version));
  field("index type", escape_for_terminal(header.index_type));
  field("dimension", fmt::format("{}", header.dim));
  field("metric", std::string(to_string(header.metric)));
  field("vectors", fmt::format("{}", header.n_vectors));
  field("payload crc32", format_crc32(header.crc32));
  field("wal lsn", fmt::format("{}", header.wal_lsn));
  // Equal for two snapshots that hold the same data, whatever their storage.
  field("content xxh3", header.content_hash == 0 ? std::string("(not recorded)")
                                                 : fmt::format("{:016x}", header.content_hash));
  // Kept by every snapshot and log segment of the database; a new one when
  // it is recreated.
  field("database id", header.database_id == 0 ? std::string("(not recorded)")
                                               : fmt::format("{:016x}", header.database_id));
  field("header",
        fmt::format("offset {}, length {} bytes", header.header_offset, header.header_length));

  out += fmt::format("\nsections ({}):\n", header.sections.size());
  out += render_section_table(header.sections);
  const std::uint64_t logical = total_logical_length(header.sections);
  out += fmt::format("\ntotal: {} logical bytes ({}) in a file of {} bytes ({}): {}\n", logical,
                     format_bytes(logical), header.file_size, format_bytes(header.file_size),
                     format_ratio(compression_ratio(logical, header.file_size)));
  return out;
}

}  // namespace

int run_inspect(const InspectOptions& options) {
  auto header = persist::read_file_header(options.file);
  if (!header) return report(header.error());
  const std::string text = options.json ? render_json(options.file, header.value())
                                        : render_text(options.file, header.value());
  std::fputs(text.c_str(), stdout);
  return kExitOk;
}

}  // namespace iqdb::tools
