// Damaged and foreign shared-memory objects. An attacher opens one object,
// iqdb.NAME.current, and refuses a damaged or foreign one with an error of
// the documented kind naming it, promptly, never a crash or a hang; it does
// not read the head to attach, so no head (missing, foreign, a FIFO, a
// symbolic link) stops it, and newer_published() reads such a head as "no
// longer this generation". A publisher refuses to take over a head that is
// not this library's, and leaves it alone; remove_stale_publication()
// removes the name's objects whatever the head holds.
//
// The objects are written as the files they are in /dev/shm, by hand, from
// the layout in src/shared/publication_format.h and docs/FORMAT.md (not
// through its encoders: HandWrittenLayoutIsThePublishers checks the two
// agree), often around a copy of a real published segment. Whatever could
// block (a FIFO) is tried in a child process with a deadline.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <span>
#include <string>
#include <vector>

#include "iqdb/persist/file_header.h"
#include "iqdb/persist/persisted_index.h"
#include "iqdb/persist/shared_memory.h"
#include "shared/publication_format.h"
#include "support/child_process.h"
#include "support/mock_indexes.h"
#include "support/shared_memory_util.h"
#include "support/test_util.h"
#include "util/crc32.h"

namespace iqdb::persist::test {
namespace {

using namespace std::chrono_literals;
namespace pf = publication_format;
using Writer = PersistedIndex<SectionArrayIndex>;
using Shared = SharedIndex<SectionArrayIndex>;
constexpr std::size_t kDim = 8;
constexpr DistanceMetric kMetric = DistanceMetric::Euclidean;
constexpr std::size_t kPage = 4096;
// A descriptor is this many bytes plus its source path's.
constexpr std::size_t kFixed = 108;
constexpr std::uint64_t kTop = ~std::uint64_t{0};

// ---------------------------------------------------------------------------
// The layout, by hand.

void put_le(std::span<std::byte> bytes, std::size_t offset, std::uint64_t value,
            std::size_t width) {
  for (std::size_t i = 0; i < width; ++i) {
    bytes[offset + i] = static_cast<std::byte>(value >> (8 * i));
  }
}

std::uint64_t get_le(std::span<const std::byte> bytes, std::size_t offset, std::size_t width) {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < width; ++i) {
    value |= std::to_integer<std::uint64_t>(bytes[offset + i]) << (8 * i);
  }
  return value;
}

// A head: magic, version, size, current and building generations, the
// current generation's publication time; the rest zero.
std::vector<std::byte> head_bytes(std::uint64_t current, std::uint64_t building = 0,
                                  std::uint64_t published_ns = 0) {
  std::vector<std::byte> head(kPage);
  std::memcpy(head.data(), "IQDBSHMH", 8);
  put_le(head, 8, 1, 4);
  put_le(head, 12, kPage, 4);
  put_le(head, 16, current, 8);
  put_le(head, 24, building, 8);
  put_le(head, 40, published_ns, 8);
  return head;
}

struct DescriptorFields {
  char magic[8] = {'I', 'Q', 'D', 'B', 'S', 'H', 'M', 'S'};
  std::uint32_t version = 1;
  std::uint32_t length = kFixed;  // as stored: with_path() keeps it consistent
  std::uint64_t generation = 1;
  std::uint64_t image_offset = kPage;
  std::uint64_t image_length = 0;
  std::uint64_t wal_lsn = 0;
  std::uint64_t content_hash = 0;
  std::uint64_t source_device = 0;
  std::uint64_t source_inode = 0;
  std::uint64_t source_size = 0;
  std::uint64_t source_mtime_ns = 0;
  std::uint64_t published_ns = 0;
  std::uint32_t publisher_pid = 0;
  std::uint32_t path_length = 0;  // as stored
  std::string path;               // the bytes written at 104
};

// `d` with source path `path`, its length fields consistent with it.
void with_path(DescriptorFields& d, std::string path) {
  d.path = std::move(path);
  d.path_length = static_cast<std::uint32_t>(d.path.size());
  d.length = static_cast<std::uint32_t>(kFixed + d.path.size());
}

DescriptorFields parse_descriptor(std::span<const std::byte> segment) {
  DescriptorFields d;
  std::memcpy(d.magic, segment.data(), 8);
  d.version = static_cast<std::uint32_t>(get_le(segment, 8, 4));
  d.length = static_cast<std::uint32_t>(get_le(segment, 12, 4));
  d.generation = get_le(segment, 16, 8);
  d.image_offset = get_le(segment, 24, 8);
  d.image_length = get_le(segment, 32, 8);
  d.wal_lsn = get_le(segment, 40, 8);
  d.content_hash = get_le(segment, 48, 8);
  d.source_device = get_le(segment, 56, 8);
  d.source_inode = get_le(segment, 64, 8);
  d.source_size = get_le(segment, 72, 8);
  d.source_mtime_ns = get_le(segment, 80, 8);
  d.published_ns = get_le(segment, 88, 8);
  d.publisher_pid = static_cast<std::uint32_t>(get_le(segment, 96, 4));
  d.path_length = static_cast<std::uint32_t>(get_le(segment, 100, 4));
  const std::size_t path_length = std::min<std::size_t>(d.path_length, kPage - kFixed);
  d.path.assign(reinterpret_cast<const char*>(segment.data()) + 104, path_length);
  return d;
}

// Writes `d` over the first page of `segment` (the rest of the page zero):
// the fields, the path at 104, and the CRC-32 of the bytes before it right
// after the path.
void put_descriptor(std::span<std::byte> segment, const DescriptorFields& d) {
  ASSERT_GE(segment.size(), kPage);
  ASSERT_LE(kFixed + d.path.size(), kPage);
  std::fill_n(segment.begin(), kPage, std::byte{0});
  std::memcpy(segment.data(), d.magic, 8);
  put_le(segment, 8, d.version, 4);
  put_le(segment, 12, d.length, 4);
  put_le(segment, 16, d.generation, 8);
  put_le(segment, 24, d.image_offset, 8);
  put_le(segment, 32, d.image_length, 8);
  put_le(segment, 40, d.wal_lsn, 8);
  put_le(segment, 48, d.content_hash, 8);
  put_le(segment, 56, d.source_device, 8);
  put_le(segment, 64, d.source_inode, 8);
  put_le(segment, 72, d.source_size, 8);
  put_le(segment, 80, d.source_mtime_ns, 8);
  put_le(segment, 88, d.published_ns, 8);
  put_le(segment, 96, d.publisher_pid, 4);
  put_le(segment, 100, d.path_length, 4);
  std::memcpy(segment.data() + 104, d.path.data(), d.path.size());
  const std::size_t crc_at = 104 + d.path.size();
  put_le(segment, crc_at, crc32(segment.first(crc_at)), 4);
}

// A segment holding `image` (a snapshot file's bytes) as generation 1.
std::vector<std::byte> segment_of(std::span<const std::byte> image, const FileHeader& header) {
  std::vector<std::byte> segment(kPage);
  segment.insert(segment.end(), image.begin(), image.end());
  DescriptorFields d;
  d.image_length = image.size();
  d.wal_lsn = header.wal_lsn;
  d.content_hash = header.content_hash;
  with_path(d, "/hand/written.iqdb");
  put_descriptor(segment, d);
  return segment;
}

bool is_refusal(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::BadMagic:
    case ErrorKind::UnsupportedVersion:
    case ErrorKind::ChecksumMismatch:
    case ErrorKind::TruncatedHeader:
    case ErrorKind::TruncatedPayload:
    case ErrorKind::InvalidHeader:
    case ErrorKind::InvalidMetric:
    case ErrorKind::UnsupportedMetric:
    case ErrorKind::InvalidIndexType:
    case ErrorKind::InvalidPayload: return true;
    default: return false;
  }
}

