// TextTable: rows of cells printed as aligned columns under a header and a
// rule of dashes. Cells must be single-line printable ASCII (see
// escape_for_terminal()): widths are counted in bytes.
//
//   TextTable table({{"name"}, {"offset", TextTable::Align::Right}});
//   table.add_row({"vectors", "4096"});
//   std::fputs(table.render().c_str(), stdout);
#ifndef IQDB_PERSIST_TOOLS_OUTPUT_TABLE_H_
#define IQDB_PERSIST_TOOLS_OUTPUT_TABLE_H_

#include <string>
#include <vector>

namespace iqdb::tools {

class TextTable {
 public:
  enum class Align { Left, Right };
  struct Column {
    std::string title;
    Align align = Align::Left;
  };

  explicit TextTable(std::vector<Column> columns) : columns_(std::move(columns)) {}

  // Precondition: cells.size() == number of columns.
  void add_row(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }

  // Every line ends in '\n'; columns are separated by two spaces, and the last
  // column carries no trailing blanks.
  std::string render() const;

 private:
  std::vector<Column> columns_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace iqdb::tools

#endif  // IQDB_PERSIST_TOOLS_OUTPUT_TABLE_H_
