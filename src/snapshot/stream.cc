#include "iqdb/persist/stream.h"

#include <cstring>

#include <fmt/format.h>

namespace iqdb::persist {

Result<void> StreamReader::check_available(std::size_t length) const {
  if (length <= remaining()) return success();
  return fail(ErrorKind::InvalidPayload,
              fmt::format("{}: payload ends early: {} bytes needed at offset {}, {} left", context_,
                          length, position_, remaining()));
}

Result<void> StreamReader::read(std::span<std::byte> out) {
  IQDB_TRY(check_available(out.size()));
  if (!out.empty()) std::memcpy(out.data(), bytes_.data() + position_, out.size());
  position_ += out.size();
  return success();
}

Result<std::span<const std::byte>> StreamReader::read_view(std::size_t length) {
  IQDB_TRY(check_available(length));
  const auto view = bytes_.subspan(position_, length);
  position_ += length;
  return view;
}

Result<void> StreamReader::expect_end() const {
  if (remaining() == 0) return success();
  return fail(ErrorKind::InvalidPayload,
              fmt::format("{}: {} unread bytes after the payload (read {} of {})", context_,
                          remaining(), position_, bytes_.size()));
}

}  // namespace iqdb::persist