// What a child process got from a call that might block.
struct Outcome {
  bool ok = false;
  bool value = false;  // a Result<bool>'s value
  ErrorKind kind = ErrorKind::Io;
  double seconds = 0;
  char message[1024] = {};
};

// Runs `call` (returning a Result) in a child process; nullopt (with a test
// failure) if it has not returned within 5 seconds.
template <class Call>
std::optional<Outcome> run_guarded(Call call) {
  Pipe out;
  ChildProcess child = ChildProcess::spawn([&] {
    out.close_read();
    const auto started = Clock::now();
    const auto result = call();
    Outcome outcome;
    outcome.seconds = std::chrono::duration<double>(Clock::now() - started).count();
    outcome.ok = result.has_value();
    if constexpr (std::is_same_v<std::decay_t<decltype(result)>, Result<bool>>) {
      if (result) outcome.value = result.value();
    }
    if (!result) {
      outcome.kind = result.error().kind();
      const std::string text = result.error().message();
      std::memcpy(outcome.message, text.data(), std::min(text.size(), sizeof outcome.message - 1));
    }
    ::_exit(out.send(outcome) ? 0 : 1);
  });
  out.close_write();
  const auto outcome = out.receive<Outcome>(Clock::now() + 5s);
  const auto status = child.wait(Clock::now() + 5s);
  EXPECT_TRUE(outcome) << "the call did not return within 5 s: the child "
                       << describe_status(status);
  return outcome;
}

class SharedMemoryHostileTest : public ::testing::Test {
 protected:
  SharedMemoryHostileTest() {
    config_.path = dir_.file("db.iqdb");
    config_.compression = Compression::zstd(3);
    config_.compression_max_ratio = 1.0;
    remove_publication_objects(name_);
    remove_publication_objects(other_);
  }
  ~SharedMemoryHostileTest() override {
    remove_publication_objects(name_);
    remove_publication_objects(other_);
  }

  std::filesystem::path head_path() const { return pf::object_path(pf::head_object(name_)); }
  std::filesystem::path current_path() const { return pf::object_path(pf::current_object(name_)); }
  std::filesystem::path building_path(std::uint64_t generation) const {
    return pf::object_path(pf::building_object(name_, generation));
  }
  std::string head() const { return pf::head_object(name_); }
  std::string current() const { return pf::current_object(name_); }
  std::string building(std::uint64_t generation) const {
    return pf::building_object(name_, generation);
  }

  void write_head(std::uint64_t current, std::uint64_t building = 0,
                  std::uint64_t published_ns = 0) {
    write_file(head_path(), head_bytes(current, building, published_ns));
  }
  // `segment` as name_'s current segment (no head: an attacher reads none).
  void install(std::span<const std::byte> segment) { write_file(current_path(), segment); }

  // Saves an index of `n` vectors at config_.path; returns its digest.
  std::uint64_t save(std::size_t n, std::uint32_t seed) {
    auto writer = Writer::open_with(SectionArrayIndex(kDim, kMetric, make_vectors(n, kDim, seed)),
                                    config_, OpenMode::Overwrite);
    EXPECT_THAT(writer, IsOk());
    if (!writer) return 0;
    EXPECT_THAT(writer.value().checkpoint(), IsOk());
    return content_digest(writer.value().index());
  }

  // Publishes a compressed snapshot under another name and returns a copy
  // of its segment's bytes (generation 1); the publication is withdrawn.
  std::vector<std::byte> published_segment() {
    digest_ = save(300, 1);
    auto publisher = SharedPublisher::open(other_);
    EXPECT_THAT(publisher, IsOk());
    if (!publisher) return {};
    EXPECT_THAT(publisher.value().publish(config_.path), IsOk());
    std::vector<std::byte> segment = read_file(pf::object_path(pf::current_object(other_)));
    EXPECT_THAT(publisher.value().withdraw(), IsOk());
    return segment;
  }

  TempDir dir_;
  PersistConfig config_;
  const std::string name_ = unique_publication_name();
  const std::string other_ = unique_publication_name("-other");
  std::uint64_t digest_ = 0;  // of what published_segment() published
};

// ---------------------------------------------------------------------------
// The layout.

