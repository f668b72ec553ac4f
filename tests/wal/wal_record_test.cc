#include "wal/wal_record.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "support/test_util.h"

namespace iqdb::persist::test {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;

constexpr std::string_view kContext =
    "/db/x.iqdb.wal-0000000000000003: frame at offset 4096 (LSN 17)";

VectorId byte_id(std::string bytes) { return *VectorId::from_bytes(std::move(bytes)); }

Metadata rich_metadata() {
  using namespace std::string_literals;
  return {
      {"null", MetadataValue{}},
      {"text", "hello"s},
      {"nul\0key"s, "nul\0value\xff"s},
      {""s, "empty key"s},
      {"empty string", ""s},
      {"int", std::int64_t{-1234567890123}},
      {"min", std::numeric_limits<std::int64_t>::min()},
      {"double", 3.5},
      {"negative zero", -0.0},
      {"true", true},
      {"false", false},
  };
}

// Builds hand-made bodies byte by byte, little-endian.
class Bytes {
 public:
  template <class T>
  Bytes& put(T value) {
    const auto* p = reinterpret_cast<const std::byte*>(&value);
    bytes_.insert(bytes_.end(), p, p + sizeof(T));
    return *this;
  }
  Bytes& u8(std::uint8_t v) { return put(v); }
  Bytes& u32(std::uint32_t v) { return put(v); }
  Bytes& u64(std::uint64_t v) { return put(v); }
  Bytes& text(std::string_view s) {
    u32(static_cast<std::uint32_t>(s.size()));
    for (char c : s) u8(static_cast<std::uint8_t>(c));
    return *this;
  }
  Bytes& floats(std::uint32_t n) {
    for (std::uint32_t i = 0; i < n; ++i) put(static_cast<float>(i));
    return *this;
  }
  const std::vector<std::byte>& bytes() const { return bytes_; }

 private:
  std::vector<std::byte> bytes_;
};

// An insert body of integer id 1 with one component, up to its metadata: the
// metadata count is at body offset 18, a first key's length at 22.
Bytes insert_up_to_metadata() {
  Bytes bytes;
  bytes.u8(1).u8(0).u64(1).u32(1).floats(1);
  return bytes;
}

Result<void> decode(std::span<const std::byte> body, DecodedRecord& record) {
  return decode_record(body, record, kContext);
}

Result<void> decode(std::span<const std::byte> body) {
  DecodedRecord record;
  return decode_record(body, record, kContext);
}

// Copies the vector of a decoded op, for comparisons.
std::vector<float> components(const DecodedOp& op) { return {op.vector.begin(), op.vector.end()}; }

void expect_float_aligned(const DecodedOp& op) {
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(op.vector.data()) % alignof(float), 0u);
}

TEST(WalRecordTest, InsertWithIntegerIdAndNoMetadataRoundTrips) {
  const std::vector<float> vector = {1.5f, -2.0f, 0.0f, 1e30f};
  std::vector<std::byte> body;
  encode_insert(body, 42, vector, Metadata{});
  EXPECT_EQ(body.size(), 1u + 9u + 4u + 16u + 4u);
  EXPECT_EQ(body[0], std::byte{1});

  DecodedRecord record;
  ASSERT_THAT(decode(body, record), IsOk());
  EXPECT_EQ(record.type(), WalRecordType::Insert);
  ASSERT_EQ(record.ops().size(), 1u);
  const DecodedOp& op = record.ops()[0];
  EXPECT_EQ(op.kind, WalOp::Kind::Insert);
  EXPECT_EQ(op.id, VectorId(42));
  EXPECT_EQ(components(op), vector);
  EXPECT_TRUE(op.metadata.empty());
  expect_float_aligned(op);
}

TEST(WalRecordTest, InsertWithByteIdAndRichMetadataRoundTrips) {
  using namespace std::string_literals;
  const VectorId id = byte_id("doc\0/\xff"s);
  const std::vector<float> vector = {0.25f};
  const Metadata metadata = rich_metadata();
  std::vector<std::byte> body;
  encode_insert(body, id, vector, metadata);

  DecodedRecord record;
  ASSERT_THAT(decode(body, record), IsOk());
  ASSERT_EQ(record.ops().size(), 1u);
  const DecodedOp& op = record.ops()[0];
  EXPECT_EQ(op.id, id);
  EXPECT_EQ(components(op), vector);
  EXPECT_EQ(op.metadata, metadata);
}

