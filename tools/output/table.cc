#include "output/table.h"

#include <algorithm>

namespace iqdb::tools {
namespace {

void append_line(std::string& out, const std::vector<std::string>& cells,
                 const std::vector<TextTable::Column>& columns,
                 const std::vector<std::size_t>& widths) {
  std::string line;
  for (std::size_t i = 0; i < cells.size(); ++i) {
    if (i > 0) line += "  ";
    const std::string padding(widths[i] - cells[i].size(), ' ');
    if (columns[i].align == TextTable::Align::Right) {
      line += padding + cells[i];
    } else {
      line += cells[i] + padding;
    }
  }
  line.erase(line.find_last_not_of(' ') + 1);
  out += line;
  out += '\n';
}

}  // namespace

std::string TextTable::render() const {
  std::vector<std::string> titles;
  std::vector<std::size_t> widths;
  for (const Column& column : columns_) {
    titles.push_back(column.title);
    widths.push_back(column.title.size());
  }
  for (const auto& row : rows_) {
    for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::vector<std::string> rules;
  rules.reserve(widths.size());
  for (const std::size_t width : widths) rules.emplace_back(width, '-');

  std::string out;
  append_line(out, titles, columns_, widths);
  append_line(out, rules, columns_, widths);
  for (const auto& row : rows_) append_line(out, row, columns_, widths);
  return out;
}

}  // namespace iqdb::tools