// The publisher's head and segment are what the layout, written by hand,
// says: byte for byte for the descriptor's page (through its own encoder
// too), field by field for the head.
TEST_F(SharedMemoryHostileTest, HandWrittenLayoutIsThePublishers) {
  save(300, 1);
  auto publisher = SharedPublisher::open(name_);
  ASSERT_THAT(publisher, IsOk());
  auto report = publisher.value().publish(config_.path);
  ASSERT_THAT(report, IsOk());
  EXPECT_EQ(report.value().object, current());
  EXPECT_THAT(publication_objects(name_), ::testing::ElementsAre(head(), current()));

  const std::vector<std::byte> head = read_file(head_path());
  ASSERT_EQ(head.size(), kPage);
  const std::vector<std::byte> expected_head = head_bytes(1);
  EXPECT_TRUE(std::equal(head.begin(), head.begin() + 32, expected_head.begin()))
      << "magic, version, size, current generation 1, building 0";
  EXPECT_EQ(get_le(head, 32, 4), 1u) << "one publication: the change counter moved once";
  EXPECT_EQ(get_le(head, 36, 4), static_cast<std::uint64_t>(::getpid()));
  const std::uint64_t head_published = get_le(head, 40, 8);
  EXPECT_TRUE(std::all_of(head.begin() + 48, head.end(), [](std::byte b) {
    return b == std::byte{0};
  })) << "the head holds nothing after its fields (no source path)";

  std::vector<std::byte> segment = read_file(current_path());
  ASSERT_GT(segment.size(), 2 * kPage);
  const DescriptorFields fields = parse_descriptor(segment);
  const std::string source = std::filesystem::absolute(config_.path).string();
  EXPECT_EQ(fields.length, kFixed + source.size());
  EXPECT_EQ(fields.path_length, source.size());
  EXPECT_EQ(fields.path, source);
  EXPECT_EQ(fields.generation, 1u);
  EXPECT_EQ(fields.image_offset, kPage);
  EXPECT_EQ(fields.image_length, segment.size() - kPage);
  EXPECT_EQ(fields.publisher_pid, static_cast<std::uint32_t>(::getpid()));
  EXPECT_GT(fields.published_ns, 0u);
  EXPECT_GE(head_published, fields.published_ns) << "the head's time is the publication's";
  auto file_header = read_file_header(config_.path);
  ASSERT_THAT(file_header, IsOk());
  EXPECT_EQ(fields.wal_lsn, file_header.value().wal_lsn);
  EXPECT_EQ(fields.content_hash, file_header.value().content_hash);
  struct stat info {};
  ASSERT_EQ(::stat(config_.path.c_str(), &info), 0);
  EXPECT_EQ(fields.source_device, static_cast<std::uint64_t>(info.st_dev));
  EXPECT_EQ(fields.source_inode, static_cast<std::uint64_t>(info.st_ino));
  EXPECT_EQ(fields.source_size, static_cast<std::uint64_t>(info.st_size));

  const std::vector<std::byte> original(segment.begin(), segment.begin() + kPage);
  put_descriptor(segment, fields);
  EXPECT_TRUE(std::equal(original.begin(), original.end(), segment.begin()))
      << "the descriptor page, written by hand, differs from the publisher's";
  // The code form agrees: decoded and encoded again, the same bytes.
  auto decoded = pf::decode_descriptor(original, segment.size(), current_path().string());
  ASSERT_THAT(decoded, IsOk());
  EXPECT_EQ(decoded.value().source_path, source);
  const std::vector<std::byte> encoded = pf::encode_descriptor(decoded.value());
  ASSERT_EQ(encoded.size(), fields.length);
  EXPECT_TRUE(std::equal(encoded.begin(), encoded.end(), original.begin()));
  // The image is the snapshot as a file, every section raw.
  EXPECT_EQ(std::memcmp(segment.data() + kPage, "IQDBPRST", 8), 0);
}

// A copy of a published segment at iqdb.NAME.current attaches with no head
// at all; newer_published() says so (no head: withdrawn) until a head names
// its generation and publication time. A publisher taking the name over
// keeps it current until its first publication replaces it.
TEST_F(SharedMemoryHostileTest, CopiedSegmentAttachesWithoutAHead) {
  const std::vector<std::byte> segment = published_segment();
  const DescriptorFields fields = parse_descriptor(segment);
  install(segment);
  ASSERT_FALSE(std::filesystem::exists(head_path()));
  auto shared = Shared::attach(name_);
  ASSERT_THAT(shared, IsOk());
  EXPECT_EQ(content_digest(shared.value().index()), digest_);
  const SharedDescriptor& descriptor = shared.value().snapshot().descriptor();
  EXPECT_EQ(descriptor.object, current());
  EXPECT_EQ(descriptor.generation, 1u);
  EXPECT_EQ(descriptor.source_path, std::filesystem::absolute(config_.path).string());
  EXPECT_TRUE(shared.value().snapshot().newer_published()) << "no head: withdrawn";

  write_head(1, 0, fields.published_ns);
  EXPECT_FALSE(shared.value().snapshot().newer_published());
  EXPECT_FALSE(shared.value().snapshot().wait_for_newer(0ms));

  // Nothing holds the name: a publisher takes it over; the segment stays.
  auto publisher = SharedPublisher::open(name_);
  ASSERT_THAT(publisher, IsOk());
  EXPECT_THAT(publication_objects(name_), ::testing::ElementsAre(head(), current()));
  EXPECT_FALSE(shared.value().snapshot().newer_published()) << "it is still current";
  auto again = Shared::attach(name_);
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(content_digest(again.value().index()), digest_);

  save(40, 9);
  auto report = publisher.value().publish(config_.path);
  ASSERT_THAT(report, IsOk());
  EXPECT_EQ(report.value().generation, 2u);
  EXPECT_THAT(publication_objects(name_), ::testing::ElementsAre(head(), current()));
  EXPECT_TRUE(shared.value().snapshot().newer_published());
  EXPECT_EQ(content_digest(shared.value().index()), digest_) << "what was mapped is intact";
}

// ---------------------------------------------------------------------------
// Heads. An attacher does not read one to attach; newer_published() reads
// one it cannot trust as "no longer this generation" (attaching again says
// what is current); a publisher refuses it and leaves it alone;
// remove_stale_publication() removes it.

// Heads that are not this library's, or not of this version.
struct BadHead {
  std::string what;
  std::vector<std::byte> bytes;
  ErrorKind kind;    // SharedPublisher::open()'s
  std::string says;  // in its message
};

std::vector<BadHead> bad_heads() {
  std::vector<BadHead> heads;
  std::vector<std::byte> bytes = head_bytes(1);
  bytes[3] = std::byte{'X'};
  heads.push_back({"bad magic", bytes, ErrorKind::BadMagic, "IQDBSHMH"});
  heads.push_back({"foreign bytes", std::vector<std::byte>(kPage, std::byte{'x'}),
                   ErrorKind::BadMagic, "IQDBSHMH"});
  bytes = head_bytes(1);
  put_le(bytes, 8, 2, 4);
  heads.push_back({"version 2", bytes, ErrorKind::UnsupportedVersion, "version 2"});
  bytes = head_bytes(1);
  put_le(bytes, 12, 2 * kPage, 4);
  heads.push_back({"says 8192 bytes", bytes, ErrorKind::InvalidHeader, "8192"});
  for (const std::size_t size : {std::size_t{7}, std::size_t{8}, std::size_t{47}, std::size_t{48},
                                 std::size_t{52}, kPage - 1, kPage + 1, 2 * kPage}) {
    bytes = head_bytes(1);
    bytes.resize(size);
    heads.push_back({fmt::format("{} bytes", size), bytes,
                     size < 8 ? ErrorKind::BadMagic : ErrorKind::InvalidHeader, ""});
  }
  return heads;
}

