// Shared-memory publication across real processes: attacher processes see
// what a load sees; a publisher killed with SIGKILL (after a publication, or
// while it writes one) leaves its current segment attachable until the next
// publisher's first publication replaces it, and the next publisher (or
// remove_stale_publication()) clears what it was writing; attacher
// processes that follow a publisher following a writer's checkpoints only
// ever see a generation whose content is the writer's at that generation's
// LSN; and a generation replaced by a newer one (renamed over) is freed
// when its last attacher goes, killed or not.
//
// Children never return into GoogleTest and never assert: they use the
// library, write(2) and _exit(), and report through pipes. Every test here
// forks after the parent used the library (whose verification and release
// workers are threads): the suite is a ForkTest.
//
// The tests under "Known defects and pending fixes", at the end, fail until
// the library changes they describe are made; each one's comment says which.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "iqdb/persist/file_header.h"
#include "iqdb/persist/persisted_index.h"
#include "iqdb/persist/shared_memory.h"
#include "shared/publication_format.h"
#include "support/child_process.h"
#include "support/mock_indexes.h"
#include "support/shared_memory_util.h"
#include "support/test_util.h"

namespace iqdb::persist::test {
namespace {

using namespace std::chrono_literals;
namespace pf = publication_format;
using Writer = PersistedIndex<SectionArrayIndex>;
using Shared = SharedIndex<SectionArrayIndex>;
constexpr std::size_t kDim = 8;
constexpr DistanceMetric kMetric = DistanceMetric::Euclidean;
constexpr std::size_t kMiB = std::size_t{1} << 20;

// ---------------------------------------------------------------------------
// Children.

enum ChildExit : int {
  kChildDone = 0,
  kAttachFailed = 20,
  kNotZeroCopy = 21,  // the index is not a view of the mapping, or a section is not raw
  kReportFailed = 22,
  kHeldChanged = 23,  // a generation held while a newer one was published changed
  kWaitTimedOut = 24,
  kOpenFailed = 25,
  kPublishFailed = 26,
};

[[noreturn]] void child_fail(int code, const char* what, const PersistError* error = nullptr) {
  std::fprintf(stderr, "child %d: %s%s%s\n", static_cast<int>(::getpid()), what,
               error != nullptr ? ": " : "", error != nullptr ? error->to_string().c_str() : "");
  ::_exit(code);
}

// What an attacher saw.
struct Seen {
  std::uint64_t generation = 0;
  std::uint64_t wal_lsn = 0;
  std::uint64_t digest = 0;
};

Seen seen_of(const Shared& shared) {
  const SharedDescriptor& descriptor = shared.snapshot().descriptor();
  return {descriptor.generation, descriptor.wal_lsn, content_digest(shared.index())};
}

Shared attach_or_fail(const std::string& name) {
  auto shared = Shared::attach(name);
  if (!shared) child_fail(kAttachFailed, "attach failed", &shared.error());
  return std::move(shared).value();
}

// Reads one byte of every page of every section: all of it resident.
std::uint64_t touch_every_page(const SnapshotView& view) {
  std::uint64_t sum = 0;
  for (const SectionInfo& info : view.header().sections) {
    auto section = view.section(info.name);
    if (!section) child_fail(kAttachFailed, "a section cannot be read", &section.error());
    const std::span<const std::byte> bytes = section.value().bytes();
    for (std::size_t i = 0; i < bytes.size(); i += 4096) {
      sum += std::to_integer<std::uint64_t>(*static_cast<const volatile std::byte*>(&bytes[i]));
    }
  }
  return sum;
}

// Attaches `name`, checks that the index is served from the shared pages,
// reports what it holds and exits.
[[noreturn]] void attach_and_report(const std::string& name, const Pipe& out) {
  const Shared shared = attach_or_fail(name);
  const auto& sections = shared.snapshot().view().header().sections;
  const bool raw = std::all_of(sections.begin(), sections.end(), [](const SectionInfo& section) {
    return section.compression == SectionCompression::None;
  });
  if (!shared.index().is_mapped() || !raw) child_fail(kNotZeroCopy, "not served in place");
  if (!out.send(seen_of(shared))) child_fail(kReportFailed, "cannot report");
  ::_exit(kChildDone);
}

// Attaches `name`, reports each generation it sees (once), waits for a newer
// one and attaches again, until it holds `final_generation`. When a newer
// one is published, the generation it holds must still hold what it did.
[[noreturn]] void follow_publication(const std::string& name, std::uint64_t final_generation,
                                     const Pipe& out) {
  const auto deadline = Clock::now() + 60s;
  std::uint64_t last_generation = 0;
  auto state = static_cast<std::uint32_t>(::getpid());
  for (;;) {
    const Shared shared = attach_or_fail(name);
    const Seen seen = seen_of(shared);
    if (seen.generation != last_generation && !out.send(seen)) {
      child_fail(kReportFailed, "cannot report");
    }
    last_generation = seen.generation;
    if (last_generation >= final_generation) ::_exit(kChildDone);
    // A long timeout: a wake-up that does not cross processes shows as the
    // parent's deadline passing.
    while (!shared.snapshot().wait_for_newer(30s)) {
      if (Clock::now() > deadline) child_fail(kWaitTimedOut, "no newer generation");
    }
    if (content_digest(shared.index()) != seen.digest) {
      child_fail(kHeldChanged, "the held generation changed when a newer one was published");
    }
    // Sometimes slow to attach again: newer generations replace the
    // current one meanwhile, and some are never seen.
    state = state * 1664525u + 1013904223u;
    if (state & 0x10000)
      std::this_thread::sleep_for(std::chrono::microseconds((state >> 17) % 10000));
  }
}

// Opens a publisher of `name`, publishes `source`, sends the generation,
// then publishes it again and again (with `again`) or waits to be killed.
[[noreturn]] void run_publisher(const std::string& name, const std::filesystem::path& source,
                                const Pipe& out, bool again) {
  auto publisher = SharedPublisher::open(name);
  if (!publisher) child_fail(kOpenFailed, "open failed", &publisher.error());
  auto report = publisher.value().publish(source);
  if (!report) child_fail(kPublishFailed, "publish failed", &report.error());
  if (!out.send(report.value().generation)) child_fail(kReportFailed, "cannot report");
  for (;;) {
    if (!again) {
      ::pause();
      continue;
    }
    auto next = publisher.value().publish(source);
    if (!next) child_fail(kPublishFailed, "publish failed", &next.error());
  }
}

// A publisher run by commands: kPublish publishes `source` and replies with
// the generation; kWithdraw withdraws (as a publisher stopping cleanly does),
// replies 0 and exits.
constexpr std::uint64_t kPublish = 1;
constexpr std::uint64_t kWithdraw = 2;

[[noreturn]] void serve_commands(const std::string& name, const std::filesystem::path& source,
                                 const Pipe& commands, const Pipe& replies) {
  auto opened = SharedPublisher::open(name);
  if (!opened) child_fail(kOpenFailed, "open failed", &opened.error());
  std::optional<SharedPublisher> publisher(std::move(opened).value());
  for (;;) {
    const auto command = commands.receive<std::uint64_t>(Clock::now() + 60s);
    if (!command) child_fail(kWaitTimedOut, "no command");
    if (*command == kPublish) {
      auto report = publisher->publish(source);
      if (!report) child_fail(kPublishFailed, "publish failed", &report.error());
      if (!replies.send(report.value().generation)) child_fail(kReportFailed, "cannot reply");
      continue;
    }
    auto withdrawn = publisher->withdraw();
    if (!withdrawn) child_fail(kPublishFailed, "withdraw failed", &withdrawn.error());
    publisher.reset();
    if (!replies.send(std::uint64_t{0})) child_fail(kReportFailed, "cannot reply");
    ::_exit(kChildDone);
  }
}

// ---------------------------------------------------------------------------
// The parent's view of /dev/shm.

// The head's fields, read from its file.
pf::HeadFields read_head(std::string_view name) {
  const auto path = pf::object_path(pf::head_object(name));
  const std::vector<std::byte> bytes = read_file(path);
  auto head = pf::decode_head(bytes, bytes.size(), path.string());
  EXPECT_THAT(head, IsOk());
  return head ? head.value() : pf::HeadFields{};
}

// The head mapped read-only, to watch its fields while a publisher runs.
class WatchedHead {
 public:
  explicit WatchedHead(std::string_view name) {
    const auto path = pf::object_path(pf::head_object(name));
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    void* address = ::mmap(nullptr, pf::kHeadSize, PROT_READ, MAP_SHARED, fd, 0);
    ::close(fd);
    if (address != MAP_FAILED) head_ = static_cast<std::byte*>(address);
  }
  ~WatchedHead() {
    if (head_ != nullptr) ::munmap(head_, pf::kHeadSize);
  }
  WatchedHead(const WatchedHead&) = delete;
  WatchedHead& operator=(const WatchedHead&) = delete;

