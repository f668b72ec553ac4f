// Shared-memory publication in one process: what is published equals a
// normal load, generations replace each other while attachers keep theirs,
// a dead publisher's objects are cleaned up, and damaged or foreign objects
// are refused with an error naming them.
#include "iqdb/persist/shared_memory.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "iqdb/persist/persisted_index.h"
#include "shared/publication_format.h"
#include "support/mock_indexes.h"
#include "support/test_util.h"

namespace iqdb::persist::test {
namespace {

namespace pf = publication_format;
using Writer = PersistedIndex<SectionArrayIndex>;
constexpr std::size_t kDim = 8;

// A publication name unique to this process and test.
std::string unique_name(std::string_view test) {
  return fmt::format("test-{}-{}", ::getpid(), test);
}

bool object_exists(const std::string& object) {
  return std::filesystem::exists(pf::object_path(object));
}

class SharedMemoryTest : public ::testing::Test {
 protected:
  SharedMemoryTest() {
    config_.path = dir_.file("db.iqdb");
    config_.compression = Compression::zstd(3);
    config_.compression_max_ratio = 1.0;
  }
  ~SharedMemoryTest() override { (void)remove_stale_publication(name_); }

  Writer save(std::size_t n, std::uint32_t seed = 1) {
    auto writer = Writer::open_with(
        SectionArrayIndex(kDim, DistanceMetric::Euclidean, make_vectors(n, kDim, seed)), config_,
        OpenMode::Overwrite);
    EXPECT_THAT(writer, IsOk());
    EXPECT_THAT(writer.value().checkpoint(), IsOk());
    return std::move(writer).value();
  }

