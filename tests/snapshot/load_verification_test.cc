// VerifyMode::Background and the Verification handle: a load that returns
// before the check, a failure that is reported rather than swallowed, and a
// check that stops with its owner.
#include "iqdb/persist/load_verification.h"
#include "snapshot/load_verification_control.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "iqdb/persist.h"
#include "support/mock_indexes.h"
#include "support/test_util.h"

namespace iqdb::persist::test {
namespace {

using Db = PersistedIndex<SectionArrayIndex>;
using State = Verification::State;

class VerificationTest : public ::testing::Test {
 protected:
  VerificationTest() : config_(dir_.file("db.iqdb")) {}

  // Saves an index of `n` vectors of dim 16 and returns its header.
  FileHeader save(std::size_t n) {
    index_ = SectionArrayIndex(16, DistanceMetric::Cosine, make_vectors(n, 16));
    auto db = Db::open_with(index_, config_);
    EXPECT_THAT(db, IsOk());
    EXPECT_THAT(db.value().save(), IsOk());
    auto header = read_file_header(config_.path);
    EXPECT_THAT(header, IsOk());
    return header.value();
  }

  Result<Db> load(VerifyMode mode) {
    PersistConfig config = config_;
    config.verify = mode;
    return Db::load(config);
  }

  TempDir dir_;
  PersistConfig config_;
  SectionArrayIndex index_{16, DistanceMetric::Cosine};
};

TEST_F(VerificationTest, BackgroundCheckOfAnIntactFilePasses) {
  const FileHeader header = save(20'000);
  auto db = load(VerifyMode::Background);
  ASSERT_THAT(db, IsOk());
  EXPECT_TRUE(same_content(db.value().index(), index_));
  const Verification& check = db.value().verification();
  EXPECT_THAT(check.wait(), IsOk());
  EXPECT_EQ(check.state(), State::Passed);
  std::uint64_t section_bytes = 0;
  for (const SectionInfo& section : header.sections) section_bytes += section.stored_length;
  EXPECT_EQ(check.bytes_total(), section_bytes);
  EXPECT_EQ(check.bytes_checked(), section_bytes);
}

TEST_F(VerificationTest, BackgroundLoadReturnsBeforeDamageIsFoundThenReportsIt) {
  const FileHeader header = save(20'000);
  const SectionInfo& vectors = *header.find_section("vectors");
  flip_byte(config_.path, vectors.offset + vectors.stored_length / 2, 0x04);
  EXPECT_THAT(load(VerifyMode::Eager), IsError(ErrorKind::ChecksumMismatch, "section 'vectors'"));
  auto db = load(VerifyMode::Background);
  ASSERT_THAT(db, IsOk());  // the damage is not known yet...
  const Verification& check = db.value().verification();
  // ...and is reported, naming the file, section and chunk, as often as asked.
  for (int i = 0; i < 2; ++i) {
    EXPECT_THAT(check.wait(), IsError(ErrorKind::ChecksumMismatch,
                                      {config_.path.string(), "section 'vectors' chunk 0"}));
  }
  EXPECT_EQ(check.state(), State::Failed);
}

TEST_F(VerificationTest, BackgroundCheckCoversThePadding) {
  const FileHeader header = save(100);
  const SectionInfo& ids = *header.find_section("ids");
  flip_byte(config_.path, ids.offset + ids.stored_length, 0x01);  // first padding byte after it
  auto db = load(VerifyMode::Background);
  ASSERT_THAT(db, IsOk());
  EXPECT_THAT(db.value().verification().wait(), IsError(ErrorKind::InvalidPayload, "padding"));
}

TEST_F(VerificationTest, EagerHasPassedSkipAndNoLoadHaveNotRun) {
  save(100);
  auto eager = load(VerifyMode::Eager);
  ASSERT_THAT(eager, IsOk());
  EXPECT_EQ(eager.value().verification().state(), State::Passed);
  EXPECT_GT(eager.value().verification().bytes_checked(), 0u);
  auto skipped = load(VerifyMode::Skip);
  ASSERT_THAT(skipped, IsOk());
  EXPECT_EQ(skipped.value().verification().state(), State::NotRun);
  EXPECT_THAT(skipped.value().verification().wait(), IsOk());
  auto created =
      Db::open_with(SectionArrayIndex(4, DistanceMetric::Cosine), config_, OpenMode::Overwrite);
  ASSERT_THAT(created, IsOk());
  EXPECT_EQ(created.value().verification().state(), State::NotRun);
}

TEST_F(VerificationTest, DestroyingTheDatabaseStopsARunningCheck) {
  save(200'000);  // 12.8 MB of vectors: two 8 MiB pieces per pass
  config_.verify_threads = 1;
  for (int i = 0; i < 5; ++i) {
    auto db = load(VerifyMode::Background);
    ASSERT_THAT(db, IsOk());
  }  // each destructor stops its check and joins it: no thread outlives it
  auto db = load(VerifyMode::Background);
  ASSERT_THAT(db, IsOk());
  EXPECT_THAT(db.value().verification().wait(), IsOk());
}

TEST_F(VerificationTest, AFailureInsideTheCheckIsKeptWhenTheHandleOutlivesIt) {
  std::atomic<bool> release{false};
  auto check =
      detail::VerificationControl::start(10, [&](Verification& self) -> Result<std::uint64_t> {
        while (!release.load() && !detail::VerificationControl::stop_requested(self))
          std::this_thread::yield();
        detail::VerificationControl::set_progress(self, 5);
        return fail(ErrorKind::ChecksumMismatch, "x: section 's' damaged");
      });
  EXPECT_EQ(check->state(), State::Running);
  EXPECT_EQ(check->bytes_total(), 10u);
  release = true;
  EXPECT_THAT(check->wait(), IsError(ErrorKind::ChecksumMismatch, "section 's'"));
  EXPECT_EQ(check->bytes_checked(), 5u);
}

// Checks run one after another on the one worker: a check whose last handle
// goes away before its turn is dropped from the queue and never runs.
TEST_F(VerificationTest, ACheckDestroyedBeforeItsTurnNeverRuns) {
  std::atomic<bool> release{false};
  // (The deadline turns a broken queue into a failure rather than a hang.)
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  auto first =
      detail::VerificationControl::start(1, [&](Verification& self) -> Result<std::uint64_t> {
        while (!release.load() && !detail::VerificationControl::stop_requested(self) &&
               std::chrono::steady_clock::now() < deadline) {
          std::this_thread::yield();
        }
        return 1;
      });
  std::atomic<bool> second_ran{false};
  auto second = detail::VerificationControl::start(1, [&](Verification&) -> Result<std::uint64_t> {
    second_ran = true;
    return 1;
  });
  EXPECT_EQ(second->state(), State::Running);
  second.reset();  // behind `first`, which cannot finish yet
  release = true;
  EXPECT_THAT(first->wait(), IsOk());
  EXPECT_EQ(first->state(), State::Passed);
  EXPECT_FALSE(second_ran.load());
}

}  // namespace
}  // namespace iqdb::persist::test
