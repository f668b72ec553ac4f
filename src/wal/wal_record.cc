#include "wal/wal_record.h"

#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include <fmt/format.h>

#include "util/quoted.h"

namespace iqdb::persist {
namespace {

// The metadata value tags are the MetadataValue alternative indices.
enum class ValueTag : std::uint8_t { Null = 0, String = 1, Int = 2, Double = 3, Bool = 4 };
static_assert(std::is_same_v<std::variant_alternative_t<0, MetadataValue>, std::monostate>);
static_assert(std::is_same_v<std::variant_alternative_t<1, MetadataValue>, std::string>);
static_assert(std::is_same_v<std::variant_alternative_t<2, MetadataValue>, std::int64_t>);
static_assert(std::is_same_v<std::variant_alternative_t<3, MetadataValue>, double>);
static_assert(std::is_same_v<std::variant_alternative_t<4, MetadataValue>, bool>);

enum class IdTag : std::uint8_t { U64 = 0, Bytes = 1 };

// The fewest bytes a batch op (type, byte-id tag, length 1, one byte) and a
// metadata entry (empty key, null value) occupy: untrusted counts are checked
// against these before anything is decoded.
constexpr std::size_t kMinOpSize = 1 + 1 + 4 + 1;
constexpr std::size_t kMinMetadataEntrySize = 4 + 1;

constexpr std::size_t kMaxU32 = std::numeric_limits<std::uint32_t>::max();

// The encoders size a body first, grow the output once, then write every field
// at a cursor: a per-field vector append costs more than the whole copy of a
// 512-byte vector.
std::size_t id_size(const VectorId& id) {
  return 1 + (id.is_u64() ? sizeof(std::uint64_t) : 4 + id.as_bytes().size());
}

std::size_t value_size(const MetadataValue& value) {
  switch (static_cast<ValueTag>(value.index())) {
    case ValueTag::Null: return 0;
    case ValueTag::String: return 4 + std::get<std::string>(value).size();
    case ValueTag::Int: return sizeof(std::int64_t);
    case ValueTag::Double: return sizeof(double);
    case ValueTag::Bool: return 1;
  }
  return 0;
}

std::size_t insert_size(const VectorId& id, std::span<const float> vector,
                        const Metadata* metadata) {
  std::size_t size = 1 + id_size(id) + 4 + vector.size_bytes() + 4;
  if (metadata == nullptr) return size;
  for (const auto& [key, value] : *metadata) size += 4 + key.size() + 1 + value_size(value);
  return size;
}

std::size_t remove_size(const VectorId& id) { return 1 + id_size(id); }

std::size_t op_size(const WalOp& op) {
  return op.kind == WalOp::Kind::Insert ? insert_size(*op.id, op.vector, op.metadata)
                                        : remove_size(*op.id);
}

// Writes fields in host order (little-endian, as wal_record.h requires) at a cursor
// into space already sized for them.
class FieldWriter {
 public:
  // Appends `size` bytes to `out` and writes into them.
  FieldWriter(std::vector<std::byte>& out, std::size_t size) {
    const std::size_t start = out.size();
    out.resize(start + size);
    at_ = out.data() + start;
  }
  // Writes into space the caller sized.
  explicit FieldWriter(std::byte* at) : at_(at) {}

  void bytes(const void* data, std::size_t size) {
    if (size == 0) return;  // data() of an empty span may be null
    std::memcpy(at_, data, size);
    at_ += size;
  }

  template <class T>
  requires std::is_trivially_copyable_v<T>
  void value(T value) { bytes(&value, sizeof(T)); }

  void string(std::string_view text) {
    value(static_cast<std::uint32_t>(text.size()));
    bytes(text.data(), text.size());
  }

  void id(const VectorId& id) {
    if (id.is_u64()) {
      value(IdTag::U64);
      value(id.as_u64());
    } else {
      value(IdTag::Bytes);
      string(id.as_bytes());
    }
  }

  void insert(const VectorId& id, std::span<const float> vector, const Metadata* metadata) {
    value(WalOp::Kind::Insert);
    this->id(id);
    value(static_cast<std::uint32_t>(vector.size()));
    bytes(vector.data(), vector.size_bytes());
    if (metadata == nullptr) {
      value(std::uint32_t{0});
      return;
    }
    value(static_cast<std::uint32_t>(metadata->size()));
    for (const auto& [key, entry] : *metadata) {
      string(key);
      value(static_cast<ValueTag>(entry.index()));
      switch (static_cast<ValueTag>(entry.index())) {
        case ValueTag::Null: break;
        case ValueTag::String: string(std::get<std::string>(entry)); break;
        case ValueTag::Int: value(std::get<std::int64_t>(entry)); break;
        case ValueTag::Double: value(std::get<double>(entry)); break;
        case ValueTag::Bool: value(static_cast<std::uint8_t>(std::get<bool>(entry))); break;
      }
    }
  }

