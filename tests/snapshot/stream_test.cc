#include "iqdb/persist/stream.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <vector>

#include "support/test_util.h"

namespace iqdb::persist::test {
namespace {

// A StreamWriter into memory, to check what the typed helpers write.
class VectorWriter final : public StreamWriter {
 public:
  Result<void> write(std::span<const std::byte> bytes) override {
    bytes_.insert(bytes_.end(), bytes.begin(), bytes.end());
    return success();
  }
  const std::vector<std::byte>& bytes() const { return bytes_; }

 private:
  std::vector<std::byte> bytes_;
};

class StreamReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_THAT(writer_.write_value(std::uint32_t{0x01020304}), IsOk());
    ASSERT_THAT(writer_.write_value(std::uint8_t{9}), IsOk());
    const std::array<float, 3> floats = {1.5f, -2.0f, 3.25f};
    ASSERT_THAT(writer_.write_array(std::span<const float>(floats)), IsOk());
  }

  StreamReader reader() const {
    return StreamReader(writer_.bytes(), "/d/x.iqdb: section 'payload'");
  }

  VectorWriter writer_;
};

TEST_F(StreamReaderTest, ReadsBackWhatTheWriterWroteInLittleEndian) {
  ASSERT_EQ(writer_.bytes().size(), 4u + 1u + 12u);
  EXPECT_EQ(writer_.bytes()[0], std::byte{0x04});  // little-endian host
  StreamReader in = reader();
  auto word = in.read_value<std::uint32_t>();
  ASSERT_THAT(word, IsOk());
  EXPECT_EQ(word.value(), 0x01020304u);
  auto tag = in.read_value<std::uint8_t>();
  ASSERT_THAT(tag, IsOk());
  EXPECT_EQ(tag.value(), 9);
  std::array<float, 3> floats{};
  ASSERT_THAT(in.read_array(std::span<float>(floats)), IsOk());
  EXPECT_THAT(floats, ::testing::ElementsAre(1.5f, -2.0f, 3.25f));
  EXPECT_EQ(in.remaining(), 0u);
  EXPECT_EQ(in.position(), 17u);
  EXPECT_THAT(in.expect_end(), IsOk());
}

TEST_F(StreamReaderTest, ReadingPastTheEndIsInvalidPayloadAndConsumesNothing) {
  StreamReader in = reader();
  ASSERT_THAT(in.read_view(16), IsOk());
  EXPECT_THAT(in.read_value<std::uint32_t>(),
              IsError(ErrorKind::InvalidPayload,
                      {"/d/x.iqdb: section 'payload'", "4 bytes needed at offset 16, 1 left"}));
  EXPECT_EQ(in.position(), 16u);
  EXPECT_THAT(in.read_view(2), IsError(ErrorKind::InvalidPayload, "2 bytes needed"));
  EXPECT_THAT(in.read_view(SIZE_MAX), IsError(ErrorKind::InvalidPayload, "at offset 16"));
  auto last = in.read_value<std::uint8_t>();
  ASSERT_THAT(last, IsOk());
  EXPECT_THAT(in.read_value<std::uint8_t>(), IsError(ErrorKind::InvalidPayload, "0 left"));
}

TEST_F(StreamReaderTest, ReadViewBorrowsWithoutCopying) {
  StreamReader in = reader();
  auto view = in.read_view(5);
  ASSERT_THAT(view, IsOk());
  EXPECT_EQ(view.value().data(), writer_.bytes().data());
  auto empty = in.read_view(0);
  ASSERT_THAT(empty, IsOk());
  EXPECT_TRUE(empty.value().empty());
  EXPECT_EQ(in.position(), 5u);
}

TEST_F(StreamReaderTest, ExpectEndReportsUnreadTrailingBytes) {
  StreamReader in = reader();
  ASSERT_THAT(in.read_view(10), IsOk());
  EXPECT_THAT(in.expect_end(), IsError(ErrorKind::InvalidPayload,
                                       {"section 'payload'", "7 unread bytes", "read 10 of 17"}));
}

TEST(EmptyStreamReaderTest, EmptyInputIsAtItsEnd) {
  StreamReader in({}, "ctx");
  EXPECT_THAT(in.expect_end(), IsOk());
  std::array<std::byte, 0> none{};
  EXPECT_THAT(in.read(none), IsOk());
  EXPECT_THAT(in.read_value<std::uint8_t>(), IsError(ErrorKind::InvalidPayload, "ctx"));
}

}  // namespace
}  // namespace iqdb::persist::test