TEST(WalRecordTest, RemoveRoundTripsWithBothIdKinds) {
  for (const VectorId& id : {VectorId(0), VectorId(~std::uint64_t{0}), byte_id("x"),
                             byte_id(std::string(kWalMaxByteIdLength, 'z'))}) {
    std::vector<std::byte> body;
    encode_remove(body, id);
    DecodedRecord record;
    ASSERT_THAT(decode(body, record), IsOk());
    EXPECT_EQ(record.type(), WalRecordType::Remove);
    ASSERT_EQ(record.ops().size(), 1u);
    EXPECT_EQ(record.ops()[0].kind, WalOp::Kind::Remove);
    EXPECT_EQ(record.ops()[0].id, id);
    EXPECT_TRUE(record.ops()[0].vector.empty());
    EXPECT_TRUE(record.ops()[0].metadata.empty());
  }
}

TEST(WalRecordTest, AbortRoundTripsTheRefusedLsnAndAppliedOps) {
  std::vector<std::byte> body;
  encode_abort(body, 0x0102030405060708ull, 3);
  EXPECT_EQ(body.size(), 13u);
  DecodedRecord record;
  ASSERT_THAT(decode(body, record), IsOk());
  EXPECT_EQ(record.type(), WalRecordType::Abort);
  EXPECT_EQ(record.aborted_lsn(), 0x0102030405060708ull);
  EXPECT_EQ(record.aborted_applied_ops(), 3u);
  EXPECT_TRUE(record.ops().empty());
}

TEST(WalRecordTest, BatchMixingInsertsAndRemovesRoundTripsInOrder) {
  const VectorId a = 1, b = byte_id("bee"), c = 3;
  const std::vector<float> va = {1, 2, 3}, vc = {4, 5, 6, 7, 8};
  const Metadata rich = rich_metadata();
  const Metadata none;
  const std::array ops = {WalOp::insert(a, va, rich), WalOp::remove(b), WalOp::insert(c, vc, none),
                          WalOp::remove(a)};
  std::vector<std::byte> body;
  encode_batch(body, ops);
  EXPECT_EQ(body[0], std::byte{3});

  DecodedRecord record;
  ASSERT_THAT(decode(body, record), IsOk());
  EXPECT_EQ(record.type(), WalRecordType::Batch);
  ASSERT_EQ(record.ops().size(), 4u);
  const auto decoded = record.ops();
  EXPECT_EQ(decoded[0].kind, WalOp::Kind::Insert);
  EXPECT_EQ(decoded[0].id, a);
  EXPECT_EQ(components(decoded[0]), va);
  EXPECT_EQ(decoded[0].metadata, rich);
  EXPECT_EQ(decoded[1].kind, WalOp::Kind::Remove);
  EXPECT_EQ(decoded[1].id, b);
  EXPECT_EQ(decoded[2].kind, WalOp::Kind::Insert);
  EXPECT_EQ(decoded[2].id, c);
  EXPECT_EQ(components(decoded[2]), vc);
  EXPECT_TRUE(decoded[2].metadata.empty());
  EXPECT_EQ(decoded[3].kind, WalOp::Kind::Remove);
  EXPECT_EQ(decoded[3].id, a);
  expect_float_aligned(decoded[0]);
  expect_float_aligned(decoded[2]);
}

TEST(WalRecordTest, InsertOpWithNullMetadataEncodesAsEmptyMetadata) {
  const std::vector<float> vector = {1};
  const VectorId id = 7;
  std::vector<std::byte> with_null, with_empty;
  encode_batch(with_null, std::array{WalOp{WalOp::Kind::Insert, &id, vector, nullptr}});
  encode_batch(with_empty, std::array{WalOp::insert(id, vector, Metadata{})});
  EXPECT_EQ(with_null, with_empty);
}

TEST(WalRecordTest, EncodersAppendToTheBufferKeepingItsContents) {
  std::vector<std::byte> out = {std::byte{0xAA}};
  encode_remove(out, 5);
  std::vector<std::byte> alone;
  encode_remove(alone, 5);
  ASSERT_EQ(out.size(), 1 + alone.size());
  EXPECT_EQ(out[0], std::byte{0xAA});
  EXPECT_TRUE(std::equal(alone.begin(), alone.end(), out.begin() + 1));
}

