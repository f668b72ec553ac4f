#include "iqdb/persist/error.h"

#include <gtest/gtest.h>

#include <exception>
#include <memory>
#include <set>
#include <string>

namespace iqdb::persist {
namespace {

TEST(ErrorKindTest, EveryKindHasADistinctName) {
  std::set<std::string> names;
  for (int k = 0; k <= static_cast<int>(ErrorKind::InvalidArgument); ++k) {
    const std::string name(to_string(static_cast<ErrorKind>(k)));
    EXPECT_NE(name, "Unknown") << k;
    EXPECT_TRUE(names.insert(name).second) << name;
  }
  EXPECT_EQ(to_string(ErrorKind::ChecksumMismatch), "ChecksumMismatch");
}

// A kind from a newer library (or a bad cast) still prints, as "Unknown".
TEST(ErrorKindTest, KindOutsideTheEnumIsNamedUnknown) {
  const auto beyond = static_cast<ErrorKind>(static_cast<int>(ErrorKind::InvalidArgument) + 1);
  EXPECT_EQ(to_string(beyond), "Unknown");
  EXPECT_EQ(PersistError(beyond, "m").to_string(), "Unknown: m");
}

TEST(PersistErrorTest, IndexRefusalsMapToTheirKinds) {
  const auto kind_of = [](IndexErrc code) {
    return PersistError::from_index({code, "msg"}).kind();
  };
  EXPECT_EQ(kind_of(IndexErrc::DuplicateId), ErrorKind::DuplicateId);
  EXPECT_EQ(kind_of(IndexErrc::IdNotFound), ErrorKind::IdNotFound);
  EXPECT_EQ(kind_of(IndexErrc::DimensionMismatch), ErrorKind::DimensionMismatch);
  EXPECT_EQ(kind_of(IndexErrc::InvalidArgument), ErrorKind::InvalidArgument);
  EXPECT_EQ(PersistError::from_index({IndexErrc::IdNotFound, "no id 5"}).message(), "no id 5");
}

// An index library newer than this one may refuse for a reason we do not
// know: it is still a refusal of the caller's argument, with its message.
TEST(PersistErrorTest, UnknownIndexRefusalIsInvalidArgumentKeepingTheMessage) {
  const auto code = static_cast<IndexErrc>(static_cast<int>(IndexErrc::InvalidArgument) + 1);
  const PersistError error = PersistError::from_index({code, "vector is not normalised"});
  EXPECT_EQ(error.kind(), ErrorKind::InvalidArgument);
  EXPECT_EQ(error.message(), "vector is not normalised");
}

TEST(PersistErrorTest, ToStringAndContextPrefixTheMessage) {
  const PersistError error(ErrorKind::InvalidPayload, "section 'ids': short");
  EXPECT_EQ(error.to_string(), "InvalidPayload: section 'ids': short");
  const PersistError with = error.with_context("/d/x.iqdb");
  EXPECT_EQ(with.kind(), ErrorKind::InvalidPayload);
  EXPECT_EQ(with.message(), "/d/x.iqdb: section 'ids': short");
}

Result<int> parse_positive(int value) {
  if (value <= 0) return fail(ErrorKind::InvalidArgument, "not positive");
  return value;
}

Result<int> doubled(int value) {
  IQDB_TRY_ASSIGN(const int checked, parse_positive(value));
  IQDB_TRY(parse_positive(checked));
  return checked * 2;
}

TEST(PersistErrorTest, TryMacrosPropagateErrorsAndValues) {
  ASSERT_TRUE(doubled(4).has_value());
  EXPECT_EQ(doubled(4).value(), 8);
  const auto failed = doubled(-1);
  ASSERT_FALSE(failed.has_value());
  EXPECT_EQ(failed.error().kind(), ErrorKind::InvalidArgument);
  EXPECT_EQ(failed.error().message(), "not positive");
}

Result<void> check_positive(int value) {
  IQDB_TRY(parse_positive(value));
  return success();
}

TEST(PersistErrorTest, SuccessBuildsASuccessfulResult) {
  EXPECT_TRUE(check_positive(1).has_value());
  EXPECT_EQ(check_positive(0).error().kind(), ErrorKind::InvalidArgument);
}

TEST(ValueOrThrowTest, ReturnsTheValueOfASuccess) {
  EXPECT_EQ(value_or_throw(parse_positive(3)), 3);
  Result<std::unique_ptr<int>> owned = std::make_unique<int>(7);
  const std::unique_ptr<int> moved_out = value_or_throw(std::move(owned));
  ASSERT_NE(moved_out, nullptr);
  EXPECT_EQ(*moved_out, 7);
  EXPECT_NO_THROW(value_or_throw(check_positive(1)));
}

TEST(ValueOrThrowTest, ThrowsAnExceptionCarryingTheError) {
  try {
    (void)value_or_throw(parse_positive(-1));
    FAIL() << "no exception";
  } catch (const PersistException& e) {
    EXPECT_EQ(e.kind(), ErrorKind::InvalidArgument);
    EXPECT_EQ(e.error().kind(), ErrorKind::InvalidArgument);
    EXPECT_EQ(e.error().message(), "not positive");
    EXPECT_STREQ(e.what(), "not positive");
  }
  try {
    value_or_throw(check_positive(0));
    FAIL() << "no exception";
  } catch (const std::exception& e) {  // a Result<void> throws too, as a std::exception
    EXPECT_STREQ(e.what(), "not positive");
  }
}

TEST(ValueOrThrowTest, ACopiedExceptionKeepsTheError) {
  const PersistException original(PersistError(ErrorKind::ChecksumMismatch, "/d/x.iqdb: CRC"));
  const PersistException copy = original;
  EXPECT_EQ(copy.kind(), ErrorKind::ChecksumMismatch);
  EXPECT_EQ(copy.error().to_string(), "ChecksumMismatch: /d/x.iqdb: CRC");
  EXPECT_STREQ(copy.what(), "/d/x.iqdb: CRC");
  PersistException source = original;
  const PersistException moved = std::move(source);
  EXPECT_STREQ(moved.what(), "/d/x.iqdb: CRC");
  EXPECT_STREQ(source.what(), "/d/x.iqdb: CRC");  // NOLINT(bugprone-use-after-move): copied
}

}  // namespace
}  // namespace iqdb::persist
