// PersistedIndex<I>: an in-memory index together with where and how it is
// persisted (Tier 1 of the API).
//
//   PersistConfig config("/data/products.iqdb");
//   auto opened = PersistedIndex<FlatIndex>::open_with(FlatIndex(128, metric), config);
//   if (!opened) return report(opened.error());
//   PersistedIndex<FlatIndex> db = std::move(opened).value();
//   db.insert(42, vector);          // applied to the index
//   if (auto saved = db.save(); !saved) ...;
//   auto loaded = PersistedIndex<FlatIndex>::load(config);  // mmap, verify, rebuild
//
// save() is atomic: it writes a new temporary file beside the snapshot, syncs
// it (per fsync_policy), renames it over the snapshot and syncs the directory.
// A failed or interrupted save leaves the previous snapshot intact; the one
// exception is a failed directory sync after the rename, reported as Io, when
// the new snapshot is already in place but may not survive a power loss. A failed
// save removes its temporary file; the temporary file of a save whose process
// died is removed by the next save of the same path (temporary files record
// their owner's pid, so run saves of one path from one host and PID namespace).
// It never writes into an existing file, so processes that have the old
// snapshot mapped keep reading it unharmed.
//
// Thread-safety: none of its own. Calls that mutate (insert, remove,
// index_mut) need exclusive access; save() and checkpoint() may run
// concurrently with const access to the index but not with mutation.
#ifndef IQDB_PERSIST_PERSISTED_INDEX_H_
#define IQDB_PERSIST_PERSISTED_INDEX_H_

#include <bit>
#include <span>
#include <utility>

#include "iqdb/index.h"
#include "iqdb/persist/config.h"
#include "iqdb/persist/detail/snapshot_io.h"
#include "iqdb/persist/error.h"
#include "iqdb/persist/persistable.h"

namespace iqdb::persist {

template <Persistable I>
class PersistedIndex {
 public:
  // Wraps an in-memory index for later save(). Nothing is written yet.
  // Errors: those of PersistConfig::validate().
  [[nodiscard]] static Result<PersistedIndex> open_with(I index, PersistConfig config) {
    IQDB_TRY(config.validate());
    return PersistedIndex(std::move(index), std::move(config));
  }

  // Rebuilds the index saved at config.path. Errors: NotFound when there is no
  // file; every error of read_file_header() and verify_snapshot();
  // InvalidIndexType when the file holds another index type; InvalidPayload or
  // the index's own error when it cannot be rebuilt.
  [[nodiscard]] static Result<PersistedIndex> load(PersistConfig config) {
    IQDB_TRY(config.validate());
    IQDB_TRY_ASSIGN(auto snapshot, detail::open_snapshot(config, I::kIndexType));
    IQDB_TRY_ASSIGN(auto index, rebuild(snapshot));
    IQDB_TRY(detail::check_rebuilt(snapshot, facts_of(index)));
    return PersistedIndex(std::move(index), std::move(config));
  }

  // Writes a snapshot of the index to config().path, atomically.
  [[nodiscard]] Result<void> save() const {
    return detail::save_snapshot(config_, facts_of(index_), [this](SectionWriter& out) {
      return write_sections(index_, out);
    });
  }

  // Applies the mutation to the index. (With the write-ahead log these will
  // also log it durably first.) Errors: the index's refusal as DuplicateId,
  // DimensionMismatch or InvalidArgument; the index is then unchanged.
  [[nodiscard]] Result<void> insert(const VectorId& id, std::span<const float> vector,
                                    const Metadata& metadata = {}) {
    return from_index(index_.insert(id, vector, metadata));
  }

  // Errors: IdNotFound when the index has no such id.
  [[nodiscard]] Result<void> remove(const VectorId& id) { return from_index(index_.remove(id)); }

  // Makes every applied mutation durable in a new snapshot (without the
  // write-ahead log, the same as save()).
  [[nodiscard]] Result<void> checkpoint() { return save(); }

  const I& index() const { return index_; }
  I& index_mut() { return index_; }
  const PersistConfig& config() const { return config_; }

  PersistedIndex(PersistedIndex&&) noexcept = default;
  PersistedIndex& operator=(PersistedIndex&&) noexcept = default;
  PersistedIndex(const PersistedIndex&) = delete;
  PersistedIndex& operator=(const PersistedIndex&) = delete;

 private:
  PersistedIndex(I index, PersistConfig config)
      : index_(std::move(index)), config_(std::move(config)) {}

  static detail::IndexFacts facts_of(const I& index) {
    return {I::kIndexType, static_cast<std::uint64_t>(index.dim()), index.metric(),
            static_cast<std::uint64_t>(index.size())};
  }

  static Result<void> write_sections(const I& index, SectionWriter& out) {
    if constexpr (SectionPersistable<I>) {
      return index.save_sections(out);
    } else {
      return out.add_streamed_section(kStreamSectionName,
                                      [&index](Writer& writer) { return index.save_to(writer); });
    }
  }

  static Result<I> rebuild(const SnapshotView& snapshot) {
    if constexpr (SectionPersistable<I>) {
      auto index = I::load_sections(snapshot);
      if (!index) return detail::rebuild_failed(snapshot, index.error());
      return index;
    } else {
      IQDB_TRY_ASSIGN(auto section, snapshot.section(kStreamSectionName));
      Reader reader = section.reader();
      auto index = I::load_from(reader);
      if (!index) return detail::rebuild_failed(snapshot, index.error());
      IQDB_TRY(reader.expect_end());
      return index;
    }
  }

  static Result<void> from_index(IndexResult<void> outcome) {
    if (outcome) return boost::outcome_v2::success();
    return boost::outcome_v2::failure(PersistError::from_index(outcome.error()));
  }

  I index_;
  PersistConfig config_;
};

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_PERSISTED_INDEX_H_