TEST(WalRecordTest, EncodeBodyWritesTheEncodersBytesInPlace) {
  const VectorId a = 1, b = byte_id("bee");
  const std::vector<float> va = {1, 2, 3};
  const Metadata rich = rich_metadata();
  const std::array ops = {WalOp::insert(a, va, rich), WalOp::remove(b),
                          WalOp{WalOp::Kind::Insert, &a, va, nullptr}};
  const auto in_place = [](std::span<const WalOp> some, bool as_batch) {
    // Over stale bytes, as a reused frame buffer is: every byte must be written.
    std::vector<std::byte> out(wal_body_size(some, as_batch), std::byte{0xEE});
    encode_body(out, some, as_batch);
    return out;
  };
  std::vector<std::byte> expected;
  encode_batch(expected, ops);
  EXPECT_EQ(in_place(ops, true), expected);
  expected.clear();
  encode_insert(expected, a, va, rich);
  EXPECT_EQ(in_place(std::span(ops).first(1), false), expected);
  expected.clear();
  encode_remove(expected, b);
  EXPECT_EQ(in_place(std::span(ops).subspan(1, 1), false), expected);
  expected.clear();
  encode_insert(expected, a, va, Metadata{});
  EXPECT_EQ(in_place(std::span(ops).subspan(2, 1), false), expected);
}

TEST(WalRecordTest, PlainlyEncodableOpsAreEncodable) {
  const std::vector<float> vector(3, 1.0f);
  const VectorId id = 1, bytes = byte_id("a");
  const Metadata metadata = rich_metadata();
  EXPECT_TRUE(plainly_encodable(WalOp::insert(id, vector, Metadata{})));
  EXPECT_TRUE(plainly_encodable(WalOp{WalOp::Kind::Insert, &id, vector, nullptr}));
  EXPECT_TRUE(plainly_encodable(WalOp::remove(id)));
  // The rest is left to check_encodable().
  EXPECT_FALSE(plainly_encodable(WalOp::remove(bytes)));
  EXPECT_FALSE(plainly_encodable(WalOp::insert(id, vector, metadata)));
  EXPECT_FALSE(plainly_encodable(WalOp::insert(id, {}, Metadata{})));
}

TEST(WalRecordTest, DecodesFromUnalignedBodies) {
  const std::vector<float> vector = {1, 2, 3, 4, 5, 6, 7};
  std::vector<std::byte> storage(3);
  encode_insert(storage, 9, vector, Metadata{});
  for (std::size_t shift = 0; shift < 3; ++shift) {
    const auto body = std::span<const std::byte>(storage).subspan(3);
    std::vector<std::byte> shifted(shift);
    shifted.insert(shifted.end(), body.begin(), body.end());
    DecodedRecord record;
    ASSERT_THAT(decode(std::span<const std::byte>(shifted).subspan(shift), record), IsOk());
    EXPECT_EQ(components(record.ops()[0]), vector);
    expect_float_aligned(record.ops()[0]);
  }
}

TEST(WalRecordTest, OneDecodedRecordIsReusedAcrossRecordsOfDifferentShapes) {
  const std::vector<float> big(300, 1.0f), small = {9.0f, 8.0f};
  const Metadata rich = rich_metadata();
  const VectorId byte = byte_id("name");
  std::vector<std::byte> batch, insert_big, insert_small, remove, abort;
  encode_batch(batch, std::array{WalOp::insert(1, big, rich), WalOp::remove(byte),
                                 WalOp::insert(2, small, {})});
  encode_insert(insert_big, byte, big, rich);
  encode_insert(insert_small, 3, small, Metadata{});
  encode_remove(remove, 4);
  encode_abort(abort, 77, 0);

  DecodedRecord record;
  ASSERT_THAT(decode(batch, record), IsOk());
  ASSERT_EQ(record.ops().size(), 3u);
  EXPECT_EQ(components(record.ops()[2]), small);

  ASSERT_THAT(decode(insert_small, record), IsOk());
  EXPECT_EQ(record.type(), WalRecordType::Insert);
  ASSERT_EQ(record.ops().size(), 1u);
  EXPECT_EQ(record.ops()[0].id, VectorId(3));
  EXPECT_EQ(components(record.ops()[0]), small);
  EXPECT_TRUE(record.ops()[0].metadata.empty()) << "metadata of the batch's first op leaked";

  ASSERT_THAT(decode(abort, record), IsOk());
  EXPECT_EQ(record.type(), WalRecordType::Abort);
  EXPECT_EQ(record.aborted_lsn(), 77u);
  EXPECT_TRUE(record.ops().empty());

  ASSERT_THAT(decode(insert_big, record), IsOk());
  ASSERT_EQ(record.ops().size(), 1u);
  EXPECT_EQ(record.ops()[0].id, byte);
  EXPECT_EQ(components(record.ops()[0]), big);
  EXPECT_EQ(record.ops()[0].metadata, rich);

  ASSERT_THAT(decode(remove, record), IsOk());
  EXPECT_EQ(record.type(), WalRecordType::Remove);
  ASSERT_EQ(record.ops().size(), 1u);
  EXPECT_EQ(record.ops()[0].id, VectorId(4));
  EXPECT_TRUE(record.ops()[0].vector.empty());
  EXPECT_TRUE(record.ops()[0].metadata.empty());

  ASSERT_THAT(decode(batch, record), IsOk());
  ASSERT_EQ(record.ops().size(), 3u);
  EXPECT_EQ(components(record.ops()[0]), big);
  EXPECT_EQ(record.ops()[0].metadata, rich);
  EXPECT_EQ(record.ops()[1].id, byte);
  EXPECT_TRUE(record.ops()[1].metadata.empty());
  EXPECT_EQ(components(record.ops()[2]), small);
  EXPECT_TRUE(record.ops()[2].metadata.empty());
}

