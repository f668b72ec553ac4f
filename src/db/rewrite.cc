#include "iqdb/persist/rewrite.h"

#include <chrono>
#include <system_error>

#include <fmt/format.h>

#include "db/database_files.h"
#include "db/snapshot_io.h"
#include "iqdb/persist/config.h"
#include "iqdb/persist/file_system.h"
#include "wal/wal_format.h"
#include "wal/wal_segments.h"

namespace iqdb::persist {
namespace {

// The database config that the save and open paths (db/snapshot_io.h)
// take: the snapshot at `path`, with `options` and PersistConfig's defaults
// for the rest (VerifyMode::Eager, WarmUp::Lazy, no log).
PersistConfig config_for(const std::filesystem::path& path, const RewriteOptions& options) {
  PersistConfig config(path);
  config.fsync_policy = options.fsync_policy;
  config.compression = options.compression;
  config.compressed_sections = options.compressed_sections;
  config.compression_max_ratio = options.compression_max_ratio;
  config.verify_threads = options.verify_threads;
  config.file_system = options.file_system;
  return config;
}

// Whether `a` and `b` name the same path. Lexical (after making them
// absolute), so two names of one file (links) count as different: that only
// makes check_target_has_no_log() refuse, never let a foreign log through.
bool same_path(const std::filesystem::path& a, const std::filesystem::path& b) {
  const auto normal = [](const std::filesystem::path& path) {
    std::error_code error;
    const std::filesystem::path absolute = std::filesystem::absolute(path, error);
    return (error ? path : absolute).lexically_normal();
  };
  return normal(a) == normal(b);
}

// A typo in compressed_sections would otherwise silently compress nothing.
Result<void> check_compressed_sections_exist(const FileHeader& header,
                                             const RewriteOptions& options,
                                             const std::string& path) {
  for (const std::string& name : options.compressed_sections) {
    if (header.find_section(name) == nullptr) {
      return fail(ErrorKind::InvalidConfig,
                  fmt::format("{}: compressed_sections names '{}', which this snapshot does not "
                              "have",
                              path, name));
    }
  }
  return success();
}

// A log beside another path belongs to another snapshot: a load would replay
// it onto the copy.
Result<void> check_target_has_no_log(FileSystem& fs, const std::filesystem::path& target) {
  IQDB_TRY_ASSIGN(const auto segments, list_wal_segments(fs, target));
  if (segments.empty()) return success();
  return fail(ErrorKind::AlreadyExists,
              fmt::format("{}: has a write-ahead log ({} segment(s)) that a load would replay onto "
                          "the rewritten snapshot: remove the {}{}* files or write elsewhere",
                          target.string(), segments.size(), target.filename().string(),
                          wal_format::kSegmentInfix));
}

// `after` is null only if another writer replaced the new file meanwhile.
SectionRewrite describe(const SectionInfo& before, const SectionInfo* after) {
  SectionRewrite section;
  section.name = before.name;
  section.logical_length = before.logical_length;
  section.old_compression = before.compression;
  section.old_stored_length = before.stored_length;
  if (after != nullptr) {
    section.new_compression = after->compression;
    section.new_stored_length = after->stored_length;
  }
  return section;
}

}  // namespace

Result<RewriteReport> rewrite_snapshot(const std::filesystem::path& source,
                                       const std::filesystem::path& target,
                                       const RewriteOptions& options) {
  const auto started = std::chrono::steady_clock::now();
  const PersistConfig writing = config_for(target, options);
  IQDB_TRY(writing.validate());
  // The target's writer lock, held until the new file is in place: a
  // checkpoint of its writer would otherwise be replaced by this snapshot.
  // In place, it is taken before the source is read, so that the source is
  // the database's latest snapshot; another target is locked once the source
  // has proved readable, so that a failed rewrite leaves no lock file there.
  const bool in_place = same_path(source, target);
  std::unique_ptr<FileLock> lock;
  if (in_place) {
    IQDB_TRY_ASSIGN(lock, detail::lock_database(writing));
  }
  // Opened and checked as a load with VerifyMode::Eager opens and checks it,
  // on one mapping: the bytes written are the bytes verified, even if the
  // file is replaced meanwhile. The mapping outlives the rename of an
  // in-place rewrite.
  PersistConfig reading = config_for(source, options);
  reading.verify = VerifyMode::Eager;
  reading.warm_up = WarmUp::Lazy;
  IQDB_TRY_ASSIGN(const auto opened, detail::open_snapshot(reading, detail::kAnyIndexType));
  const FileHeader& header = opened.view.header();
  IQDB_TRY(check_compressed_sections_exist(header, options, source.string()));
  if (!in_place) {
    IQDB_TRY_ASSIGN(lock, detail::lock_database(writing));
    IQDB_TRY(check_target_has_no_log(file_system_or_default(options.file_system), target));
  }

  const IndexFacts facts{header.index_type, header.dim,     header.metric,
                         header.n_vectors,  header.wal_lsn, header.database_id};
  IQDB_TRY(detail::save_snapshot(writing, facts, [&](SectionWriter& out) -> Result<void> {
    for (const SectionInfo& section : header.sections) {
      IQDB_TRY_ASSIGN(const auto view, opened.view.section(section.name));
      IQDB_TRY(out.add_section(section.name, view.bytes(), section.alignment));
    }
    return success();
  }));

  auto written = read_file_header(target, options.file_system);
  if (!written) {
    return written.error().with_context("rewritten, but the new header cannot be read back");
  }
  RewriteReport report;
  report.bytes_before = header.file_size;
  report.bytes_after = written.value().file_size;
  for (const SectionInfo& section : header.sections) {
    report.sections.push_back(describe(section, written.value().find_section(section.name)));
  }
  report.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return report;
}

}  // namespace iqdb::persist
