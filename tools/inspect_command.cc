#include "inspect_command.h"

#include <cstdio>
#include <string>

#include <fmt/format.h>

#include "iqdb/persist/file_header.h"
#include "output/exit_status.h"
#include "output/json_writer.h"
#include "output/table.h"
#include "output/text_format.h"

namespace iqdb::tools {
namespace {

using persist::FileHeader;
using persist::SectionInfo;

std::uint64_t total_logical_length(const FileHeader& header) {
  std::uint64_t total = 0;
  for (const SectionInfo& section : header.sections) total += section.logical_length;
  return total;
}

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
  json.key("header_offset").number(header.header_offset);
  json.key("header_length").number(header.header_length);
  json.key("total_logical_length").number(total_logical_length(header));
  json.key("sections").begin_array();
  for (const SectionInfo& section : header.sections) {
    json.begin_object();
    json.key("name").string(section.name);
    json.key("offset").number(section.offset);
    json.key("stored_length").number(section.stored_length);
    json.key("logical_length").number(section.logical_length);
    json.key("compression").string(to_string(section.compression));
    json.key("alignment").number(section.alignment);
    json.key("crc32").number(section.crc32);
    json.key("crc32_hex").string(format_crc32(section.crc32));
    json.key("xxh3").string(fmt::format("{:016x}", section.xxh3));
    json.key("compression_ratio")
        .fixed(compression_ratio(section.logical_length, section.stored_length), 3);
    json.key("chunk_size").number(section.chunk_size);
    json.key("chunk_count").number(section.chunks.size());
    json.end_object();
  }
  json.end_array();
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
  field("header",
        fmt::format("offset {}, length {} bytes", header.header_offset, header.header_length));

  using Align = TextTable::Align;
  TextTable table({{"name"},
                   {"offset", Align::Right},
                   {"stored length", Align::Right},
                   {"logical length", Align::Right},
                   {"compression"},
                   {"alignment", Align::Right},
                   {"crc32"},
                   {"ratio", Align::Right},
                   {"chunk size", Align::Right},
                   {"chunks", Align::Right}});
  for (const SectionInfo& section : header.sections) {
    // Files written before chunk tables existed have none.
    const bool chunked = section.chunk_size != 0;
    table.add_row({escape_for_terminal(section.name), fmt::format("{}", section.offset),
                   fmt::format("{}", section.stored_length),
                   fmt::format("{}", section.logical_length),
                   std::string(to_string(section.compression)),
                   fmt::format("{}", section.alignment), format_crc32(section.crc32),
                   format_ratio(compression_ratio(section.logical_length, section.stored_length)),
                   chunked ? fmt::format("{}", section.chunk_size) : "-",
                   chunked ? fmt::format("{}", section.chunks.size()) : "-"});
  }
  out += fmt::format("\nsections ({}):\n", header.sections.size());
  out += table.render();
  const std::uint64_t logical = total_logical_length(header);
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