TEST(WalRecordTest, AFailedDecodeLeavesNoOpsAndTheRecordStaysReusable) {
  std::vector<std::byte> good;
  encode_insert(good, 1, std::vector<float>{1, 2}, Metadata{});
  DecodedRecord record;
  ASSERT_THAT(decode(good, record), IsOk());
  const auto truncated = std::span<const std::byte>(good).first(good.size() - 1);
  EXPECT_THAT(decode(truncated, record), IsError(ErrorKind::InvalidPayload));
  EXPECT_TRUE(record.ops().empty());
  ASSERT_THAT(decode(good, record), IsOk());
  EXPECT_EQ(components(record.ops()[0]), (std::vector<float>{1, 2}));
}

// A few small bodies covering every type, both id kinds and every value tag.
std::vector<std::vector<std::byte>> small_bodies() {
  using namespace std::string_literals;
  const std::vector<float> vector = {1.0f, -2.0f};
  const Metadata metadata = {
      {"k\0"s, "v"s}, {"n", MetadataValue{}}, {"i", std::int64_t{5}}, {"d", 2.5}, {"b", true}};
  const VectorId id = byte_id("ab");
  std::vector<std::vector<std::byte>> bodies(5);
  encode_insert(bodies[0], id, vector, metadata);
  encode_insert(bodies[1], 12, vector, Metadata{});
  encode_remove(bodies[2], id);
  encode_batch(bodies[3],
               std::array{WalOp::insert(3, vector, metadata), WalOp::remove(4), WalOp::remove(id)});
  encode_abort(bodies[4], 99, 0);
  return bodies;
}

TEST(WalRecordTest, EveryTruncationIsInvalidPayloadNamingTheContext) {
  DecodedRecord record;
  for (const auto& body : small_bodies()) {
    ASSERT_THAT(decode(body, record), IsOk());
    for (std::size_t length = 0; length < body.size(); ++length) {
      EXPECT_THAT(decode(std::span<const std::byte>(body).first(length), record),
                  IsError(ErrorKind::InvalidPayload, {std::string(kContext), "at body offset"}))
          << "length " << length << " of " << body.size();
    }
  }
}

TEST(WalRecordTest, EverySingleByteFlipDecodesOrIsInvalidPayload) {
  DecodedRecord reused;
  std::size_t decoded = 0, refused = 0;
  for (const auto& body : small_bodies()) {
    for (std::size_t offset = 0; offset < body.size(); ++offset) {
      for (const std::uint8_t mask : {0x01, 0x80, 0xFF}) {
        std::vector<std::byte> damaged = body;
        damaged[offset] ^= std::byte{mask};
        DecodedRecord fresh;
        const auto result = decode(damaged, fresh);
        const auto again = decode(damaged, reused);
        EXPECT_EQ(result.has_value(), again.has_value());
        if (result) {
          ++decoded;
          for (const DecodedOp& op : fresh.ops()) expect_float_aligned(op);
        } else {
          ++refused;
          EXPECT_THAT(result, IsError(ErrorKind::InvalidPayload, "at body offset"))
              << "offset " << offset << " mask " << int{mask};
        }
      }
    }
  }
  EXPECT_GT(decoded, 0u);  // flips inside floats, ids and values are still well-formed
  EXPECT_GT(refused, 0u);
}