  void remove(const VectorId& id) {
    value(WalOp::Kind::Remove);
    this->id(id);
  }

 private:
  std::byte* at_ = nullptr;
};

// A byte string for an error message, cut short when long.
std::string printable(std::string_view bytes) { return quote_bytes(bytes, 64); }

}  // namespace

// Decodes one body into a DecodedRecord; a friend of DecodedRecord.
class WalBodyParser {
 public:
  WalBodyParser(std::span<const std::byte> body, std::string_view context, DecodedRecord& out)
      : body_(body), context_(context), out_(out) {}

  Result<void> parse() {
    out_.op_count_ = 0;
    out_.floats_used_ = 0;
    out_.aborted_lsn_ = 0;
    out_.aborted_applied_ops_ = 0;
    auto result = parse_body();
    if (!result) out_.op_count_ = 0;
    return result;
  }

 private:
  template <class... Args>
  auto invalid(std::size_t offset, fmt::format_string<Args...> what, Args&&... args) const {
    return fail(ErrorKind::InvalidPayload,
                fmt::format("{}: {} at body offset {}", context_,
                            fmt::format(what, std::forward<Args>(args)...), offset));
  }

  std::size_t remaining() const { return body_.size() - position_; }

  Result<void> need(std::size_t length, std::string_view field) const {
    if (length <= remaining()) return success();
    return invalid(position_, "body ends inside {} ({} bytes needed, {} left)", field, length,
                   remaining());
  }

  template <class T>
  Result<T> read(std::string_view field) {
    IQDB_TRY(need(sizeof(T), field));
    T value;
    std::memcpy(&value, body_.data() + position_, sizeof(T));
    position_ += sizeof(T);
    return value;
  }

  // A u32 length followed by that many bytes.
  Result<std::string_view> read_bytes(std::string_view field) {
    const std::size_t length_at = position_;
    IQDB_TRY_ASSIGN(const auto length, read<std::uint32_t>(field));
    return take_bytes(length_at, length, field);
  }

  Result<std::string_view> take_bytes(std::size_t length_at, std::uint32_t length,
                                      std::string_view field) {
    if (length > remaining()) {
      return invalid(length_at, "{} length {} exceeds the {} bytes left", field, length,
                     remaining());
    }
    const std::string_view bytes(reinterpret_cast<const char*>(body_.data() + position_), length);
    position_ += length;
    return bytes;
  }

  Result<void> parse_body() {
    IQDB_TRY_ASSIGN(const auto type, read<std::uint8_t>("the record type"));
    switch (static_cast<WalRecordType>(type)) {
      case WalRecordType::Insert:
      case WalRecordType::Remove:
        prepare_floats();
        IQDB_TRY(parse_op(static_cast<WalOp::Kind>(type)));
        break;
      case WalRecordType::Batch:
        prepare_floats();
        IQDB_TRY(parse_batch());
        break;
      case WalRecordType::Abort: {
        IQDB_TRY_ASSIGN(out_.aborted_lsn_, read<std::uint64_t>("the aborted LSN"));
        IQDB_TRY_ASSIGN(out_.aborted_applied_ops_, read<std::uint32_t>("the applied op count"));
        break;
      }
      default: return invalid(0, "unknown record type {}", type);
    }
    out_.type_ = static_cast<WalRecordType>(type);
    if (remaining() != 0) {
      return invalid(position_, "{} trailing bytes after the record", remaining());
    }
    return success();
  }

  // Every float takes four body bytes, so a quarter of the body bounds the
  // floats of all its ops: with the buffer that large up front, the spans of
  // earlier ops stay valid while later ones are decoded.
  void prepare_floats() {
    const std::size_t bound = body_.size() / sizeof(float);
    if (out_.floats_.size() < bound) out_.floats_.resize(bound);
  }

