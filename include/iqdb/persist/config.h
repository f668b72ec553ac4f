// PersistConfig: where and how PersistedIndex persists an index: the
// snapshot's path (Tier 1) and the knobs (Tier 2), each with a default that
// suits most uses. The option types have headers of their own: FsyncPolicy
// and WalRecoveryMode (wal_options.h), VerifyMode and WarmUp
// (load_options.h), Compression (compression.h).
//
//   iqdb::persist::PersistConfig config("/data/products.iqdb");
//   config.fsync_policy = FsyncPolicy::never();  // bulk load: durability later
//   config.verify = VerifyMode::Skip;            // trusted replica
//
// A PersistConfig is a plain copyable value. validate() reports every
// out-of-range field with ErrorKind::InvalidConfig, and features this build
// does not offer with ErrorKind::Unsupported; PersistedIndex calls it first.
#ifndef IQDB_PERSIST_CONFIG_H_
#define IQDB_PERSIST_CONFIG_H_

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "iqdb/persist/compression.h"
#include "iqdb/persist/error.h"
#include "iqdb/persist/load_options.h"
#include "iqdb/persist/wal_options.h"

namespace iqdb::persist {

class FileSystem;

struct PersistConfig {
  PersistConfig() = default;
  // NOLINTNEXTLINE(google-explicit-constructor): "a config is a path" (Tier 1).
  PersistConfig(std::filesystem::path snapshot_path) : path(std::move(snapshot_path)) {}

  // The snapshot file. Its directory must exist (it is never created): a
  // load, a save and open_with() all report NotFound when it does not.
  // Temporary files are created beside the snapshot so that the final rename
  // stays within one file system.
  std::filesystem::path path;

  // The write-ahead log: insert/remove/apply_batch are logged, and made
  // durable per fsync_policy, before they are applied; load() replays the log
  // onto the snapshot; checkpoint() folds it into a new snapshot. Its files
  // are "<path>.wal-<16 hex digits>" beside the snapshot. Without it, load()
  // reads the snapshot alone and ignores any log.
  bool wal_enabled = false;

  // When saves and logged mutations reach stable storage (see FsyncPolicy):
  // always() loses nothing acknowledged to a power loss, at the price of an
  // fsync per save and per logged mutation (shared by concurrent writers).
  FsyncPolicy fsync_policy = FsyncPolicy::always();

  // The codec of snapshot sections on save (see Compression); none() keeps
  // every section zero-copy. A compressed section takes less disk and fewer
  // reads, but is encoded on each save and decoded on each load into memory
  // the index holds as a copy.
  Compression compression = Compression::none();
  // The sections `compression` applies to, by name; empty means every section.
  std::vector<std::string> compressed_sections;
  // A section is compressed only where it pays: unless its first chunk
  // shrinks to at most this fraction of its size, it is stored raw (and stays
  // zero-copy). In (0, 1]. At the default, data that barely compresses (such
  // as random float vectors) stays raw, while sorted ids are compressed
  // (measured ratios: benchmarks/README.md).
  double compression_max_ratio = 0.9;

  // When a load checks the CRCs (see VerifyMode); Eager reads the whole file
  // before load() returns.
  VerifyMode verify = VerifyMode::Eager;
  // What a load does with a damaged log (see WalRecoveryMode):
  // TolerateCorruptedTail accepts what a crash under fsync_policy may leave,
  // and refuses anything else.
  WalRecoveryMode wal_recovery = WalRecoveryMode::TolerateCorruptedTail;

  // How a load brings raw sections into memory (see WarmUp), and per-section
  // overrides by name.
  WarmUp warm_up = WarmUp::Lazy;
  std::vector<std::pair<std::string, WarmUp>> section_warm_up;
  // madvise(MADV_HUGEPAGE) on raw sections aligned to 2 MiB (set
  // section_alignment or the index's per-section alignment), for fewer TLB
  // misses. Advice only: the kernel's transparent huge page settings decide.
  // (Decoded sections of 2 MiB or more always get it.)
  bool huge_pages = false;

  // Threads for verification and for decoding compressed sections; 0 means
  // one per hardware thread.
  unsigned verify_threads = 0;

  // Default alignment of payload sections, in bytes: a power of two from 4096
  // to 1 GiB. 2 MiB lets a mapping use huge pages, at the price of up to
  // 2 MiB of padding per section. An index may ask for a larger alignment per
  // section.
  std::uint64_t section_alignment = 4096;

  // All file-system access goes through this seam; null means the operating
  // system (default_file_system()). Tests substitute a fault-injecting one.
  std::shared_ptr<FileSystem> file_system;

  // InvalidConfig for an empty path or one naming a directory, a bad
  // alignment, a non-positive periodic interval, a zstd level outside the
  // library's range, a section name (in compressed_sections or
  // section_warm_up) that is empty or longer than kMaxSectionNameLength, or a
  // compression_max_ratio outside (0, 1]; Unsupported for a codec this build
  // lacks (naming its CMake option).
  Result<void> validate() const;
};

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_CONFIG_H_
