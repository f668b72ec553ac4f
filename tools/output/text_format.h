// How the tool writes quantities and untrusted strings for people. Sizes and
// rates use decimal units (1 MB = 10^6 bytes, 1 GB/s = 10^9 bytes per second).
#ifndef IQDB_PERSIST_TOOLS_OUTPUT_TEXT_FORMAT_H_
#define IQDB_PERSIST_TOOLS_OUTPUT_TEXT_FORMAT_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace iqdb::tools {

// "512 B", "1.60 MB", "102.4 MB", "1.02 GB".
std::string format_bytes(std::uint64_t bytes);

// "850 us", "12.3 ms", "1.234 s".
std::string format_seconds(double seconds);

// "2.01 GB/s"; "-" when `seconds` is not positive.
std::string format_rate(std::uint64_t bytes, double seconds);

// logical / stored: how many times smaller compression made the data; 1 when
// `stored` is 0 (an empty section).
double compression_ratio(std::uint64_t logical, std::uint64_t stored);

// "7.81x".
std::string format_ratio(double ratio);

// "2024-05-01T09:30:00.123Z": UTC, to the millisecond (ISO 8601).
std::string format_utc_time(std::chrono::system_clock::time_point time);

// "0x1a2b3c4d".
std::string format_crc32(std::uint32_t crc);

// `text` as printable ASCII: bytes outside 0x20..0x7e and the backslash become
// \xNN (\\ for the backslash), so a name from a file cannot move the cursor,
// change colours or break table alignment.
std::string escape_for_terminal(std::string_view text);

}  // namespace iqdb::tools

#endif  // IQDB_PERSIST_TOOLS_OUTPUT_TEXT_FORMAT_H_