  Result<void> parse_batch() {
    const std::size_t count_at = position_;
    IQDB_TRY_ASSIGN(const auto count, read<std::uint32_t>("the batch count"));
    if (count == 0) return invalid(count_at, "empty batch (count 0)");
    if (count > remaining() / kMinOpSize) {
      return invalid(count_at, "batch count {} exceeds what {} remaining bytes can hold", count,
                     remaining());
    }
    for (std::uint32_t i = 0; i < count; ++i) {
      const std::size_t op_at = position_;
      IQDB_TRY_ASSIGN(const auto kind, read<std::uint8_t>("a batch op type"));
      if (kind == static_cast<std::uint8_t>(WalRecordType::Batch)) {
        return invalid(op_at, "nested batch (op type 3) in op {} of the batch", i);
      }
      if (kind != static_cast<std::uint8_t>(WalOp::Kind::Insert) &&
          kind != static_cast<std::uint8_t>(WalOp::Kind::Remove)) {
        return invalid(op_at,
                       "op type {} in op {} of the batch is neither insert (1) nor remove (2)",
                       kind, i);
      }
      IQDB_TRY(parse_op(static_cast<WalOp::Kind>(kind)));
    }
    return success();
  }

  DecodedOp& next_op() {
    if (out_.op_count_ == out_.ops_.size()) out_.ops_.emplace_back();
    return out_.ops_[out_.op_count_++];
  }

  Result<void> parse_op(WalOp::Kind kind) {
    DecodedOp& op = next_op();
    op.kind = kind;
    op.vector = {};
    op.metadata.clear();
    IQDB_TRY(parse_id(op.id));
    if (kind == WalOp::Kind::Remove) return success();
    IQDB_TRY(parse_vector(op.vector));
    return parse_metadata(op.metadata);
  }

  Result<void> parse_id(VectorId& id) {
    const std::size_t tag_at = position_;
    IQDB_TRY_ASSIGN(const auto tag, read<std::uint8_t>("the id tag"));
    if (tag == static_cast<std::uint8_t>(IdTag::U64)) {
      IQDB_TRY_ASSIGN(id, read<std::uint64_t>("the integer id"));
      return success();
    }
    if (tag != static_cast<std::uint8_t>(IdTag::Bytes)) {
      return invalid(tag_at, "unknown id tag {}", tag);
    }
    const std::size_t length_at = position_;
    IQDB_TRY_ASSIGN(const auto length, read<std::uint32_t>("the byte id length"));
    if (length == 0 || length > kWalMaxByteIdLength) {
      return invalid(length_at, "byte id length {} is outside 1..{}", length, kWalMaxByteIdLength);
    }
    IQDB_TRY_ASSIGN(const auto bytes, take_bytes(length_at, length, "the byte id"));
    id = *VectorId::from_bytes(std::string(bytes));
    return success();
  }

  Result<void> parse_vector(std::span<const float>& vector) {
    const std::size_t dim_at = position_;
    IQDB_TRY_ASSIGN(const auto dim, read<std::uint32_t>("the dimension"));
    if (dim == 0 || dim > kWalMaxDimension) {
      return invalid(dim_at, "dimension {} is outside 1..{}", dim, kWalMaxDimension);
    }
    const std::size_t size = std::size_t{dim} * sizeof(float);
    IQDB_TRY(need(size, "the vector"));
    // Room is guaranteed by prepare_floats(). The body is not aligned for
    // float, so the components are copied, never reinterpreted in place.
    float* components = out_.floats_.data() + out_.floats_used_;
    std::memcpy(components, body_.data() + position_, size);
    position_ += size;
    out_.floats_used_ += dim;
    vector = {components, dim};
    return success();
  }

  Result<void> parse_metadata(Metadata& metadata) {
    const std::size_t count_at = position_;
    IQDB_TRY_ASSIGN(const auto count, read<std::uint32_t>("the metadata count"));
    if (count > remaining() / kMinMetadataEntrySize) {
      return invalid(count_at, "metadata count {} exceeds what {} remaining bytes can hold", count,
                     remaining());
    }
    for (std::uint32_t i = 0; i < count; ++i) {
      const std::size_t key_at = position_;
      IQDB_TRY_ASSIGN(const auto key, read_bytes("a metadata key"));
      const auto hint = metadata.lower_bound(key);
      if (hint != metadata.end() && hint->first == key) {
        return invalid(key_at, "duplicate metadata key {}", printable(key));
      }
      const auto entry = metadata.emplace_hint(hint, std::string(key), MetadataValue{});
      IQDB_TRY(parse_value(entry->second));
    }
    return success();
  }