TEST_F(SharedMemoryHostileTest, AttachDoesNotReadTheHead) {
  const std::vector<std::byte> segment = published_segment();
  const DescriptorFields fields = parse_descriptor(segment);
  install(segment);
  std::vector<BadHead> heads = bad_heads();
  heads.push_back(
      {"naming generation 9", head_bytes(9, 0, fields.published_ns), ErrorKind::InvalidHeader, ""});
  heads.push_back({"naming none", head_bytes(0, 4), ErrorKind::InvalidHeader, ""});
  for (const BadHead& bad : heads) {
    SCOPED_TRACE(bad.what);
    write_file(head_path(), bad.bytes);
    auto shared = Shared::attach(name_);
    ASSERT_THAT(shared, IsOk());
    EXPECT_EQ(content_digest(shared.value().index()), digest_);
    EXPECT_TRUE(shared.value().snapshot().newer_published());
    EXPECT_TRUE(shared.value().snapshot().wait_for_newer(0ms));
    EXPECT_EQ(read_file(head_path()), bad.bytes) << "an attacher wrote the head";
  }
}

TEST_F(SharedMemoryHostileTest, PublisherLeavesAForeignHeadAloneAndUnpublishRemovesIt) {
  const std::vector<std::byte> segment = published_segment();
  for (const BadHead& bad : bad_heads()) {
    SCOPED_TRACE(bad.what);
    write_file(head_path(), bad.bytes);
    install(segment);
    auto publisher = SharedPublisher::open(name_);
    EXPECT_THAT(publisher, IsError(bad.kind, {head_path().string(), bad.says, "left alone"}));
    EXPECT_EQ(read_file(head_path()), bad.bytes);
    EXPECT_THAT(publication_objects(name_), ::testing::ElementsAre(head(), current()));
    EXPECT_THAT(Shared::attach(name_), IsOk()) << "the current segment was touched";

    auto removed = remove_stale_publication(name_);
    ASSERT_THAT(removed, IsOk());
    EXPECT_EQ(removed.value(), 2u);  // the current segment and the head
    EXPECT_THAT(publication_objects(name_), ::testing::IsEmpty());
  }
}

// An empty or all-zero head is one a publisher died creating: a new one.
TEST_F(SharedMemoryHostileTest, EmptyOrZeroHeadIsTakenAsNew) {
  save(30, 4);
  for (const std::size_t size : {std::size_t{0}, std::size_t{100}, kPage}) {
    SCOPED_TRACE(fmt::format("{} zero bytes", size));
    write_file(head_path(), std::vector<std::byte>(size));
    auto publisher = SharedPublisher::open(name_);
    ASSERT_THAT(publisher, IsOk());
    auto report = publisher.value().publish(config_.path);
    ASSERT_THAT(report, IsOk());
    EXPECT_EQ(report.value().generation, 1u);
    ASSERT_THAT(publisher.value().withdraw(), IsOk());
    EXPECT_THAT(publication_objects(name_), ::testing::IsEmpty());
  }
}

TEST_F(SharedMemoryHostileTest, NoCurrentSegmentIsNothingPublished) {
  const std::string path = current_path().string();
  EXPECT_THAT(SharedSnapshot::attach(name_),
              IsError(ErrorKind::NotFound, {path, "nothing is published"}));
  for (const auto& [current_generation, building_generation] :
       {std::pair<std::uint64_t, std::uint64_t>{0, 5}, {7, 0}, {0, 0}}) {
    SCOPED_TRACE(fmt::format("a head naming current {}, building {}", current_generation,
                             building_generation));
    write_head(current_generation, building_generation);
    const auto started = Clock::now();
    EXPECT_THAT(SharedSnapshot::attach(name_),
                IsError(ErrorKind::NotFound, {path, "no generation published yet"}));
    EXPECT_LT(Clock::now() - started, 1s);
  }
  // A foreign head too: whatever it holds, there is no current segment.
  write_file(head_path(), std::vector<std::byte>(kPage, std::byte{'x'}));
  EXPECT_THAT(SharedSnapshot::attach(name_), IsError(ErrorKind::NotFound, path));
}

// A dead publisher's head: its current segment stays current (attachable)
// until the next publisher's first publication; the segment it recorded as
// building is removed; numbering goes on after the larger of the two.
TEST_F(SharedMemoryHostileTest, TakeOverRemovesTheBuildingSegmentAndKeepsTheCurrentOne) {
  std::vector<std::byte> segment = published_segment();
  DescriptorFields fields = parse_descriptor(segment);
  fields.generation = 2;
  put_descriptor(segment, fields);
  for (const bool unpublish : {false, true}) {
    SCOPED_TRACE(unpublish ? "remove_stale_publication()" : "SharedPublisher::open()");
    install(segment);
    write_head(2, 3, fields.published_ns);
    write_file(building_path(3), std::span(segment).first(2 * kPage));  // half written
    auto held = Shared::attach(name_);
    ASSERT_THAT(held, IsOk());
    EXPECT_EQ(held.value().snapshot().descriptor().generation, 2u);
    EXPECT_FALSE(held.value().snapshot().newer_published());

    if (unpublish) {
      auto removed = remove_stale_publication(name_);
      ASSERT_THAT(removed, IsOk());
      EXPECT_EQ(removed.value(), 3u);
      EXPECT_THAT(publication_objects(name_), ::testing::IsEmpty());
      EXPECT_EQ(content_digest(held.value().index()), digest_);
      continue;
    }
    auto publisher = SharedPublisher::open(name_);
    ASSERT_THAT(publisher, IsOk());
    EXPECT_THAT(publication_objects(name_), ::testing::ElementsAre(head(), current()));
    EXPECT_FALSE(held.value().snapshot().newer_published()) << "it is still current";
    EXPECT_THAT(Shared::attach(name_), IsOk());
    auto report = publisher.value().publish(config_.path);
    ASSERT_THAT(report, IsOk());
    EXPECT_EQ(report.value().generation, 4u) << "after the building generation, 3";
    EXPECT_THAT(publication_objects(name_), ::testing::ElementsAre(head(), current()));
    EXPECT_TRUE(held.value().snapshot().newer_published());
    EXPECT_EQ(content_digest(held.value().index()), digest_);
    ASSERT_THAT(publisher.value().withdraw(), IsOk());
    EXPECT_THAT(publication_objects(name_), ::testing::IsEmpty());
  }
}

