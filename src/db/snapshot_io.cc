// The atomic save protocol and the open-for-load path behind detail::Database
// (database.cc) and rewrite_snapshot().
#include "db/snapshot_io.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>

#include <fmt/format.h>

#include "iqdb/persist/file_system.h"
#include "snapshot/header_codec.h"
#include "snapshot/load_verification_control.h"
#include "snapshot/section_decoder.h"
#include "snapshot/snapshot_writer.h"
#include "snapshot/verify_snapshot.h"
#include "snapshot/warm_up.h"
#include "util/file_paths.h"
#include "wal/control_file.h"

namespace iqdb::persist::detail {
namespace {

// Temporary files are named "<snapshot name>.tmp-<pid>-<counter>-<clock>":
// unique across processes and saves, and telling which process owns them.
std::string temp_name_prefix(const std::filesystem::path& target) {
  return target.filename().string() + ".tmp-";
}

std::filesystem::path temp_path_for(const std::filesystem::path& target) {
  static std::atomic<std::uint64_t> counter{0};
  const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
  return directory_of(target) / fmt::format("{}{}-{}-{:x}", temp_name_prefix(target), ::getpid(),
                                            counter.fetch_add(1), now);
}

bool process_exists(pid_t pid) { return ::kill(pid, 0) == 0 || errno == EPERM; }

// Removes the temporary files of saves of `target` whose process no longer
// exists (a save killed part-way). Best effort: failing to clean up must not
// fail the save that noticed.
void remove_stale_temp_files(FileSystem& fs, const std::filesystem::path& target) {
  auto names = fs.list_dir(directory_of(target));
  if (!names) return;
  const std::string prefix = temp_name_prefix(target);
  for (const std::string& name : names.value()) {
    if (!name.starts_with(prefix)) continue;
    const char* digits = name.data() + prefix.size();
    pid_t owner = 0;
    const auto [end, error] = std::from_chars(digits, name.data() + name.size(), owner);
    if (error != std::errc() || *end != '-' || owner <= 0 || process_exists(owner)) continue;
    (void)fs.remove(directory_of(target) / name);
  }
}

// Removes the temporary file unless the save committed it.
class TempFileGuard {
 public:
  TempFileGuard(FileSystem& fs, std::filesystem::path path) : fs_(fs), path_(std::move(path)) {}
  ~TempFileGuard() {
    if (armed_) (void)fs_.remove(path_);
  }
  TempFileGuard(const TempFileGuard&) = delete;
  TempFileGuard& operator=(const TempFileGuard&) = delete;
  void disarm() { armed_ = false; }