  TempDir dir_;
  PersistConfig config_;
  std::string name_ = unique_name(::testing::UnitTest::GetInstance()->current_test_info()->name());
};

TEST_F(SharedMemoryTest, PublishedGenerationEqualsANormalLoad) {
  save(300);
  auto publisher = SharedPublisher::open(name_);
  ASSERT_THAT(publisher, IsOk());
  auto report = publisher.value().publish(config_.path);
  ASSERT_THAT(report, IsOk());
  EXPECT_EQ(report.value().generation, 1u);

  auto shared = SharedIndex<SectionArrayIndex>::attach(name_);
  ASSERT_THAT(shared, IsOk());
  auto loaded = PersistedIndex<SectionArrayIndex>::load(config_);
  ASSERT_THAT(loaded, IsOk());
  EXPECT_TRUE(same_content(shared.value().index(), loaded.value().index()));
  EXPECT_TRUE(shared.value().index().is_mapped());
  const SharedDescriptor& descriptor = shared.value().snapshot().descriptor();
  EXPECT_EQ(descriptor.generation, 1u);
  EXPECT_EQ(descriptor.source_path, config_.path.string());
  auto header = read_file_header(config_.path);
  ASSERT_THAT(header, IsOk());
  EXPECT_EQ(descriptor.content_hash, header.value().content_hash);
  for (const SectionInfo& section : shared.value().snapshot().view().header().sections) {
    EXPECT_EQ(section.compression, SectionCompression::None) << section.name;
  }
  EXPECT_FALSE(shared.value().snapshot().newer_published());
}

TEST_F(SharedMemoryTest, NewGenerationReplacesTheOldWhileAttachersKeepTheirs) {
  save(100, 1);
  auto publisher = SharedPublisher::open(name_);
  ASSERT_THAT(publisher, IsOk());
  ASSERT_THAT(publisher.value().publish(config_.path), IsOk());
  auto first = SharedIndex<SectionArrayIndex>::attach(name_);
  ASSERT_THAT(first, IsOk());
  const std::vector<float> before(first.value().index().vectors().begin(),
                                  first.value().index().vectors().end());

  save(120, 2);
  auto changed = publisher.value().publish_if_changed(config_.path);
  ASSERT_THAT(changed, IsOk());
  ASSERT_TRUE(changed.value().has_value());
  EXPECT_EQ(changed.value()->generation, 2u);
  // One segment name: the new generation was renamed over the old one.
  EXPECT_TRUE(object_exists(pf::current_object(name_)));
  EXPECT_FALSE(object_exists(pf::building_object(name_, 2)));
  EXPECT_TRUE(first.value().snapshot().newer_published());
  EXPECT_TRUE(first.value().snapshot().wait_for_newer(std::chrono::milliseconds(0)));
  EXPECT_TRUE(std::ranges::equal(first.value().index().vectors(), before));

  auto second = SharedIndex<SectionArrayIndex>::attach(name_);
  ASSERT_THAT(second, IsOk());
  EXPECT_EQ(second.value().index().ids().size(), 120u);
  EXPECT_EQ(second.value().snapshot().descriptor().generation, 2u);

  auto unchanged = publisher.value().publish_if_changed(config_.path);
  ASSERT_THAT(unchanged, IsOk());
  EXPECT_FALSE(unchanged.value().has_value());
}

TEST_F(SharedMemoryTest, WithdrawRemovesEverythingAndAttachersSeeIt) {
  save(50);
  auto publisher = SharedPublisher::open(name_);
  ASSERT_THAT(publisher, IsOk());
  ASSERT_THAT(publisher.value().publish(config_.path), IsOk());
  auto attached = SharedSnapshot::attach(name_);
  ASSERT_THAT(attached, IsOk());
  ASSERT_THAT(publisher.value().withdraw(), IsOk());
  EXPECT_FALSE(object_exists(pf::head_object(name_)));
  EXPECT_FALSE(object_exists(pf::current_object(name_)));
  EXPECT_TRUE(attached.value().newer_published());
  EXPECT_EQ(attached.value().view().header().n_vectors, 50u);
  EXPECT_THAT(SharedSnapshot::attach(name_), IsError(ErrorKind::NotFound, "nothing is published"));
}

TEST_F(SharedMemoryTest, SecondPublisherIsRefusedWhileTheFirstRuns) {
  auto first = SharedPublisher::open(name_);
  ASSERT_THAT(first, IsOk());
  EXPECT_THAT(SharedPublisher::open(name_), IsError(ErrorKind::Locked, "published by another"));
  EXPECT_THAT(remove_stale_publication(name_), IsError(ErrorKind::Locked));
}

TEST_F(SharedMemoryTest, PublishAfterWithdrawIsRefusedNotACrash) {
  save(10);
  auto publisher = SharedPublisher::open(name_);
  ASSERT_THAT(publisher, IsOk());
  ASSERT_THAT(publisher.value().publish(config_.path), IsOk());
  ASSERT_THAT(publisher.value().withdraw(), IsOk());
  EXPECT_THAT(publisher.value().publish(config_.path),
              IsError(ErrorKind::InvalidArgument, "withdrawn"));
  EXPECT_THAT(publisher.value().withdraw(), IsOk());  // twice: nothing left to do
}

// A damaged snapshot renamed over the source is refused once, not read again
// at every poll; the generation before it stays current; a good file after
// it is published.
TEST_F(SharedMemoryTest, AFailedFileIsNotReadAgainUntilReplaced) {
  save(20, 1);
  auto publisher = SharedPublisher::open(name_);
  ASSERT_THAT(publisher, IsOk());
  ASSERT_THAT(publisher.value().publish(config_.path), IsOk());

  const auto damaged = dir_.file("damaged.iqdb");
  {
    std::ofstream out(damaged, std::ios::binary);
    out << "not a snapshot at all, but long enough to be read as one, or refused";
  }
  std::filesystem::rename(damaged, config_.path);
  auto first = publisher.value().publish_if_changed(config_.path);
  EXPECT_FALSE(first.has_value());
  // The same file (same identity): the same error again.
  auto again = publisher.value().publish_if_changed(config_.path);
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().kind(), first.error().kind());
  EXPECT_EQ(again.error().message(), first.error().message());
  auto attached = SharedSnapshot::attach(name_);
  ASSERT_THAT(attached, IsOk());
  EXPECT_EQ(attached.value().descriptor().generation, 1u);