  bool mapped() const { return head_ != nullptr; }
  std::uint64_t building() const {
    auto* word = reinterpret_cast<std::uint64_t*>(head_ + pf::kBuildingOffset);
    return std::atomic_ref<std::uint64_t>(*word).load();
  }

 private:
  std::byte* head_ = nullptr;
};

// Bytes of /dev/shm in use (all of its tmpfs, every process's objects).
std::optional<std::uint64_t> shm_used() {
  struct statvfs info {};
  if (::statvfs(std::string(pf::kShmDirectory).c_str(), &info) != 0 || info.f_blocks == 0) {
    return std::nullopt;
  }
  return static_cast<std::uint64_t>(info.f_blocks - info.f_bfree) * info.f_frsize;
}

// The resident bytes of process `pid`'s mapping of `path` (of the file by
// that name, or of one removed or renamed over while it had that name: with
// `removed`), from /proc/PID/smaps; nullopt when it maps no such file.
std::optional<std::uint64_t> mapped_rss(pid_t pid, const std::filesystem::path& path,
                                        bool removed) {
  std::ifstream smaps(fmt::format("/proc/{}/smaps", pid));
  const std::string name = path.string();
  std::optional<std::uint64_t> rss;
  bool in_mapping = false;
  std::string line;
  while (std::getline(smaps, line)) {
    // A mapping's first line ends with its path; its fields ("Rss:") follow.
    const bool header = !line.empty() && std::isxdigit(static_cast<unsigned char>(line[0])) &&
                        line.find('-') != std::string::npos && line.find(':') > line.find(' ');
    if (header) {
      in_mapping = line.ends_with(removed ? " " + name + " (deleted)" : " " + name);
    } else if (in_mapping && line.starts_with("Rss:")) {
      rss = rss.value_or(0) + std::stoull(line.substr(4)) * 1024;
    }
  }
  return rss;
}

// What /dev/shm's use did when a removed generation's attachers went.
struct Freeing {
  std::int64_t segment_bytes = 0;  // allocated to the generation's segment
  std::int64_t when_a_left = 0;    // bytes freed when the first attacher detached
  std::int64_t when_b_died = 0;    // and when the second, the last, was killed