// A head recording a generation no publisher counted to (2^63 and above:
// the next would come near wrapping to 0, "none") is refused, not taken
// over; remove_stale_publication() clears it. A large one below is fine:
// numbering goes on.
TEST_F(SharedMemoryHostileTest, HeadAtAnAbsurdGenerationIsRefusedAndUnpublishClearsIt) {
  const std::vector<std::byte> segment = published_segment();
  save(50, 3);
  constexpr std::uint64_t kHalf = std::uint64_t{1} << 63;
  for (const auto& [current_generation, building_generation] :
       {std::pair<std::uint64_t, std::uint64_t>{kTop, 0}, {1, kTop}, {kHalf, 0}, {1, kHalf}}) {
    SCOPED_TRACE(fmt::format("a head naming current {}, building {}", current_generation,
                             building_generation));
    install(segment);
    write_head(current_generation, building_generation);
    const std::vector<std::byte> before = read_file(head_path());
    auto publisher = SharedPublisher::open(name_);
    EXPECT_THAT(publisher, IsError(ErrorKind::InvalidHeader, {head_path().string(), "left alone"}));
    EXPECT_EQ(read_file(head_path()), before);
    EXPECT_THAT(publication_objects(name_), ::testing::ElementsAre(head(), current()));

    auto removed = remove_stale_publication(name_);
    ASSERT_THAT(removed, IsOk());
    EXPECT_EQ(removed.value(), 2u);
    EXPECT_THAT(publication_objects(name_), ::testing::IsEmpty());
    EXPECT_THAT(SharedPublisher::open(name_), IsOk());
    EXPECT_THAT(publication_objects(name_), ::testing::IsEmpty()) << "the publisher withdrew";
  }
  constexpr std::uint64_t kLarge = std::uint64_t{1} << 62;
  install(segment);
  write_head(kLarge);
  auto publisher = SharedPublisher::open(name_);
  ASSERT_THAT(publisher, IsOk());
  auto report = publisher.value().publish(config_.path);
  ASSERT_THAT(report, IsOk());
  EXPECT_EQ(report.value().generation, kLarge + 1);
  auto shared = SharedSnapshot::attach(name_);
  ASSERT_THAT(shared, IsOk());
  EXPECT_EQ(shared.value().descriptor().generation, kLarge + 1);
}

// ---------------------------------------------------------------------------
// FIFOs and symbolic links under the publication's names.

TEST_F(SharedMemoryHostileTest, FifoAtTheCurrentSegmentIsRefusedWithoutBlocking) {
  for (const bool with_head : {false, true}) {
    SCOPED_TRACE(with_head ? "with a head" : "no head");
    if (with_head) write_head(1);
    ASSERT_EQ(::mkfifo(current_path().c_str(), 0644), 0);
    const auto outcome = run_guarded([&] { return SharedSnapshot::attach(name_); });
    ASSERT_TRUE(outcome);
    EXPECT_FALSE(outcome->ok);
    EXPECT_EQ(outcome->kind, ErrorKind::Io) << outcome->message;
    EXPECT_THAT(outcome->message, ::testing::HasSubstr(current_path().string()));
    EXPECT_THAT(outcome->message, ::testing::HasSubstr("not a regular file"));
    EXPECT_LT(outcome->seconds, 1.0);
    remove_publication_objects(name_);
  }
}

// A FIFO at the head: an attacher attaches, and newer_published() and
// wait_for_newer() return at once (it is no head: "newer"); a publisher
// refuses it (Io) without blocking, and so does remove_stale_publication(),
// or it removes it. Never a hang.
TEST_F(SharedMemoryHostileTest, FifoAtTheHeadBlocksNobody) {
  install(published_segment());
  ASSERT_EQ(::mkfifo(head_path().c_str(), 0644), 0);
  const auto attached = run_guarded([&]() -> Result<bool> {
    IQDB_TRY_ASSIGN(auto shared, Shared::attach(name_));
    if (content_digest(shared.index()) != digest_) {
      return fail(ErrorKind::InvalidPayload, "attached other content");
    }
    const bool newer = shared.snapshot().newer_published();
    return newer && shared.snapshot().wait_for_newer(10s);
  });
  ASSERT_TRUE(attached);
  EXPECT_TRUE(attached->ok) << attached->message;
  EXPECT_TRUE(attached->value) << "a FIFO is no head naming this generation";
  EXPECT_LT(attached->seconds, 1.0);

  const auto opened = run_guarded([&] { return SharedPublisher::open(name_); });
  ASSERT_TRUE(opened);
  EXPECT_FALSE(opened->ok);
  EXPECT_EQ(opened->kind, ErrorKind::Io) << opened->message;
  EXPECT_THAT(opened->message, ::testing::HasSubstr(head_path().string()));
  EXPECT_LT(opened->seconds, 1.0);
  struct stat info {};
  ASSERT_EQ(::lstat(head_path().c_str(), &info), 0);
  EXPECT_TRUE(S_ISFIFO(info.st_mode)) << "the FIFO was replaced";

  const auto removed = run_guarded([&] { return remove_stale_publication(name_); });
  ASSERT_TRUE(removed);
  EXPECT_LT(removed->seconds, 1.0);
  if (removed->ok) {
    EXPECT_FALSE(std::filesystem::exists(std::filesystem::symlink_status(head_path())));
  } else {
    EXPECT_EQ(removed->kind, ErrorKind::Io) << removed->message;
    EXPECT_THAT(removed->message, ::testing::HasSubstr(head_path().string()));
  }
}

