// JsonWriter: builds one JSON document, indented by two spaces (or on one
// line, for a stream of one document per line), with commas placed for the
// caller. Strings from files are arbitrary bytes: valid UTF-8
// passes through, control characters, '"' and '\' are escaped, and each byte
// that is not part of valid UTF-8 becomes U+FFFD, so the output is always
// valid JSON.
//
//   JsonWriter json;
//   json.begin_object();
//   json.key("dim").number(128);
//   json.end_object();
//   std::string text = json.str();
//
// Preconditions (not checked): calls nest properly and every value inside an
// object is preceded by key().
#ifndef IQDB_PERSIST_TOOLS_OUTPUT_JSON_WRITER_H_
#define IQDB_PERSIST_TOOLS_OUTPUT_JSON_WRITER_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace iqdb::tools {

// `text` as a quoted JSON string (see above).
std::string json_quote(std::string_view text);

class JsonWriter {
 public:
  enum class Layout { Indented, OneLine };
  explicit JsonWriter(Layout layout = Layout::Indented) : layout_(layout) {}

  JsonWriter& begin_object() { return open('{'); }
  JsonWriter& end_object() { return close('}'); }
  JsonWriter& begin_array() { return open('['); }
  JsonWriter& end_array() { return close(']'); }

  JsonWriter& key(std::string_view name);
  JsonWriter& string(std::string_view text);
  JsonWriter& number(std::uint64_t value);
  JsonWriter& boolean(bool value);
  // `value` with `decimals` digits after the point. Precondition: finite.
  JsonWriter& fixed(double value, int decimals);

  // The document so far, with a final newline once it is complete.
  const std::string& str() const { return out_; }

 private:
  JsonWriter& open(char bracket);
  JsonWriter& close(char bracket);
  // Separates and indents a new array element; no-op after key().
  void start_value();
  void newline();

  Layout layout_;
  std::string out_;
  // One entry per open container: whether it has an element yet.
  std::vector<bool> has_element_;
  bool after_key_ = false;
};

}  // namespace iqdb::tools

#endif  // IQDB_PERSIST_TOOLS_OUTPUT_JSON_WRITER_H_