  bool clean() const {
    return when_a_left < segment_bytes / 4 && when_b_died >= segment_bytes * 3 / 4 &&
           when_b_died <= segment_bytes * 5 / 4;
  }
  std::string to_string() const {
    return fmt::format(
        "a generation of {} KiB: /dev/shm use fell by {} KiB when A left, {} KiB when B was killed",
        segment_bytes / 1024, when_a_left / 1024, when_b_died / 1024);
  }
};

class SharedMemoryProcessForkTest : public ::testing::Test {
 protected:
  SharedMemoryProcessForkTest() {
    config_.path = dir_.file("db.iqdb");
    config_.compression = Compression::zstd(3);
    config_.compression_max_ratio = 1.0;
    remove_publication_objects(name_);
  }
  ~SharedMemoryProcessForkTest() override { remove_publication_objects(name_); }

  // Saves an index of `n` vectors as the snapshot at config_.path; returns
  // its content's digest.
  std::uint64_t save(std::size_t n, std::uint32_t seed, std::size_t dim = kDim) {
    auto writer = Writer::open_with(SectionArrayIndex(dim, kMetric, make_vectors(n, dim, seed)),
                                    config_, OpenMode::Overwrite);
    EXPECT_THAT(writer, IsOk());
    if (!writer) return 0;
    EXPECT_THAT(writer.value().checkpoint(), IsOk());
    return content_digest(writer.value().index());
  }

  // The digest of a normal load of config_.path.
  std::uint64_t loaded_digest() {
    PersistConfig config = config_;
    config.wal_enabled = false;
    auto loaded = Writer::load(config);
    EXPECT_THAT(loaded, IsOk());
    return loaded ? content_digest(loaded.value().index()) : 0;
  }

  ChildProcess start_publisher(const Pipe& out, bool again = false) {
    return ChildProcess::spawn([&] { run_publisher(name_, config_.path, out, again); });
  }

  // A publisher process run by commands (serve_commands).
  struct Service {
    std::unique_ptr<Pipe> commands = std::make_unique<Pipe>();
    std::unique_ptr<Pipe> replies = std::make_unique<Pipe>();
    ChildProcess process;

    // Sends `command`; the reply, or nullopt.
    std::optional<std::uint64_t> call(std::uint64_t command) {
      if (!commands->send(command)) return std::nullopt;
      return replies->receive<std::uint64_t>(Clock::now() + 20s);
    }
  };
  Service start_service() {
    Service service;
    const Pipe& commands = *service.commands;
    const Pipe& replies = *service.replies;
    service.process =
        ChildProcess::spawn([&] { serve_commands(name_, config_.path, commands, replies); });
    service.commands->close_read();
    service.replies->close_write();
    return service;
  }

  // Ends the service's publication: withdrawn by the publisher, or, `killed`,
  // the publisher SIGKILLed and its objects removed by
  // remove_stale_publication() (the head and the current segment).
  void end_publication(Service& service, bool killed) {
    if (killed) {
      ASSERT_TRUE(killed_by(service.process.kill(), SIGKILL));
      auto removed = remove_stale_publication(name_);
      ASSERT_THAT(removed, IsOk());
      EXPECT_EQ(removed.value(), 2u);
    } else {
      ASSERT_EQ(service.call(kWithdraw), 0u);
      EXPECT_TRUE(exited_ok(service.process.wait(Clock::now() + 20s)));
    }
  }