// Symbolic links are not followed, even to a valid segment or head (which
// would attach, or confirm the generation, if they were).
TEST_F(SharedMemoryHostileTest, SymbolicLinksAreNotFollowed) {
  const std::vector<std::byte> segment = published_segment();
  const DescriptorFields fields = parse_descriptor(segment);
  const auto target_segment = pf::object_path(pf::current_object(other_));
  write_file(target_segment, segment);
  std::filesystem::create_symlink(target_segment, current_path());
  EXPECT_THAT(SharedSnapshot::attach(name_), IsError(ErrorKind::Io, current_path().string()));
  std::filesystem::remove(current_path());
  install(segment);
  ASSERT_THAT(SharedSnapshot::attach(name_), IsOk()) << "the target was valid";

  // A link at the head, to a head naming the attached generation.
  const auto target_head = pf::object_path(pf::head_object(other_));
  const std::vector<std::byte> valid_head = head_bytes(1, 0, fields.published_ns);
  write_file(target_head, valid_head);
  std::filesystem::create_symlink(target_head, head_path());
  auto shared = SharedSnapshot::attach(name_);
  ASSERT_THAT(shared, IsOk());
  EXPECT_TRUE(shared.value().newer_published()) << "the link was followed";
  EXPECT_THAT(SharedPublisher::open(name_), IsError(ErrorKind::Io, head_path().string()));
  (void)remove_stale_publication(name_);
  EXPECT_EQ(read_file(target_head), valid_head) << "the link was followed";
  EXPECT_EQ(read_file(target_segment), segment);
}

// ---------------------------------------------------------------------------
// Segments and descriptors.

TEST_F(SharedMemoryHostileTest, SegmentShorterThanAPageIsRefused) {
  const std::vector<std::byte> segment = published_segment();
  const std::size_t descriptor_length = parse_descriptor(segment).length;
  for (const std::size_t size :
       {std::size_t{0}, std::size_t{8}, kFixed - 1, kFixed, descriptor_length, kPage - 1}) {
    SCOPED_TRACE(fmt::format("a segment of {} bytes", size));
    install(std::span(segment).first(size));
    EXPECT_THAT(SharedSnapshot::attach(name_),
                IsError(ErrorKind::TruncatedHeader, {current_path().string(), "too short"}));
  }
}

