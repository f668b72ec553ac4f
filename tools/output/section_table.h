// A snapshot's section table as the tool shows it, shared by the commands
// that show one (inspect, attach): the same columns as text and the same
// keys in JSON, so that a script reading one command's output reads the
// other's.
#ifndef IQDB_PERSIST_TOOLS_OUTPUT_SECTION_TABLE_H_
#define IQDB_PERSIST_TOOLS_OUTPUT_SECTION_TABLE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "iqdb/persist/file_header.h"
#include "output/json_writer.h"

namespace iqdb::tools {

// The sum of the sections' logical (decoded) lengths.
std::uint64_t total_logical_length(const std::vector<persist::SectionInfo>& sections);

// The table as aligned text columns (TextTable::render()): name, offset,
// stored and logical length, compression, alignment, crc32, ratio, chunking.
std::string render_section_table(const std::vector<persist::SectionInfo>& sections);

// The table as a JSON array of one object per section; call it after
// json.key().
void write_section_table(JsonWriter& json, const std::vector<persist::SectionInfo>& sections);

}  // namespace iqdb::tools

#endif  // IQDB_PERSIST_TOOLS_OUTPUT_SECTION_TABLE_H_