  // Publishes `big`; two attacher processes map all of it; publishes
  // `small` (renamed over it: the big generation's name goes); A detaches,
  // then B is killed, and /dev/shm's use is measured around each.
  void free_experiment(SharedPublisher& publisher, const std::filesystem::path& big,
                       const std::filesystem::path& small, Freeing& out) {
    auto published = publisher.publish(big);
    ASSERT_THAT(published, IsOk());
    const auto path = pf::object_path(published.value().object);
    ASSERT_EQ(path, pf::object_path(pf::current_object(name_)));
    struct stat info {};
    ASSERT_EQ(::stat(path.c_str(), &info), 0);
    out.segment_bytes = static_cast<std::int64_t>(info.st_blocks) * 512;
    ASSERT_GE(out.segment_bytes, static_cast<std::int64_t>(16 * kMiB));

    // A leaves when told (it drops its SharedIndex and lives on); B is killed.
    Pipe ready;
    Pipe command;
    ChildProcess a = ChildProcess::spawn([&] {
      ready.close_read();
      command.close_write();
      std::optional<Shared> shared = attach_or_fail(name_);
      (void)touch_every_page(shared->snapshot().view());
      if (!ready.send(std::uint64_t{1})) child_fail(kReportFailed, "cannot report");
      (void)command.receive<std::uint64_t>(Clock::now() + 60s);
      shared.reset();
      if (!ready.send(std::uint64_t{2})) child_fail(kReportFailed, "cannot report");
      (void)command.receive<std::uint64_t>(Clock::now() + 60s);
      ::_exit(kChildDone);
    });
    ChildProcess b = ChildProcess::spawn([&] {
      ready.close_read();
      command.close_write();
      const Shared shared = attach_or_fail(name_);
      (void)touch_every_page(shared.snapshot().view());
      if (!ready.send(std::uint64_t{1})) child_fail(kReportFailed, "cannot report");
      for (;;) ::pause();
    });
    ready.close_write();
    command.close_read();
    for (int i = 0; i < 2; ++i) {
      ASSERT_EQ(ready.receive<std::uint64_t>(Clock::now() + 20s), 1u)
          << "A " << describe_status(a.wait(Clock::now())) << ", B "
          << describe_status(b.wait(Clock::now()));
    }

    ASSERT_THAT(publisher.publish(small), IsOk());
    struct stat replaced {};
    ASSERT_EQ(::stat(path.c_str(), &replaced), 0);
    EXPECT_NE(replaced.st_ino, info.st_ino) << "the small generation was not renamed over it";
    // Both map all of the generation, whose name is gone.
    for (const ChildProcess* child : {&a, &b}) {
      const auto rss = mapped_rss(child->pid(), path, /*removed=*/true);
      ASSERT_TRUE(rss) << "process " << child->pid() << " does not map " << path;
      EXPECT_GE(*rss, static_cast<std::uint64_t>(out.segment_bytes) * 9 / 10);
    }

    const auto before = shm_used();
    ASSERT_TRUE(command.send(std::uint64_t{1}));
    ASSERT_EQ(ready.receive<std::uint64_t>(Clock::now() + 20s), 2u);
    const auto a_left = shm_used();
    EXPECT_FALSE(mapped_rss(a.pid(), path, /*removed=*/true)) << "A still maps the generation";
    const auto status = b.kill();
    const auto b_killed = shm_used();
    ASSERT_TRUE(killed_by(status, SIGKILL)) << describe_status(status);
    ASSERT_TRUE(before && a_left && b_killed);
    out.when_a_left = static_cast<std::int64_t>(*before) - static_cast<std::int64_t>(*a_left);
    out.when_b_died = static_cast<std::int64_t>(*a_left) - static_cast<std::int64_t>(*b_killed);
    ASSERT_TRUE(command.send(std::uint64_t{2}));
    EXPECT_TRUE(exited_ok(a.wait(Clock::now() + 20s)));
  }

  std::string head() const { return pf::head_object(name_); }
  std::string current() const { return pf::current_object(name_); }
  std::string building(std::uint64_t generation) const {
    return pf::building_object(name_, generation);
  }

