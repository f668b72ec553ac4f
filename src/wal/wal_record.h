// Encoding and validating decoding of the body of one write-ahead-log frame:
// the logged mutation itself (docs/FORMAT.md, "Write-ahead log"). Framing, LSN
// and checksum belong to the WAL writer and reader; a body here is a byte span.
//
//   body     := type:u8 payload            (all integers little-endian)
//   type 1 Insert : id dim:u32 dim*f32 metadata
//   type 2 Remove : id
//   type 3 Batch  : count:u32 (>= 1) count*op ; op := (1 id dim:u32 dim*f32 metadata) | (2 id)
//   type 4 Abort  : lsn:u64 applied:u32 ; the index refused the mutation logged at
//                   this LSN after applying its first `applied` ops (0 unless a
//                   batch): replay applies exactly those and no more
//   id       := 0 value:u64 | 1 length:u32 (1..=65536) bytes
//   metadata := count:u32 count*(key_length:u32 key_bytes tag:u8 value), keys distinct
//   value    := 0 null | 1 length:u32 bytes | 2 int64 | 3 float64 | 4 bool:u8 (0 or 1)
//
// Encoders append to a caller-owned buffer, or (encode_body) write into one
// sized by wal_body_size(), so that a writer reuses one buffer and allocates
// nothing per record once it has warmed up. The decoder trusts
// nothing: every length and count is checked against the bytes remaining
// before it is used, a body must be consumed exactly, and every defect is an
// InvalidPayload error naming the body offset. A DecodedRecord is reused from
// record to record; decoding an integer-id record without metadata allocates
// nothing once its buffers have grown. The functions are thread-safe; a
// DecodedRecord, like any container, is used by one thread at a time.
//
// Like the snapshot format, the body is written and read in host byte order,
// which the library requires to be little-endian (check_host_is_little_endian).
#ifndef IQDB_PERSIST_SRC_WAL_WAL_RECORD_H_
#define IQDB_PERSIST_SRC_WAL_WAL_RECORD_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "iqdb/persist/detail/wal_op.h"
#include "iqdb/persist/error.h"
#include "iqdb/types.h"
#include "wal/wal_format.h"

namespace iqdb::persist {

// The format's names, used unqualified throughout the record code.
using wal_format::kWalMaxByteIdLength;
using wal_format::kWalMaxDimension;
using wal_format::WalRecordType;

// The library's own name for the op type (this header is private).
using detail::WalOp;

// Mutations are encoded from WalOps (iqdb/persist/detail/wal_op.h), whose
// kinds double as record types.
static_assert(static_cast<int>(WalOp::Kind::Insert) == static_cast<int>(WalRecordType::Insert));
static_assert(static_cast<int>(WalOp::Kind::Remove) == static_cast<int>(WalRecordType::Remove));

// InvalidArgument unless `op` fits the format: a byte id of at most
// kWalMaxByteIdLength bytes and, for an insert, 1..kWalMaxDimension components
// and metadata with fewer than 2^32 entries, each key and string shorter than
// 2^32 bytes. The encoders below require this to hold: a WAL writer checks
// before it logs, so that it never acknowledges a record no reader accepts.
[[nodiscard]] Result<void> check_encodable(const WalOp& op);

// True when check_encodable(op) holds at a glance (the usual op: an integer
// id and, for an insert, 1..kWalMaxDimension components and no metadata), so
// that a writer calls check_encodable() only for the others.
inline bool plainly_encodable(const WalOp& op) {
  if (!op.id->is_u64()) return false;
  if (op.kind == WalOp::Kind::Remove) return true;
  return !op.vector.empty() && op.vector.size() <= kWalMaxDimension &&
         (op.metadata == nullptr || op.metadata->empty());
}

// Append one body to `out` (existing contents are kept). Preconditions:
// check_encodable() holds for the op(s); `ops` is non-empty.
void encode_insert(std::vector<std::byte>& out, const VectorId& id, std::span<const float> vector,
                   const Metadata& metadata);
void encode_remove(std::vector<std::byte>& out, const VectorId& id);
void encode_batch(std::vector<std::byte>& out, std::span<const WalOp> ops);
// The size of the body encode_body() writes for `ops`: an Insert or Remove
// record of ops[0] unless `as_batch`, else one Batch record of all of them.
// Preconditions as for the encoders.
std::size_t wal_body_size(std::span<const WalOp> ops, bool as_batch);
// Writes that body into `out`, which is exactly wal_body_size(ops, as_batch)
// bytes: the same bytes as encode_insert(), encode_remove() or encode_batch(),
// written in place, so that a writer that reuses one buffer for records of one
// size neither grows nor zero-fills it before encoding.
void encode_body(std::span<std::byte> out, std::span<const WalOp> ops, bool as_batch);
// `lsn` is the LSN of the refused mutation, `applied_ops` how many of its
// leading ops the index had applied before it refused one.
void encode_abort(std::vector<std::byte>& out, std::uint64_t lsn, std::uint32_t applied_ops);

// One decoded mutation. `vector` points into the DecodedRecord's float buffer
// (aligned for float) and stays valid until the record is decoded into again.
struct DecodedOp {
  WalOp::Kind kind = WalOp::Kind::Remove;
  VectorId id = 0;
  std::span<const float> vector;  // empty for a remove
  Metadata metadata;              // empty for a remove
};

// The reusable result of decode_record(). Insert and Remove hold one op, Batch
// one or more, Abort none. Not copyable: its ops view its own buffer.
class DecodedRecord {
 public:
  DecodedRecord() = default;
  DecodedRecord(const DecodedRecord&) = delete;
  DecodedRecord& operator=(const DecodedRecord&) = delete;
  DecodedRecord(DecodedRecord&&) = default;
  DecodedRecord& operator=(DecodedRecord&&) = default;

  WalRecordType type() const { return type_; }
  std::span<const DecodedOp> ops() const { return {ops_.data(), op_count_}; }
  // Abort only: the LSN of the mutation never to apply.
  std::uint64_t aborted_lsn() const { return aborted_lsn_; }
  // Abort only: how many leading ops of that mutation were applied.
  std::uint32_t aborted_applied_ops() const { return aborted_applied_ops_; }

 private:
  friend class WalBodyParser;

  WalRecordType type_ = WalRecordType::Abort;
  std::uint64_t aborted_lsn_ = 0;
  std::uint32_t aborted_applied_ops_ = 0;
  // ops_ and floats_ only grow: their first op_count_ / floats_used_ elements
  // are live, the rest is capacity kept for the next record.
  std::vector<DecodedOp> ops_;
  std::size_t op_count_ = 0;
  std::vector<float> floats_;
  std::size_t floats_used_ = 0;
};

// Decodes `body` into `out`, reusing its buffers. `context` prefixes error
// messages, e.g. "/db/x.iqdb.wal-0000000000000003: frame at offset 4096 (LSN 17)".
// Errors: InvalidPayload "<context>: <what> at body offset <n>". After an
// error `out` holds no usable record but may be decoded into again.
[[nodiscard]] Result<void> decode_record(std::span<const std::byte> body, DecodedRecord& out,
                                         std::string_view context);

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_SRC_WAL_WAL_RECORD_H_
