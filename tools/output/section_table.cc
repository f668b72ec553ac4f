#include "output/section_table.h"

#include <fmt/format.h>

#include "output/table.h"
#include "output/text_format.h"

namespace iqdb::tools {

using persist::SectionInfo;

std::uint64_t total_logical_length(const std::vector<SectionInfo>& sections) {
  std::uint64_t total = 0;
  for (const SectionInfo& section : sections) total += section.logical_length;
  return total;
}

std::string render_section_table(const std::vector<SectionInfo>& sections) {
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
  for (const SectionInfo& section : sections) {
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
  return table.render();
}

void write_section_table(JsonWriter& json, const std::vector<SectionInfo>& sections) {
  json.begin_array();
  for (const SectionInfo& section : sections) {
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
}

}  // namespace iqdb::tools