  TempDir dir_;
  PersistConfig config_;
  const std::string name_ = unique_publication_name();
};

// ---------------------------------------------------------------------------

TEST_F(SharedMemoryProcessForkTest, AttacherProcessesSeeWhatALoadSees) {
  save(2000, 1);
  auto header = read_file_header(config_.path);
  ASSERT_THAT(header, IsOk());
  ASSERT_TRUE(std::any_of(
      header.value().sections.begin(), header.value().sections.end(),
      [](const SectionInfo& section) { return section.compression != SectionCompression::None; }))
      << "the source must have compressed sections, which the publisher decodes";
  auto publisher = SharedPublisher::open(name_);
  ASSERT_THAT(publisher, IsOk());
  auto published = publisher.value().publish(config_.path);
  ASSERT_THAT(published, IsOk());
  const std::uint64_t expected = loaded_digest();

  constexpr int kAttachers = 4;
  Pipe reports;
  std::vector<ChildProcess> attachers;
  for (int i = 0; i < kAttachers; ++i) {
    attachers.push_back(ChildProcess::spawn([&] {
      reports.close_read();
      attach_and_report(name_, reports);
    }));
  }
  reports.close_write();
  const auto deadline = Clock::now() + 20s;
  for (int i = 0; i < kAttachers; ++i) {
    const auto seen = reports.receive<Seen>(deadline);
    ASSERT_TRUE(seen) << "only " << i << " of " << kAttachers << " attachers reported";
    EXPECT_EQ(seen->generation, 1u);
    EXPECT_EQ(seen->wal_lsn, published.value().wal_lsn);
    EXPECT_EQ(seen->digest, expected) << "attacher " << i << " holds other content than a load";
  }
  for (ChildProcess& attacher : attachers) {
    const auto status = attacher.wait(deadline);
    EXPECT_TRUE(exited_ok(status)) << "an attacher " << describe_status(status);
  }
}

// A publisher killed after it published leaves its head and its current
// segment: attachers still attach that generation. The next publisher takes
// the name (the kernel dropped the dead one's lock); the dead one's
// generation stays current (and attachable) until its first publication,
// which goes on from the next generation and replaces it; attachers keep
// what they mapped.
TEST_F(SharedMemoryProcessForkTest, KilledPublishersGenerationStaysAndTheNextPublisherTakesOver) {
  const std::uint64_t first = save(500, 3);
  Pipe messages;
  ChildProcess dead = start_publisher(messages);
  messages.close_write();
  const auto generation = messages.receive<std::uint64_t>(Clock::now() + 20s);
  ASSERT_TRUE(generation) << "the publisher " << describe_status(dead.wait(Clock::now() + 1s));
  ASSERT_EQ(*generation, 1u);
  const auto status = dead.kill();
  ASSERT_TRUE(killed_by(status, SIGKILL)) << describe_status(status);

  EXPECT_THAT(publication_objects(name_), ::testing::ElementsAre(head(), current()));
  const pf::HeadFields fields = read_head(name_);
  EXPECT_EQ(fields.current, 1u);
  EXPECT_EQ(fields.building, 0u);
  EXPECT_EQ(fields.publisher_pid, static_cast<std::uint32_t>(dead.pid()));

  auto held = Shared::attach(name_);
  ASSERT_THAT(held, IsOk());
  EXPECT_EQ(held.value().snapshot().descriptor().generation, 1u);
  EXPECT_EQ(held.value().snapshot().descriptor().object, current());
  EXPECT_EQ(held.value().snapshot().descriptor().publisher_pid,
            static_cast<std::uint32_t>(dead.pid()));
  EXPECT_EQ(content_digest(held.value().index()), first);
  EXPECT_FALSE(held.value().snapshot().newer_published());

  auto next = SharedPublisher::open(name_);
  ASSERT_THAT(next, IsOk()) << "the dead publisher's lock must have died with it";
  EXPECT_THAT(publication_objects(name_), ::testing::ElementsAre(head(), current()));
  EXPECT_EQ(next.value().generation(), 0u);
  EXPECT_FALSE(held.value().snapshot().newer_published()) << "the dead one's is still current";
  auto still = Shared::attach(name_);
  ASSERT_THAT(still, IsOk());
  EXPECT_EQ(still.value().snapshot().descriptor().generation, 1u);
  EXPECT_EQ(content_digest(still.value().index()), first);

  const std::uint64_t second = save(700, 4);
  auto report = next.value().publish(config_.path);
  ASSERT_THAT(report, IsOk());
  EXPECT_EQ(report.value().generation, 2u);
  EXPECT_THAT(publication_objects(name_), ::testing::ElementsAre(head(), current()));
  EXPECT_TRUE(held.value().snapshot().newer_published());
  auto attached = Shared::attach(name_);
  ASSERT_THAT(attached, IsOk());
  EXPECT_EQ(attached.value().snapshot().descriptor().generation, 2u);
  EXPECT_EQ(content_digest(attached.value().index()), second);
  // Its name is gone; what was mapped is intact.
  EXPECT_EQ(content_digest(held.value().index()), first);
  EXPECT_EQ(content_digest(still.value().index()), first);
}

// A publisher killed while it writes a generation (the head's building
// field set): the current generation stays attachable, and the next
// publisher removes the half-written segment, keeps the current one until
// its first publication, and publishes the generation after the one being
// written. The publisher publishes a large snapshot again and again; the
// parent kills it as soon as the head says it is building, and tries again
// in the rare case the publication completed before the signal landed.
TEST_F(SharedMemoryProcessForkTest, PublisherKilledWhileWritingAGeneration) {
  config_.compression = Compression::none();
  constexpr std::size_t kBigDim = 64;
  const std::size_t n = (kSanitized ? 4 : 8) * kMiB / (kBigDim * sizeof(float));
  const std::uint64_t expected = save(n, 5, kBigDim);

  std::optional<pf::HeadFields> caught;
  int attempts = 0;
  while (!caught && attempts < 20) {
    ++attempts;
    remove_publication_objects(name_);  // what an attempt that missed left
    Pipe messages;
    ChildProcess publisher = start_publisher(messages, /*again=*/true);
    messages.close_write();
    const auto first = messages.receive<std::uint64_t>(Clock::now() + 30s);
    ASSERT_TRUE(first) << "the publisher " << describe_status(publisher.wait(Clock::now() + 1s));
    const WatchedHead watched(name_);
    ASSERT_TRUE(watched.mapped());
    const auto deadline = Clock::now() + 20s;
    while (watched.building() == 0 && Clock::now() < deadline) {
    }
    // Killed a millisecond into the publication (in its writing, mostly),
    // or, if it completed first, at once the next time (before the segment
    // exists, often).
    const auto until = Clock::now() + std::chrono::microseconds(attempts % 2 == 1 ? 1000 : 0);
    while (Clock::now() < until) {
    }
    const auto status = publisher.kill();
    ASSERT_TRUE(killed_by(status, SIGKILL)) << "the publisher " << describe_status(status);
    const pf::HeadFields fields = read_head(name_);
    if (fields.building != 0) caught = fields;
  }
  ASSERT_TRUE(caught) << "no publisher was killed while publishing, in " << attempts << " attempts";
  const std::uint64_t current_generation = caught->current;
  const std::uint64_t building_generation = caught->building;
  EXPECT_GE(current_generation, 1u);
  EXPECT_EQ(building_generation, current_generation + 1);
  // The head, the current segment and perhaps part of the next: nothing
  // else. (Killed between its rename and the head's update, the next is
  // already current: the attacher below gets it.)
  const std::vector<std::string> left = publication_objects(name_);
  EXPECT_THAT(left, ::testing::Contains(current()));
  EXPECT_THAT(left, ::testing::IsSubsetOf({head(), building(building_generation), current()}));

  auto held = Shared::attach(name_);
  ASSERT_THAT(held, IsOk());
  EXPECT_THAT(held.value().snapshot().descriptor().generation,
              ::testing::AnyOf(current_generation, building_generation));
  EXPECT_EQ(content_digest(held.value().index()), expected);

  auto next = SharedPublisher::open(name_);
  ASSERT_THAT(next, IsOk());
  EXPECT_THAT(publication_objects(name_), ::testing::ElementsAre(head(), current()))
      << "the half-written segment was left, or the current one removed";
  auto still = Shared::attach(name_);
  ASSERT_THAT(still, IsOk());
  EXPECT_EQ(content_digest(still.value().index()), expected);
  auto report = next.value().publish(config_.path);
  ASSERT_THAT(report, IsOk());
  EXPECT_EQ(report.value().generation, building_generation + 1);
  EXPECT_THAT(publication_objects(name_), ::testing::ElementsAre(head(), current()));
  auto attached = Shared::attach(name_);
  ASSERT_THAT(attached, IsOk());
  EXPECT_EQ(attached.value().snapshot().descriptor().generation, building_generation + 1);
  EXPECT_EQ(content_digest(attached.value().index()), expected);
  EXPECT_EQ(content_digest(held.value().index()), expected);
  EXPECT_TRUE(held.value().snapshot().newer_published());
  std::cout << fmt::format(
                   "[ shared-process ] killed while writing generation {} ({} of the segment "
                   "written), after {} attempt(s)",
                   building_generation,
                   std::find(left.begin(), left.end(), building(building_generation)) != left.end()
                       ? "part"
                       : "none",
                   attempts)
            << std::endl;
}

// remove_stale_publication() leaves a running publisher's objects alone
// (Locked, as is a second publisher, told the holder's pid), and removes
// everything of a killed one.
TEST_F(SharedMemoryProcessForkTest, RemoveStalePublicationRefusesALiveOneAndClearsADeadOne) {
  save(300, 6);
  Pipe messages;
  ChildProcess live = start_publisher(messages);
  messages.close_write();
  const auto generation = messages.receive<std::uint64_t>(Clock::now() + 20s);
  ASSERT_TRUE(generation) << "the publisher " << describe_status(live.wait(Clock::now() + 1s));

  EXPECT_THAT(remove_stale_publication(name_), IsError(ErrorKind::Locked, "published by another"));
  EXPECT_THAT(SharedPublisher::open(name_),
              IsError(ErrorKind::Locked, fmt::format("(pid {})", live.pid())));
  EXPECT_THAT(publication_objects(name_), ::testing::ElementsAre(head(), current()));
  EXPECT_EQ(read_head(name_).current, 1u);
  auto attached = SharedSnapshot::attach(name_);
  ASSERT_THAT(attached, IsOk());
  EXPECT_FALSE(attached.value().newer_published());

  const auto status = live.kill();
  ASSERT_TRUE(killed_by(status, SIGKILL)) << describe_status(status);
  auto removed = remove_stale_publication(name_);
  ASSERT_THAT(removed, IsOk());
  EXPECT_EQ(removed.value(), 2u);  // the current segment and the head
  EXPECT_THAT(publication_objects(name_), ::testing::IsEmpty());
  EXPECT_THAT(SharedSnapshot::attach(name_), IsError(ErrorKind::NotFound, "nothing is published"));
  // (That an attacher watching the head is told: see
  // RemoveStalePublicationWithdrawsForAttachersWatchingTheHead.)
  EXPECT_EQ(attached.value().view().header().n_vectors, 300u);
  auto again = remove_stale_publication(name_);
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(again.value(), 0u);
}

// A writer checkpoints; after each checkpoint the publisher calls
// publish_if_changed(); attacher processes attach, wait for a newer
// generation and attach again until they hold the last one. Each
// (generation, LSN, digest) an attacher reports is the writer's content at
// the LSN that generation was published from, and each attacher's
// generations only increase.
TEST_F(SharedMemoryProcessForkTest, AttachersFollowAPublisherThatFollowsCheckpoints) {
  const std::uint64_t rounds = kSanitized ? 8 : 16;
  constexpr int kAttachers = 3;
  config_.wal_enabled = true;
  config_.fsync_policy = FsyncPolicy::never();
  auto opened = Writer::open_with(SectionArrayIndex(kDim, kMetric, make_vectors(100, kDim, 7)),
                                  config_, OpenMode::Overwrite);
  ASSERT_THAT(opened, IsOk());
  Writer& writer = opened.value();
  auto publisher = SharedPublisher::open(name_);
  ASSERT_THAT(publisher, IsOk());

  std::map<std::uint64_t, std::uint64_t> digest_at_lsn;
  std::map<std::uint64_t, std::uint64_t> lsn_of_generation;
  const auto follow = [&](std::uint64_t expected_generation) {
    auto report = publisher.value().publish_if_changed(config_.path);
    ASSERT_THAT(report, IsOk());
    ASSERT_TRUE(report.value().has_value()) << "the checkpoint replaced the snapshot";
    EXPECT_EQ(report.value()->generation, expected_generation);
    EXPECT_EQ(report.value()->wal_lsn, writer.last_lsn());
    digest_at_lsn[report.value()->wal_lsn] = content_digest(writer.index());
    lsn_of_generation[report.value()->generation] = report.value()->wal_lsn;
    auto unchanged = publisher.value().publish_if_changed(config_.path);
    ASSERT_THAT(unchanged, IsOk());
    EXPECT_FALSE(unchanged.value().has_value());
  };
  ASSERT_NO_FATAL_FAILURE(follow(1));

  const std::uint64_t final_generation = rounds + 1;
  std::vector<std::unique_ptr<Pipe>> reports;
  std::vector<ChildProcess> attachers;
  std::vector<std::vector<Seen>> seen(kAttachers);
  for (int i = 0; i < kAttachers; ++i) {
    reports.push_back(std::make_unique<Pipe>());
    const Pipe& out = *reports.back();
    attachers.push_back(
        ChildProcess::spawn([&] { follow_publication(name_, final_generation, out); }));
    reports.back()->close_write();
  }
  // Each attacher holds generation 1 before the writer goes on.
  for (int i = 0; i < kAttachers; ++i) {
    const auto first = reports[static_cast<std::size_t>(i)]->receive<Seen>(Clock::now() + 20s);
    ASSERT_TRUE(first) << "attacher " << i << " "
                       << describe_status(
                              attachers[static_cast<std::size_t>(i)].wait(Clock::now() + 1s));
    seen[static_cast<std::size_t>(i)].push_back(*first);
  }

  std::uint64_t next_id = 100;
  std::uint64_t next_removed = 0;
  std::uint32_t state = 12345;
  for (std::uint64_t round = 1; round <= rounds; ++round) {
    state = state * 1664525u + 1013904223u;
    const std::size_t inserts = 5 + (state >> 16) % 20;
    const std::vector<float> vectors =
        make_vectors(inserts, kDim, static_cast<std::uint32_t>(100 + round));
    for (std::size_t i = 0; i < inserts; ++i) {
      ASSERT_THAT(writer.insert(VectorId(next_id++), std::span(vectors).subspan(i * kDim, kDim)),
                  IsOk());
    }
    for (int i = 0; i < 3; ++i) ASSERT_THAT(writer.remove(VectorId(next_removed++)), IsOk());
    ASSERT_THAT(writer.checkpoint(), IsOk());
    ASSERT_NO_FATAL_FAILURE(follow(round + 1));
    // The next checkpoint at once (attachers may miss a generation), or
    // after they caught up.
    if ((state & 0x300) == 0)
      std::this_thread::sleep_for(std::chrono::microseconds((state >> 9) % 3000));
  }

  // Woken through the head's futex, every attacher gets to the last
  // generation at once (they would wait 30 s for nothing otherwise).
  const auto deadline = Clock::now() + (kSanitized ? 20s : 10s);
  std::size_t reported = 0;
  for (int i = 0; i < kAttachers; ++i) {
    const auto index = static_cast<std::size_t>(i);
    const auto status = attachers[index].wait(deadline);
    EXPECT_TRUE(exited_ok(status)) << "attacher " << i << " " << describe_status(status);
    while (const auto report = reports[index]->receive<Seen>(Clock::now() + 1s)) {
      seen[index].push_back(*report);
    }
    SCOPED_TRACE(fmt::format("attacher {}", i));
    std::uint64_t previous = 0;
    for (const Seen& s : seen[index]) {
      EXPECT_GT(s.generation, previous) << "generations went back or repeated";
      previous = s.generation;
      const auto lsn = lsn_of_generation.find(s.generation);
      ASSERT_NE(lsn, lsn_of_generation.end()) << "generation " << s.generation << " unknown";
      EXPECT_EQ(s.wal_lsn, lsn->second) << "generation " << s.generation;
      const auto expected = digest_at_lsn.find(s.wal_lsn);
      ASSERT_NE(expected, digest_at_lsn.end()) << "no checkpoint at LSN " << s.wal_lsn;
      EXPECT_EQ(s.digest, expected->second)
          << "generation " << s.generation << " is not the writer's content at LSN " << s.wal_lsn;
    }
    ASSERT_FALSE(seen[index].empty());
    EXPECT_EQ(seen[index].back().generation, final_generation);
    reported += seen[index].size();
  }
  std::cout << fmt::format(
                   "[ shared-process ] {} generations, {} attachers reported {} of them in all",
                   final_generation, kAttachers, reported)
            << std::endl;
}

// A generation whose name the publisher removed is freed when the last
// process mapping it goes: not while another attacher holds it, and at once
// when that one is killed. Measured as the tmpfs space /dev/shm uses
// (statvfs: exact, but of every process's objects): the segment is large
// (16 MiB), the margins a quarter of it, and the measurements around each
// event a few milliseconds apart. Another test publishing at that moment
// (ctest runs two at once) can still move the count by as much; so an
// experiment whose numbers are off is run again, up to three times. A
// generation that stayed allocated would be off every time.
TEST_F(SharedMemoryProcessForkTest, RemovedGenerationIsFreedWhenItsLastAttacherGoesEvenKilled) {
  if (!shm_used()) GTEST_SKIP() << "/dev/shm reports no block counts";
  config_.compression = Compression::none();
  constexpr std::size_t kBigDim = 64;
  const auto big = dir_.file("big.iqdb");
  const auto small = dir_.file("small.iqdb");
  config_.path = small;
  save(100, 9, kBigDim);
  config_.path = big;
  save(16 * kMiB / (kBigDim * sizeof(float)), 8, kBigDim);
  auto publisher = SharedPublisher::open(name_);
  ASSERT_THAT(publisher, IsOk());

  Freeing freeing;
  for (int attempt = 1; attempt <= 3; ++attempt) {
    ASSERT_NO_FATAL_FAILURE(free_experiment(publisher.value(), big, small, freeing));
    std::cout << fmt::format("[ shared-process ] attempt {}: {}", attempt, freeing.to_string())
              << std::endl;
    if (freeing.clean()) break;
  }
  EXPECT_LT(freeing.when_a_left, freeing.segment_bytes / 4) << "freed while B still maps it";
  EXPECT_GE(freeing.when_b_died, freeing.segment_bytes * 3 / 4)
      << "not freed when its last attacher was killed";
  EXPECT_LE(freeing.when_b_died, freeing.segment_bytes * 5 / 4);
}

// ---------------------------------------------------------------------------
// Known defects and pending fixes. Each test below fails until the library
// change its comment describes is made.

// DEFECT: docs/FORMAT.md ("Publishing") says remove_stale_publication()
// takes the name, then withdraws: stores 0 in the head's current
// generation, moves the change counter and wakes waiters, then removes the
// objects. It only removes them (remove_unused(), since the change that let
// it clear a damaged head), so an attacher that had mapped the head (its
// first newer_published() or wait_for_newer() does) keeps reading the
// unlinked head's "current: my generation" and is never told the
// publication is gone; a waiter sleeps out its timeout. A clean withdrawal
// (the control case) tells it. The head should be withdrawn through when it
// is one this library wrote.
TEST_F(SharedMemoryProcessForkTest, RemoveStalePublicationWithdrawsForAttachersWatchingTheHead) {
  save(100, 14);
  for (const bool killed : {false, true}) {
    SCOPED_TRACE(killed ? "killed, then remove_stale_publication()" : "withdrawn");
    Service service = start_service();
    ASSERT_EQ(service.call(kPublish), 1u)
        << "the publisher " << describe_status(service.process.wait(Clock::now() + 1s));
    auto watching = SharedSnapshot::attach(name_);
    ASSERT_THAT(watching, IsOk());
    EXPECT_FALSE(watching.value().newer_published());  // maps the head
    ASSERT_NO_FATAL_FAILURE(end_publication(service, killed));
    EXPECT_THAT(publication_objects(name_), ::testing::IsEmpty());
    EXPECT_TRUE(watching.value().newer_published()) << "the publication is gone";
    EXPECT_TRUE(watching.value().wait_for_newer(0ms));
  }
}

// A publication withdrawn (a publisher stopping cleanly), or removed after
// a crash (remove_stale_publication()), loses its head, so the next
// publisher numbers its generations from 1 again. An attacher that had not
// yet looked at the head (newer_published() and wait_for_newer() map it on
// their first call, not attach()) then maps the new head: it compares the
// head's publication time as well as the generation number, so the
// restarted publisher's generation 1 (other content) is newer than the
// withdrawn publication's generation 1 it holds. An attacher that had
// looked before holds the old head's inode, which withdraw() set to "none".
TEST_F(SharedMemoryProcessForkTest, RestartedPublisherIsNewerForEveryAttacherOfTheOldOne) {
  for (const bool killed : {false, true}) {
    SCOPED_TRACE(killed ? "killed, then remove_stale_publication()" : "withdrawn");
    const std::uint64_t first = save(300, 11);
    Service service = start_service();
    ASSERT_EQ(service.call(kPublish), 1u)
        << "the publisher " << describe_status(service.process.wait(Clock::now() + 1s));
    auto watching = Shared::attach(name_);
    ASSERT_THAT(watching, IsOk());
    EXPECT_FALSE(watching.value().snapshot().newer_published());  // maps the head
    auto unwatched = Shared::attach(name_);  // has not looked at the head since
    ASSERT_THAT(unwatched, IsOk());
    ASSERT_NO_FATAL_FAILURE(end_publication(service, killed));
    EXPECT_THAT(publication_objects(name_), ::testing::IsEmpty());

    // The publisher restarts, and publishes what the writer wrote since.
    const std::uint64_t second = save(500, 12);
    Service restarted = start_service();
    ASSERT_EQ(restarted.call(kPublish), 1u) << "generations restart from 1";
    auto current = Shared::attach(name_);
    ASSERT_THAT(current, IsOk());
    EXPECT_EQ(content_digest(current.value().index()), second);
    EXPECT_EQ(content_digest(unwatched.value().index()), first);
    EXPECT_EQ(read_head(name_).published_ns,
              static_cast<std::uint64_t>(
                  std::chrono::duration_cast<std::chrono::nanoseconds>(
                      current.value().snapshot().descriptor().published.time_since_epoch())
                      .count()))
        << "the head's publication time is the current generation's descriptor's";
    EXPECT_FALSE(current.value().snapshot().newer_published());

    // (remove_stale_publication() withdrawing first for attachers that
    // watch the head is RemoveStalePublicationRefusesALiveOneAndClearsADeadOne's.)
    if (!killed) {
      EXPECT_TRUE(watching.value().snapshot().newer_published());
    }
    EXPECT_TRUE(unwatched.value().snapshot().newer_published())
        << "an attacher of the removed publication's generation 1 takes the restarted "
           "publisher's generation 1 for its own";
    EXPECT_TRUE(unwatched.value().snapshot().wait_for_newer(0ms));
    ASSERT_EQ(restarted.call(kWithdraw), 0u);
    EXPECT_TRUE(exited_ok(restarted.process.wait(Clock::now() + 20s)));
    EXPECT_THAT(publication_objects(name_), ::testing::IsEmpty());
  }
}

}  // namespace
}  // namespace iqdb::persist::test