  Result<void> parse_value(MetadataValue& value) {
    const std::size_t tag_at = position_;
    IQDB_TRY_ASSIGN(const auto tag, read<std::uint8_t>("a metadata value tag"));
    switch (static_cast<ValueTag>(tag)) {
      case ValueTag::Null: value = std::monostate{}; break;
      case ValueTag::String: {
        IQDB_TRY_ASSIGN(const auto text, read_bytes("a metadata string"));
        value = std::string(text);
        break;
      }
      case ValueTag::Int: {
        IQDB_TRY_ASSIGN(value, read<std::int64_t>("a metadata int64"));
        break;
      }
      case ValueTag::Double: {
        IQDB_TRY_ASSIGN(value, read<double>("a metadata float64"));
        break;
      }
      case ValueTag::Bool: {
        const std::size_t flag_at = position_;
        IQDB_TRY_ASSIGN(const auto flag, read<std::uint8_t>("a metadata bool"));
        if (flag > 1) return invalid(flag_at, "bool value {} is neither 0 nor 1", flag);
        value = flag == 1;
        break;
      }
      default: return invalid(tag_at, "unknown metadata value tag {}", tag);
    }
    return success();
  }

  std::span<const std::byte> body_;
  std::string_view context_;
  DecodedRecord& out_;
  std::size_t position_ = 0;
};

Result<void> decode_record(std::span<const std::byte> body, DecodedRecord& out,
                           std::string_view context) {
  return WalBodyParser(body, context, out).parse();
}

Result<void> check_encodable(const WalOp& op) {
  if (!op.id->is_u64() && op.id->as_bytes().size() > kWalMaxByteIdLength) {
    return fail(ErrorKind::InvalidArgument,
                fmt::format("byte id of {} bytes is longer than the write-ahead log's limit of {}",
                            op.id->as_bytes().size(), kWalMaxByteIdLength));
  }
  if (op.kind == WalOp::Kind::Remove) return success();
  if (op.vector.empty() || op.vector.size() > kWalMaxDimension) {
    return fail(ErrorKind::InvalidArgument,
                fmt::format("vector has {} components; the write-ahead log takes 1..{}",
                            op.vector.size(), kWalMaxDimension));
  }
  if (op.metadata == nullptr) return success();
  if (op.metadata->size() > kMaxU32) {
    return fail(ErrorKind::InvalidArgument,
                fmt::format("{} metadata entries exceed the write-ahead log's limit of {}",
                            op.metadata->size(), kMaxU32));
  }
  for (const auto& [key, value] : *op.metadata) {
    const auto* text = std::get_if<std::string>(&value);
    if (key.size() > kMaxU32 || (text != nullptr && text->size() > kMaxU32)) {
      return fail(ErrorKind::InvalidArgument,
                  fmt::format("metadata entry {} exceeds the write-ahead log's limit of {} bytes "
                              "per key or string",
                              printable(key), kMaxU32));
    }
  }
  return success();
}

void encode_insert(std::vector<std::byte>& out, const VectorId& id, std::span<const float> vector,
                   const Metadata& metadata) {
  FieldWriter(out, insert_size(id, vector, &metadata)).insert(id, vector, &metadata);
}

void encode_remove(std::vector<std::byte>& out, const VectorId& id) {
  FieldWriter(out, remove_size(id)).remove(id);
}

namespace {

std::size_t batch_size(std::span<const WalOp> ops) {
  std::size_t size = 1 + 4;
  for (const WalOp& op : ops) size += op_size(op);
  return size;
}

void write_op(FieldWriter& writer, const WalOp& op) {
  if (op.kind == WalOp::Kind::Insert) {
    writer.insert(*op.id, op.vector, op.metadata);
  } else {
    writer.remove(*op.id);
  }
}

void write_batch(FieldWriter& writer, std::span<const WalOp> ops) {
  writer.value(WalRecordType::Batch);
  writer.value(static_cast<std::uint32_t>(ops.size()));
  for (const WalOp& op : ops) write_op(writer, op);
}

}  // namespace

void encode_batch(std::vector<std::byte>& out, std::span<const WalOp> ops) {
  FieldWriter writer(out, batch_size(ops));
  write_batch(writer, ops);
}

std::size_t wal_body_size(std::span<const WalOp> ops, bool as_batch) {
  return as_batch ? batch_size(ops) : op_size(ops[0]);
}

void encode_body(std::span<std::byte> out, std::span<const WalOp> ops, bool as_batch) {
  FieldWriter writer(out.data());
  if (as_batch) {
    write_batch(writer, ops);
  } else {
    write_op(writer, ops[0]);
  }
}

void encode_abort(std::vector<std::byte>& out, std::uint64_t lsn, std::uint32_t applied_ops) {
  FieldWriter writer(out, 1 + sizeof(lsn) + sizeof(applied_ops));
  writer.value(WalRecordType::Abort);
  writer.value(lsn);
  writer.value(applied_ops);
}

}  // namespace iqdb::persist