 private:
  FileSystem& fs_;
  std::filesystem::path path_;
  bool armed_ = true;
};

// Writes the snapshot into the new file `temp`, syncs it (when asked) and
// renames it over config.path. The temporary file is gone unless renamed.
Result<void> write_and_rename(FileSystem& fs, const PersistConfig& config,
                              const std::filesystem::path& temp, const IndexFacts& facts,
                              const FillSections& fill, bool sync) {
  IQDB_TRY_ASSIGN(auto file, fs.create_new(temp));
  TempFileGuard guard(fs, temp);
  SnapshotWriter writer(*file, config.section_alignment, config.compression,
                        config.compressed_sections, config.compression_max_ratio);
  IQDB_TRY(fill(writer));
  IQDB_TRY(writer.finish(facts));
  if (sync) IQDB_TRY(file->sync());
  IQDB_TRY(file->close());
  IQDB_TRY(fs.rename(temp, config.path));
  guard.disarm();
  return success();
}

}  // namespace

Result<void> save_snapshot(const PersistConfig& config, const IndexFacts& facts,
                           const FillSections& fill) {
  IQDB_TRY(check_host_is_little_endian(config.path));
  FileSystem& fs = file_system_or_default(config.file_system);
  remove_stale_temp_files(fs, config.path);
  const std::filesystem::path temp = temp_path_for(config.path);
  const bool sync = config.fsync_policy.syncs_snapshots();
  // The user named the snapshot, not the temporary file: lead with the
  // snapshot and keep the file system's error (naming the temporary) as detail.
  if (auto written = write_and_rename(fs, config, temp, facts, fill, sync); !written) {
    return boost::outcome_v2::failure(
        written.error().with_context(config.path.string() + ": save failed"));
  }
  if (sync) IQDB_TRY(fs.sync_dir(directory_of(config.path)));
  announce_snapshot(config, facts.wal_lsn);
  return success();
}

void announce_snapshot(const PersistConfig& config, std::uint64_t wal_lsn) {
  if (config.file_system != nullptr) return;  // the control file is the host's
  auto control = ControlFile::open_for_writer(config.path, /*create=*/false);
  if (control) control.value()->publish_snapshot(wal_lsn);
}

Result<OpenedSnapshot> open_snapshot(const PersistConfig& config, std::string_view index_type) {
  IQDB_TRY(check_host_is_little_endian(config.path));
  const std::string path = config.path.string();
  IQDB_TRY_ASSIGN(auto file, file_system_or_default(config.file_system).open_readable(config.path));
  IQDB_TRY_ASSIGN(auto header, read_header(*file));
  if (index_type != kAnyIndexType && header.index_type != index_type) {
    return fail(ErrorKind::InvalidIndexType, fmt::format("{}: holds a '{}' index, expected '{}'",
                                                         path, header.index_type, index_type));
  }
  IQDB_TRY_ASSIGN(auto mapping, file->map());
  const auto bytes = mapping->bytes();
  // Compressed sections have their CRCs checked as they are decoded.
  IQDB_TRY_ASSIGN(auto decoded,
                  decode_compressed_sections(bytes, header, path, config.verify_threads));
  IQDB_TRY_ASSIGN(
      auto prefetcher,
      warm_up_sections(bytes, header, decoded.bytes,
                       {config.warm_up, config.section_warm_up, config.huge_pages}, path));
  // Whatever the index's sections point into; the prefetcher (last, so
  // destroyed first) stops touching pages before they are unmapped.
  struct Memory {
    std::shared_ptr<const MappedRegion> mapping;
    std::shared_ptr<const void> decoded;
    std::unique_ptr<Prefetcher> prefetcher;
  };
  auto memory = std::make_shared<const Memory>(
      Memory{std::move(mapping), decoded.memory, std::move(prefetcher)});
  VerifyPassOptions pass;
  pass.threads = config.verify_threads;
  pass.check_compressed = false;
  std::shared_ptr<Verification> verification;
  switch (config.verify) {
    case VerifyMode::Eager: {
      IQDB_TRY_ASSIGN(const auto checked, verify_mapped_snapshot(bytes, header, path, pass));
      verification = VerificationControl::passed(checked);
      break;
    }
    case VerifyMode::Background:
      verification = VerificationControl::start(
          bytes_to_verify(header, false),
          [memory, bytes, header, path, pass](Verification& self) mutable {
            pass.progress = [&self](std::uint64_t done, std::uint64_t) {
              VerificationControl::set_progress(self, done);
            };
            pass.progress_interval = std::chrono::milliseconds(50);
            pass.stop = &VerificationControl::stop_flag(self);
            return verify_mapped_snapshot(bytes, header, path, pass);
          });
      break;
    case VerifyMode::Skip: verification = VerificationControl::not_run(); break;
  }
  return OpenedSnapshot{SnapshotView(config.path, std::move(header), std::move(memory), bytes,
                                     std::move(decoded.bytes), config.verify != VerifyMode::Eager),
                        std::move(verification)};
}

Result<void> check_rebuilt(const SnapshotView& snapshot, const IndexFacts& rebuilt) {
  const FileHeader& header = snapshot.header();
  const auto mismatch = [&](std::string_view what, const auto& expected, const auto& found) {
    return fail(ErrorKind::InvalidPayload,
                fmt::format("{}: header records {} {}, but the rebuilt index has {}",
                            snapshot.path().string(), what, expected, found));
  };
  if (rebuilt.dim != header.dim) return mismatch("dim", header.dim, rebuilt.dim);
  if (rebuilt.metric != header.metric) {
    return mismatch("metric", to_string(header.metric), to_string(rebuilt.metric));
  }
  if (rebuilt.n_vectors != header.n_vectors) {
    return mismatch("n_vectors", header.n_vectors, rebuilt.n_vectors);
  }
  return success();
}

PersistError rebuild_failed(const SnapshotView& snapshot, const PersistError& error) {
  const std::string path = snapshot.path().string();
  if (error.message().find(path) != std::string::npos) return error;
  return error.with_context(path);
}

}  // namespace iqdb::persist::detail
