// StreamWriter and StreamReader: the byte streams of stream persistence, the
// simpler way for an index to be Persistable (the StreamPersistable concept in
// iqdb/persist/persistable.h). Section persistence uses them too, for a
// section written piece by piece (SectionWriter::add_streamed_section()) and
// read back with SectionView::reader().
//
// The contract of stream persistence, for an index type I:
//   static constexpr std::string_view kIndexType = "my-index";
//   Result<void> save_to(StreamWriter& out) const;
//   static Result<I> load_from(StreamReader& in);
// - save_to() writes the index's state to `out`, in a layout of its own, and
//   returns the first error a write returns. It writes no framing: the library
//   stores the bytes as the snapshot's one section, named kStreamSectionName,
//   behind a header that records kIndexType, dim(), metric() and size(), with
//   CRC-32s, and replaces the file atomically.
// - load_from() gets `in` over exactly the bytes save_to() wrote and returns
//   the index rebuilt from them. It must read them all: once it returns, the
//   library refuses unread bytes as InvalidPayload. The rebuilt index's dim(),
//   metric() and size() must equal the saved index's; load() checks them
//   against the header (InvalidPayload).
// - load_from() does not trust the bytes: under VerifyMode::Background and Skip
//   their CRC may not have been checked yet. The StreamReader refuses reads
//   past the end; what the bytes mean is the index's to check. It allocates
//   nothing for a count read from the stream before comparing it with
//   remaining() (or allocates as it reads), and bytes it cannot rebuild from
//   are an error (InvalidPayload), never a crash.
//
// Values are written in host byte order, which is little-endian on every host
// this library runs on (it refuses big-endian hosts with Unsupported).
//
// Lifetime: a StreamReader reads from a snapshot mapping that lives at least
// until load_from() returns. Spans returned by StreamReader::read_view() stay
// valid only that long, unless the index keeps the snapshot alive (as section
// persistence can, with SectionView::keep_alive()); copy what you keep.
#ifndef IQDB_PERSIST_STREAM_H_
#define IQDB_PERSIST_STREAM_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include "iqdb/persist/error.h"

namespace iqdb::persist {

// The name of the one section that holds the payload of stream persistence.
inline constexpr std::string_view kStreamSectionName = "payload";

// A sink for an index's payload. Implementations buffer and checksum; the
// index only calls write().
class StreamWriter {
 public:
  virtual ~StreamWriter() = default;

  // Appends `bytes`. Errors: Io.
  [[nodiscard]] virtual Result<void> write(std::span<const std::byte> bytes) = 0;

  template <class T>
  requires std::is_trivially_copyable_v<T>
  [[nodiscard]] Result<void> write_value(const T& value) {
    return write(std::as_bytes(std::span<const T, 1>(&value, 1)));
  }

  template <class T>
  requires std::is_trivially_copyable_v<T>
  [[nodiscard]] Result<void> write_array(std::span<const T> values) {
    return write(std::as_bytes(values));
  }
};

// Reads an index's payload back, bounds-checked: reading past the end is an
// InvalidPayload error naming the section and offset, never an overrun.
class StreamReader {
 public:
  // `context` names the data in error messages, e.g. "/d/x.iqdb: section 'payload'".
  StreamReader(std::span<const std::byte> bytes, std::string context)
      : bytes_(bytes), context_(std::move(context)) {}

  std::size_t remaining() const { return bytes_.size() - position_; }
  std::size_t position() const { return position_; }

  // Copies exactly out.size() bytes.
  [[nodiscard]] Result<void> read(std::span<std::byte> out);

  // Borrows the next `length` bytes without copying (see lifetime note above).
  [[nodiscard]] Result<std::span<const std::byte>> read_view(std::size_t length);

  template <class T>
  requires std::is_trivially_copyable_v<T>
  [[nodiscard]] Result<T> read_value() {
    T value;
    IQDB_TRY(read(std::as_writable_bytes(std::span<T, 1>(&value, 1))));
    return value;
  }

  template <class T>
  requires std::is_trivially_copyable_v<T>
  [[nodiscard]] Result<void> read_array(std::span<T> out) {
    return read(std::as_writable_bytes(out));
  }

  // InvalidPayload unless every byte has been read: a payload with trailing
  // bytes was not written by the index that is reading it.
  [[nodiscard]] Result<void> expect_end() const;

 private:
  Result<void> check_available(std::size_t length) const;

  std::span<const std::byte> bytes_;
  std::size_t position_ = 0;
  std::string context_;
};

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_STREAM_H_
