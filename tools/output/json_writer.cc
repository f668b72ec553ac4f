#include "output/json_writer.h"

#include <fmt/format.h>

namespace iqdb::tools {
namespace {

// Length of the valid UTF-8 sequence at the start of `text`, or 0 if it does
// not start with one (overlong forms, surrogates and values past U+10FFFF are
// invalid).
std::size_t utf8_sequence_length(std::string_view text) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(0);
  std::size_t length = 0;
  unsigned char low = 0x80, high = 0xbf;  // allowed range of the second byte
  if (lead < 0x80) return 1;
  if (lead >= 0xc2 && lead <= 0xdf) {
    length = 2;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3;
    if (lead == 0xe0) low = 0xa0;
    if (lead == 0xed) high = 0x9f;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4;
    if (lead == 0xf0) low = 0x90;
    if (lead == 0xf4) high = 0x8f;
  } else {
    return 0;
  }
  if (text.size() < length) return 0;
  if (byte(1) < low || byte(1) > high) return 0;
  for (std::size_t i = 2; i < length; ++i) {
    if (byte(i) < 0x80 || byte(i) > 0xbf) return 0;
  }
  return length;
}

}  // namespace

std::string json_quote(std::string_view text) {
  std::string out = "\"";
  while (!text.empty()) {
    const auto c = static_cast<unsigned char>(text.front());
    const std::size_t length = utf8_sequence_length(text);
    if (length == 0) {
      out += "\\ufffd";
      text.remove_prefix(1);
      continue;
    }
    if (c == '"') {
      out += "\\\"";
    } else if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\u{:04x}", c);
    } else {
      out.append(text.substr(0, length));
    }
    text.remove_prefix(length);
  }
  out += '"';
  return out;
}

JsonWriter& JsonWriter::key(std::string_view name) {
  start_value();
  out_ += json_quote(name);
  out_ += ": ";
  after_key_ = true;
  return *this;
}

JsonWriter& JsonWriter::string(std::string_view text) {
  start_value();
  out_ += json_quote(text);
  return *this;
}

JsonWriter& JsonWriter::number(std::uint64_t value) {
  start_value();
  out_ += fmt::format("{}", value);
  return *this;
}

JsonWriter& JsonWriter::boolean(bool value) {
  start_value();
  out_ += value ? "true" : "false";
  return *this;
}

JsonWriter& JsonWriter::fixed(double value, int decimals) {
  start_value();
  out_ += fmt::format("{:.{}f}", value, decimals);
  return *this;
}

JsonWriter& JsonWriter::open(char bracket) {
  start_value();
  out_ += bracket;
  has_element_.push_back(false);
  return *this;
}

JsonWriter& JsonWriter::close(char bracket) {
  const bool had_elements = has_element_.back();
  has_element_.pop_back();
  if (had_elements) newline();
  out_ += bracket;
  if (has_element_.empty()) out_ += '\n';
  return *this;
}

void JsonWriter::start_value() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (has_element_.empty()) return;
  if (has_element_.back()) out_ += ',';
  has_element_.back() = true;
  newline();
}

void JsonWriter::newline() {
  if (layout_ == Layout::OneLine) {
    // A space between elements; none inside the brackets.
    if (out_.back() == ',') out_ += ' ';
    return;
  }
  out_ += '\n';
  out_.append(2 * has_element_.size(), ' ');
}

}  // namespace iqdb::tools