// Descriptors with a correct CRC whose fields are wrong, or disagree with
// the segment or the image: each refused with its kind; and the ones the
// format allows (any generation but 0, a path of 0 to 3988 bytes) attach.
TEST_F(SharedMemoryHostileTest, DescriptorsThatDisagreeWithTheSegmentAreRefused) {
  const std::vector<std::byte> valid = published_segment();
  const DescriptorFields fields = parse_descriptor(valid);
  const std::string path = current_path().string();
  struct Case {
    const char* what;
    void (*change)(DescriptorFields&);
    ErrorKind kind;
    const char* mentions;
  };
  const Case cases[] = {
      {"bad magic", [](DescriptorFields& d) { d.magic[7] = 'X'; }, ErrorKind::BadMagic, "IQDBSHMS"},
      {"version 2", [](DescriptorFields& d) { d.version = 2; }, ErrorKind::UnsupportedVersion,
       "version 2"},
      {"length 107", [](DescriptorFields& d) { d.length = static_cast<std::uint32_t>(kFixed - 1); },
       ErrorKind::InvalidHeader, "descriptor length 107"},
      {"length a byte longer than the path's",
       [](DescriptorFields& d) {
         d.length = static_cast<std::uint32_t>(kFixed + d.path.size() + 1);
       },
       ErrorKind::InvalidHeader, "descriptor length"},
      {"path length a byte longer",
       [](DescriptorFields& d) { d.path_length = static_cast<std::uint32_t>(d.path.size() + 1); },
       ErrorKind::InvalidHeader, "source path of"},
      {"length and path length 1 beyond the page",
       [](DescriptorFields& d) {
         d.length = static_cast<std::uint32_t>(kPage + 1);
         d.path_length = static_cast<std::uint32_t>(kPage + 1 - kFixed);
       },
       ErrorKind::InvalidHeader, "descriptor length 4097"},
      {"length 2^32 - 1",
       [](DescriptorFields& d) {
         d.length = ~std::uint32_t{0};
         d.path_length = static_cast<std::uint32_t>(~std::uint32_t{0} - kFixed);
       },
       ErrorKind::InvalidHeader, "descriptor length"},
      {"path length 2^32 - 1", [](DescriptorFields& d) { d.path_length = ~std::uint32_t{0}; },
       ErrorKind::InvalidHeader, "descriptor length"},
      {"generation 0", [](DescriptorFields& d) { d.generation = 0; }, ErrorKind::InvalidHeader,
       "generation 0"},
      {"image at 8192", [](DescriptorFields& d) { d.image_offset = 8192; },
       ErrorKind::InvalidHeader, "at 8192"},
      {"image at 0", [](DescriptorFields& d) { d.image_offset = 0; }, ErrorKind::InvalidHeader,
       "at 0"},
      {"image a byte longer", [](DescriptorFields& d) { ++d.image_length; },
       ErrorKind::InvalidHeader, "image of"},
      {"image a byte shorter", [](DescriptorFields& d) { --d.image_length; },
       ErrorKind::InvalidHeader, "image of"},
      {"image length 2^64 - 1", [](DescriptorFields& d) { d.image_length = kTop; },
       ErrorKind::InvalidHeader, "image of"},
      {"another LSN", [](DescriptorFields& d) { ++d.wal_lsn; }, ErrorKind::InvalidHeader,
       "the descriptor records LSN"},
      {"another content hash", [](DescriptorFields& d) { d.content_hash ^= 1; },
       ErrorKind::InvalidHeader, "content hash"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    std::vector<std::byte> segment = valid;
    DescriptorFields changed = fields;
    c.change(changed);
    put_descriptor(segment, changed);  // with a correct CRC after the path
    install(segment);
    EXPECT_THAT(SharedSnapshot::attach(name_), IsError(c.kind, {path, c.mentions}));
    EXPECT_THAT(Shared::attach(name_), IsError(c.kind, path));
  }
  // A CRC that does not match.
  std::vector<std::byte> segment = valid;
  segment[90] ^= std::byte{0x10};
  install(segment);
  EXPECT_THAT(SharedSnapshot::attach(name_),
              IsError(ErrorKind::ChecksumMismatch, {path, "descriptor CRC32"}));
  // The segment a page longer than its descriptor says.
  segment = valid;
  segment.resize(segment.size() + kPage);
  install(segment);
  EXPECT_THAT(SharedSnapshot::attach(name_), IsError(ErrorKind::InvalidHeader, {path, "image of"}));

  // Allowed: no cross-check of the generation with anything; a path of any
  // length from none to the page's end.
  struct Allowed {
    const char* what;
    void (*change)(DescriptorFields&);
  };
  const Allowed allowed[] = {
      {"generation 2", [](DescriptorFields& d) { d.generation = 2; }},
      {"generation 2^64 - 1", [](DescriptorFields& d) { d.generation = kTop; }},
      {"no source path", [](DescriptorFields& d) { with_path(d, ""); }},
      {"a path to the page's end",
       [](DescriptorFields& d) { with_path(d, std::string(pf::kMaxSourcePath, 'p')); }},
  };
  for (const Allowed& a : allowed) {
    SCOPED_TRACE(a.what);
    segment = valid;
    DescriptorFields changed = fields;
    a.change(changed);
    put_descriptor(segment, changed);
    install(segment);
    auto shared = Shared::attach(name_);
    ASSERT_THAT(shared, IsOk());
    EXPECT_EQ(shared.value().snapshot().descriptor().generation, changed.generation);
    EXPECT_EQ(shared.value().snapshot().descriptor().source_path, changed.path);
    EXPECT_EQ(content_digest(shared.value().index()), digest_);
  }
}

// Every flip of every byte of the descriptor, [0, 108 + P): the magic's are
// BadMagic, the version's UnsupportedVersion, the two lengths' InvalidHeader
// (they no longer agree), all others (the path's and the CRC's included) a
// CRC mismatch.
TEST_F(SharedMemoryHostileTest, EveryDescriptorByteFlipIsRefused) {
  const std::vector<std::byte> segment = published_segment();
  install(segment);
  const std::uint64_t length = parse_descriptor(segment).length;
  ASSERT_GT(length, kFixed) << "the descriptor holds a path";
  const std::string path = current_path().string();
  for (std::uint64_t offset = 0; offset < length; ++offset) {
    for (const std::uint8_t mask : {std::uint8_t{0x01}, std::uint8_t{0x80}}) {
      SCOPED_TRACE(fmt::format("byte {} ^ 0x{:02x}", offset, mask));
      flip_byte(current_path(), offset, mask);
      const bool in_a_length = (offset >= 12 && offset < 16) || (offset >= 100 && offset < 104);
      const ErrorKind expected = offset < 8    ? ErrorKind::BadMagic
                                 : offset < 12 ? ErrorKind::UnsupportedVersion
                                 : in_a_length ? ErrorKind::InvalidHeader
                                               : ErrorKind::ChecksumMismatch;
      EXPECT_THAT(SharedSnapshot::attach(name_), IsError(expected, path));
      flip_byte(current_path(), offset, mask);
    }
  }
  auto restored = Shared::attach(name_);
  ASSERT_THAT(restored, IsOk());
  EXPECT_EQ(content_digest(restored.value().index()), digest_);
}

// Every flip of a byte in the image's first page (its prefix, its header
// with the section table, then padding up to the first section): a refusal
// naming the segment, or (padding only) the same content. Never a crash.
TEST_F(SharedMemoryHostileTest, EveryFlipInTheImagesFirstPageIsRefusedOrHarmless) {
  const std::vector<std::byte> segment = published_segment();
  install(segment);
  const std::span<const std::byte> image = std::span(segment).subspan(kPage);
  const std::uint64_t header_end = get_le(image, 16, 8) + get_le(image, 12, 4);
  ASSERT_LT(header_end, kPage) << "the header is expected in the first page";
  const std::string path = current_path().string();
  std::size_t refused = 0;
  std::size_t harmless = 0;
  for (std::uint64_t offset = 0; offset < kPage; ++offset) {
    for (const std::uint8_t mask : {std::uint8_t{0x01}, std::uint8_t{0xff}}) {
      if (mask == 0xff && offset >= header_end) continue;
      SCOPED_TRACE(fmt::format("image byte {} ^ 0x{:02x}", offset, mask));
      flip_byte(current_path(), kPage + offset, mask);
      const auto shared = Shared::attach(name_);
      if (shared) {
        ++harmless;
        EXPECT_GE(offset, header_end) << "a damaged prefix or header was accepted";
        EXPECT_EQ(content_digest(shared.value().index()), digest_);
      } else {
        ++refused;
        EXPECT_TRUE(is_refusal(shared.error().kind())) << shared.error().to_string();
        EXPECT_THAT(shared.error().message(), ::testing::HasSubstr(path));
      }
      flip_byte(current_path(), kPage + offset, mask);
    }
  }
  EXPECT_GE(refused, 2 * header_end);
  std::cout << fmt::format(
                   "[ shared-hostile ] image first page: header ends at {}; {} flips refused, {} "
                   "harmless",
                   header_end, refused, harmless)
            << std::endl;
}

// A snapshot file's bytes as the image, with a correct descriptor: a raw
// one attaches (so the segment is well made), a compressed one is refused.
TEST_F(SharedMemoryHostileTest, ImageWithACompressedSectionIsRefused) {
  for (const bool compressed : {false, true}) {
    SCOPED_TRACE(compressed ? "compressed" : "raw");
    config_.compression = compressed ? Compression::zstd(3) : Compression::none();
    const std::uint64_t digest = save(300, 2);
    auto header = read_file_header(config_.path);
    ASSERT_THAT(header, IsOk());
    const bool has_compressed = std::any_of(
        header.value().sections.begin(), header.value().sections.end(),
        [](const SectionInfo& section) { return section.compression != SectionCompression::None; });
    ASSERT_EQ(has_compressed, compressed);
    install(segment_of(read_file(config_.path), header.value()));
    if (compressed) {
      EXPECT_THAT(SharedSnapshot::attach(name_),
                  IsError(ErrorKind::InvalidHeader, {current_path().string(), "compressed"}));
      EXPECT_THAT(Shared::attach(name_), IsError(ErrorKind::InvalidHeader, "compressed"));
    } else {
      auto shared = Shared::attach(name_);
      ASSERT_THAT(shared, IsOk());
      EXPECT_EQ(content_digest(shared.value().index()), digest);
      EXPECT_TRUE(shared.value().index().is_mapped());
      EXPECT_EQ(shared.value().snapshot().descriptor().source_path, "/hand/written.iqdb");
    }
  }
}

TEST_F(SharedMemoryHostileTest, ImageThatIsNotAWholeSnapshotIsRefused) {
  const std::vector<std::byte> valid = published_segment();
  const std::string path = current_path().string();
  const DescriptorFields fields = parse_descriptor(valid);

  // No image at all.
  std::vector<std::byte> segment(valid.begin(), valid.begin() + kPage);
  DescriptorFields empty = fields;
  empty.image_length = 0;
  put_descriptor(segment, empty);
  install(segment);
  EXPECT_THAT(SharedSnapshot::attach(name_), IsError(ErrorKind::TruncatedHeader, path));

  // The image cut short: its sections end beyond it.
  segment.assign(valid.begin(), valid.end() - 4096);
  DescriptorFields cut = fields;
  cut.image_length -= 4096;
  put_descriptor(segment, cut);
  install(segment);
  auto attached = SharedSnapshot::attach(name_);
  ASSERT_FALSE(attached);
  EXPECT_TRUE(is_refusal(attached.error().kind())) << attached.error().to_string();
  EXPECT_THAT(attached.error().message(), ::testing::HasSubstr(path));

  // Bytes after the image's end.
  segment = valid;
  segment.resize(segment.size() + kPage);
  DescriptorFields longer = fields;
  longer.image_length += kPage;
  put_descriptor(segment, longer);
  install(segment);
  attached = SharedSnapshot::attach(name_);
  ASSERT_FALSE(attached);
  EXPECT_TRUE(is_refusal(attached.error().kind())) << attached.error().to_string();
  EXPECT_THAT(attached.error().message(), ::testing::HasSubstr(path));

  // A terabyte, sparse, its descriptor consistent with it: refused at once,
  // without reading or mapping it whole.
  segment = valid;
  DescriptorFields huge = fields;
  huge.image_length = (std::uint64_t{1} << 40) - kPage;
  put_descriptor(segment, huge);
  install(segment);
  std::filesystem::resize_file(current_path(), std::uint64_t{1} << 40);
  const auto started = Clock::now();
  attached = SharedSnapshot::attach(name_);
  ASSERT_FALSE(attached);
  EXPECT_TRUE(is_refusal(attached.error().kind())) << attached.error().to_string();
  EXPECT_THAT(attached.error().message(), ::testing::HasSubstr(path));
  EXPECT_LT(Clock::now() - started, 1s);
}

// Skip (the default) trusts the publisher's verification of the sections;
// Eager checks them, and names the damaged one.
TEST_F(SharedMemoryHostileTest, DamagedSectionIsFoundByEagerVerification) {
  std::vector<std::byte> segment = published_segment();
  segment[segment.size() - 5] ^= std::byte{0x40};  // in the last section, "vectors"
  install(segment);
  auto skipped = Shared::attach(name_);
  ASSERT_THAT(skipped, IsOk());
  EXPECT_NE(content_digest(skipped.value().index()), digest_);
  EXPECT_THAT(Shared::attach(name_, AttachOptions{.verify = VerifyMode::Eager}),
              IsError(ErrorKind::ChecksumMismatch, {current_path().string(), "vectors"}));
}

TEST_F(SharedMemoryHostileTest, AnotherIndexTypeIsRefused) {
  using StreamDb = PersistedIndex<StreamMapIndex>;
  auto writer = StreamDb::open_with(make_index<StreamMapIndex>(20, kDim, kMetric), config_,
                                    OpenMode::Overwrite);
  ASSERT_THAT(writer, IsOk());
  ASSERT_THAT(writer.value().checkpoint(), IsOk());
  auto publisher = SharedPublisher::open(name_);
  ASSERT_THAT(publisher, IsOk());
  ASSERT_THAT(publisher.value().publish(config_.path), IsOk());
  EXPECT_THAT(Shared::attach(name_),
              IsError(ErrorKind::InvalidIndexType, {current_path().string(), "test-stream-map"}));
  auto stream = SharedIndex<StreamMapIndex>::attach(name_);
  ASSERT_THAT(stream, IsOk());
  EXPECT_TRUE(same_content(stream.value().index(), writer.value().index()));
}

// ---------------------------------------------------------------------------

// Whoever takes a name (SharedPublisher::open, remove_stale_publication)
// removes every segment being written under it, iqdb.NAME.<16 hex digits>,
// not only the one the head records: a segment whose generation was lost
// with a damaged or replaced head, or left by a publisher the head no longer
// names, would otherwise hold its tmpfs memory for good. Under the lock, and
// no other name's (here another publication whose name starts with this
// one's keeps its own).
TEST_F(SharedMemoryHostileTest, LeftoverBuildingSegmentsAreRemovedWhenTheNameIsTaken) {
  const std::vector<std::byte> segment = published_segment();
  const DescriptorFields fields = parse_descriptor(segment);
  const auto others = pf::object_path(pf::building_object(other_, 2));
  enum class Taker { kOpen, kUnpublish, kUnpublishDamagedHead };
  for (const Taker taker : {Taker::kOpen, Taker::kUnpublish, Taker::kUnpublishDamagedHead}) {
    SCOPED_TRACE(taker == Taker::kOpen        ? "SharedPublisher::open()"
                 : taker == Taker::kUnpublish ? "remove_stale_publication()"
                                              : "remove_stale_publication(), a damaged head");
    install(segment);
    std::vector<std::byte> head_of_1 = head_bytes(1, 0, fields.published_ns);
    if (taker == Taker::kUnpublishDamagedHead) head_of_1[0] ^= std::byte{0x01};  // no magic
    write_file(head_path(), head_of_1);
    write_file(building_path(2), segment);
    write_file(building_path(5), std::span(segment).first(kPage));
    write_file(building_path(0xabc), {});
    write_file(others, segment);
    ASSERT_THAT(publication_objects(name_), ::testing::ElementsAre(head(), building(2), building(5),
                                                                   building(0xabc), current()));
    if (taker == Taker::kOpen) {
      auto publisher = SharedPublisher::open(name_);
      ASSERT_THAT(publisher, IsOk());
      EXPECT_THAT(publication_objects(name_), ::testing::ElementsAre(head(), current()))
          << "leftover segments were not removed";
      auto shared = Shared::attach(name_);
      ASSERT_THAT(shared, IsOk()) << "the current segment was removed";
      EXPECT_EQ(content_digest(shared.value().index()), digest_);
      ASSERT_THAT(publisher.value().withdraw(), IsOk());
    } else {
      auto removed = remove_stale_publication(name_);
      ASSERT_THAT(removed, IsOk());
      EXPECT_EQ(removed.value(), 5u);  // the head, the current segment and three leftovers
    }
    EXPECT_THAT(publication_objects(name_), ::testing::IsEmpty());
    EXPECT_TRUE(std::filesystem::exists(others)) << "another publication's segment was removed";
    remove_publication_objects(name_);
  }
}

}  // namespace
}  // namespace iqdb::persist::test