  save(30, 2);
  auto replaced = publisher.value().publish_if_changed(config_.path);
  ASSERT_THAT(replaced, IsOk());
  ASSERT_TRUE(replaced.value().has_value());
  EXPECT_EQ(replaced.value()->generation, 2u);
}

TEST_F(SharedMemoryTest, SourcePathIsAbsoluteForAttachers) {
  save(10);
  const auto cwd = std::filesystem::current_path();
  std::filesystem::current_path(dir_.path());
  auto publisher = SharedPublisher::open(name_);
  ASSERT_THAT(publisher, IsOk());
  auto published = publisher.value().publish("db.iqdb");
  std::filesystem::current_path(cwd);
  ASSERT_THAT(published, IsOk());
  auto attached = SharedSnapshot::attach(name_);
  ASSERT_THAT(attached, IsOk());
  EXPECT_EQ(std::filesystem::path(attached.value().descriptor().source_path),
            std::filesystem::absolute(config_.path));
}

// A head no publisher could have written (a generation at the counter's
// limit) is refused, not taken over; unpublish still removes it, as it
// removes a foreign object under the name it was given.
TEST_F(SharedMemoryTest, AbsurdHeadIsRefusedButUnpublishRemovesIt) {
  {
    auto publisher = SharedPublisher::open(name_);
    ASSERT_THAT(publisher, IsOk());
  }
  const auto head = pf::object_path(pf::head_object(name_));
  std::array<std::byte, pf::kHeadSize> bytes{};
  pf::encode_new_head(bytes);
  for (std::size_t i = 0; i < 8; ++i) bytes[pf::kCurrentOffset + i] = std::byte{0xff};
  {
    std::ofstream out(head, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }
  EXPECT_THAT(SharedPublisher::open(name_), IsError(ErrorKind::InvalidHeader, "left alone"));
  EXPECT_TRUE(object_exists(pf::head_object(name_)));
  auto removed = remove_stale_publication(name_);
  ASSERT_THAT(removed, IsOk());
  EXPECT_EQ(removed.value(), 1u);
  EXPECT_FALSE(object_exists(pf::head_object(name_)));
  EXPECT_THAT(SharedPublisher::open(name_), IsOk());
}

// A publisher that stops and a new one that starts number generations from
// 1 again: an attacher of the old generation 1 still learns it is not
// current (the publication times differ).
TEST_F(SharedMemoryTest, RestartedPublisherIsNewerForAttachersOfTheOldOne) {
  save(10, 1);
  std::optional<SharedSnapshot> old_attach;
  {
    auto first = SharedPublisher::open(name_);
    ASSERT_THAT(first, IsOk());
    ASSERT_THAT(first.value().publish(config_.path), IsOk());
    auto attached = SharedSnapshot::attach(name_);
    ASSERT_THAT(attached, IsOk());
    old_attach.emplace(std::move(attached).value());
  }  // withdrawn
  save(12, 2);
  auto second = SharedPublisher::open(name_);
  ASSERT_THAT(second, IsOk());
  auto report = second.value().publish(config_.path);
  ASSERT_THAT(report, IsOk());
  ASSERT_EQ(report.value().generation, 1u);
  EXPECT_TRUE(old_attach->newer_published());
  EXPECT_TRUE(old_attach->wait_for_newer(std::chrono::milliseconds(0)));
  auto fresh = SharedSnapshot::attach(name_);
  ASSERT_THAT(fresh, IsOk());
  EXPECT_FALSE(fresh.value().newer_published());
}

// Segments a dead publisher was writing, whether or not its head recorded
// them, are removed by the next publisher of the name; a publication whose
// name only starts the same is left alone.
TEST_F(SharedMemoryTest, LeftoverSegmentsAreRemovedByTheNextPublisher) {
  const auto leftover = [&](std::uint64_t generation) {
    std::ofstream(pf::object_path(pf::building_object(name_, generation))) << "partial";
  };
  {
    auto publisher = SharedPublisher::open(name_);
    ASSERT_THAT(publisher, IsOk());
  }
  leftover(7);
  leftover(0x123456789abcdefULL);
  const std::string other = name_ + "-other";
  std::ofstream(pf::object_path(pf::building_object(other, 1))) << "not ours";
  auto publisher = SharedPublisher::open(name_);
  ASSERT_THAT(publisher, IsOk());
  EXPECT_FALSE(object_exists(pf::building_object(name_, 7)));
  EXPECT_FALSE(object_exists(pf::building_object(name_, 0x123456789abcdefULL)));
  EXPECT_TRUE(object_exists(pf::building_object(other, 1)));
  std::filesystem::remove(pf::object_path(pf::building_object(other, 1)));
}

TEST_F(SharedMemoryTest, BadNamesAreRefused) {
  for (const std::string& bad : std::vector<std::string>{"", ".hidden", "a.current", "a/b",
                                                         std::string(201, 'x'), "sp ace"}) {
    EXPECT_THAT(SharedPublisher::open(bad), IsError(ErrorKind::InvalidArgument)) << bad;
    EXPECT_THAT(SharedSnapshot::attach(bad), IsError(ErrorKind::InvalidArgument)) << bad;
  }
}

}  // namespace
}  // namespace iqdb::persist::test