TEST(WalRecordTest, HugeDimensionIsRefusedBeforeAllocating) {
  const auto body = Bytes().u8(1).u8(0).u64(1).u32(0xFFFFFFFF).floats(2).u32(0).bytes();
  EXPECT_THAT(decode(body),
              IsError(ErrorKind::InvalidPayload, {"dimension 4294967295", "at body offset 10"}));
}

TEST(WalRecordTest, DimensionAboveTheLimitIsRefused) {
  const auto body = Bytes().u8(1).u8(0).u64(1).u32(kWalMaxDimension + 1).bytes();
  EXPECT_THAT(decode(body),
              IsError(ErrorKind::InvalidPayload, {"dimension 16777217", "at body offset 10"}));
}

TEST(WalRecordTest, DimensionLargerThanTheBodyIsRefused) {
  const auto body = Bytes().u8(1).u8(0).u64(1).u32(kWalMaxDimension).floats(2).u32(0).bytes();
  EXPECT_THAT(decode(body),
              IsError(ErrorKind::InvalidPayload, {"ends inside the vector", "at body offset 14"}));
}

TEST(WalRecordTest, ZeroDimensionIsRefused) {
  const auto body = Bytes().u8(1).u8(0).u64(1).u32(0).u32(0).bytes();
  EXPECT_THAT(decode(body), IsError(ErrorKind::InvalidPayload, {"dimension 0", "body offset 10"}));
}

TEST(WalRecordTest, HugeMetadataCountIsRefused) {
  const auto body = insert_up_to_metadata().u32(0xFFFFFFFF).bytes();
  EXPECT_THAT(decode(body), IsError(ErrorKind::InvalidPayload,
                                    {"metadata count 4294967295", "at body offset 18"}));
}

TEST(WalRecordTest, HugeBatchCountIsRefused) {
  const auto body = Bytes().u8(3).u32(0xFFFFFFFF).u8(2).u8(0).u64(1).bytes();
  EXPECT_THAT(decode(body),
              IsError(ErrorKind::InvalidPayload, {"batch count 4294967295", "at body offset 1"}));
}

TEST(WalRecordTest, HugeStringLengthIsRefused) {
  const auto body = insert_up_to_metadata().u32(1).text("k").u8(1).u32(0xFFFFFFF0).u8('x').bytes();
  EXPECT_THAT(decode(body), IsError(ErrorKind::InvalidPayload,
                                    {"metadata string length 4294967280 exceeds the 1 bytes left",
                                     "at body offset 28"}));
}

TEST(WalRecordTest, HugeKeyLengthIsRefused) {
  const auto body = insert_up_to_metadata().u32(1).u32(0x7FFFFFFF).u8(0).bytes();
  EXPECT_THAT(decode(body), IsError(ErrorKind::InvalidPayload,
                                    {"metadata key length 2147483647 exceeds the 1 bytes left",
                                     "at body offset 22"}));
}

TEST(WalRecordTest, ZeroLengthByteIdIsRefused) {
  const auto body = Bytes().u8(2).u8(1).u32(0).bytes();
  EXPECT_THAT(decode(body),
              IsError(ErrorKind::InvalidPayload, {"byte id length 0", "at body offset 2"}));
}

TEST(WalRecordTest, ByteIdLongerThanTheLimitIsRefused) {
  const auto body = Bytes().u8(2).u8(1).text(std::string(kWalMaxByteIdLength + 1, 'a')).bytes();
  EXPECT_THAT(decode(body),
              IsError(ErrorKind::InvalidPayload, {"byte id length 65537", "at body offset 2"}));
}

TEST(WalRecordTest, UnknownRecordTypeIsRefused) {
  for (const std::uint8_t type : {0, 5, 255}) {
    const auto body = Bytes().u8(type).u8(0).u64(1).bytes();
    EXPECT_THAT(decode(body),
                IsError(ErrorKind::InvalidPayload,
                        {"unknown record type " + std::to_string(type), "at body offset 0"}));
  }
}

TEST(WalRecordTest, EmptyBodyIsRefused) {
  EXPECT_THAT(decode({}), IsError(ErrorKind::InvalidPayload,
                                  {"ends inside the record type", "at body offset 0"}));
}

TEST(WalRecordTest, UnknownIdTagIsRefused) {
  const auto body = Bytes().u8(2).u8(2).u64(1).bytes();
  EXPECT_THAT(decode(body),
              IsError(ErrorKind::InvalidPayload, {"unknown id tag 2", "at body offset 1"}));
}

TEST(WalRecordTest, UnknownMetadataValueTagIsRefused) {
  const auto body = insert_up_to_metadata().u32(1).text("k").u8(5).bytes();
  EXPECT_THAT(decode(body), IsError(ErrorKind::InvalidPayload,
                                    {"unknown metadata value tag 5", "at body offset 27"}));
}

TEST(WalRecordTest, BoolOtherThanZeroOrOneIsRefused) {
  const auto body = insert_up_to_metadata().u32(1).text("k").u8(4).u8(2).bytes();
  EXPECT_THAT(decode(body),
              IsError(ErrorKind::InvalidPayload, {"bool value 2", "at body offset 28"}));
}

TEST(WalRecordTest, RepeatedMetadataKeyIsRefused) {
  using namespace std::string_literals;
  const auto body = insert_up_to_metadata().u32(2).text("k\0"s).u8(0).text("k\0"s).u8(0).bytes();
  EXPECT_THAT(decode(body), IsError(ErrorKind::InvalidPayload,
                                    {"duplicate metadata key \"k\\x00\"", "at body offset 29"}));
}

// A message quotes at most 64 bytes of a key, however long the key.
TEST(WalRecordTest, RepeatedLongMetadataKeyIsQuotedCutShort) {
  const std::string key(1000, 'k');
  const auto body = insert_up_to_metadata().u32(2).text(key).u8(0).text(key).u8(0).bytes();
  EXPECT_THAT(decode(body), IsError(ErrorKind::InvalidPayload,
                                    {"duplicate metadata key \"" + std::string(64, 'k') +
                                         "\" (first 64 of 1000 bytes)",
                                     "at body offset 1027"}));
}

TEST(WalRecordTest, TrailingBytesAreRefused) {
  std::vector<std::byte> body;
  encode_remove(body, 1);
  body.push_back(std::byte{0});
  body.push_back(std::byte{0});
  EXPECT_THAT(decode(body),
              IsError(ErrorKind::InvalidPayload, {"2 trailing bytes", "at body offset 10"}));
}

TEST(WalRecordTest, EmptyBatchIsRefused) {
  const auto body = Bytes().u8(3).u32(0).bytes();
  EXPECT_THAT(decode(body),
              IsError(ErrorKind::InvalidPayload, {"empty batch", "at body offset 1"}));
}

TEST(WalRecordTest, NestedBatchIsRefused) {
  const auto body = Bytes().u8(3).u32(2).u8(2).u8(0).u64(1).u8(3).u32(1).u8(2).u8(0).u64(1).bytes();
  EXPECT_THAT(decode(body),
              IsError(ErrorKind::InvalidPayload, {"nested batch", "at body offset 15"}));
}

TEST(WalRecordTest, AbortInsideABatchIsRefused) {
  const auto body = Bytes().u8(3).u32(1).u8(4).u64(1).u8(0).bytes();
  EXPECT_THAT(decode(body), IsError(ErrorKind::InvalidPayload, {"op type 4", "at body offset 5"}));
}

TEST(WalRecordTest, CheckEncodableAcceptsWhatTheDecoderAccepts) {
  const std::vector<float> vector(3, 1.0f);
  const VectorId id = byte_id(std::string(kWalMaxByteIdLength, 'a'));
  const Metadata metadata = rich_metadata();
  EXPECT_THAT(check_encodable(WalOp::insert(id, vector, metadata)), IsOk());
  EXPECT_THAT(check_encodable(WalOp::remove(id)), IsOk());
  EXPECT_THAT(check_encodable(WalOp{WalOp::Kind::Insert, &id, vector, nullptr}), IsOk());
}

TEST(WalRecordTest, CheckEncodableRefusesWhatTheDecoderWouldRefuse) {
  const std::vector<float> vector(3, 1.0f);
  const VectorId long_id = byte_id(std::string(kWalMaxByteIdLength + 1, 'a'));
  const VectorId id = 1;
  EXPECT_THAT(check_encodable(WalOp::remove(long_id)),
              IsError(ErrorKind::InvalidArgument, "65537 bytes"));
  EXPECT_THAT(check_encodable(WalOp::insert(id, {}, {})),
              IsError(ErrorKind::InvalidArgument, "0 components"));
}

}  // namespace
}  // namespace iqdb::persist::test
