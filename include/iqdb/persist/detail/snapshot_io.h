// The part of opening a snapshot that depends on the index type, shared by
// PersistedIndex and Replica: rebuilding an index from a SnapshotView and
// reading its facts back. src/db/snapshot_io.h is the library's part.
// Not part of the public API.
#ifndef IQDB_PERSIST_DETAIL_SNAPSHOT_IO_H_
#define IQDB_PERSIST_DETAIL_SNAPSHOT_IO_H_

#include <cstdint>

#include "iqdb/persist/error.h"
#include "iqdb/persist/file_header.h"
#include "iqdb/persist/persistable.h"
#include "iqdb/persist/sections.h"
#include "iqdb/persist/stream.h"

namespace iqdb::persist::detail {

// The index's own load error, with the snapshot's file named in the message.
PersistError rebuild_failed(const SnapshotView& snapshot, const PersistError& error);

// InvalidPayload unless the rebuilt index's facts match the header's.
[[nodiscard]] Result<void> check_rebuilt(const SnapshotView& snapshot, const IndexFacts& rebuilt);

// The index's type, shape and size now (wal_lsn is the library's to set).
template <Persistable I>
IndexFacts index_facts(const I& index) {
  return {I::kIndexType, static_cast<std::uint64_t>(index.dim()), index.metric(),
          static_cast<std::uint64_t>(index.size())};
}

// Rebuilds an I from `snapshot`, by its sections or from its stream.
template <Persistable I>
Result<I> rebuild_index(const SnapshotView& snapshot) {
  if constexpr (SectionPersistable<I>) {
    auto index = I::load_sections(snapshot);
    if (!index) return rebuild_failed(snapshot, index.error());
    return index;
  } else {
    IQDB_TRY_ASSIGN(auto section, snapshot.section(kStreamSectionName));
    StreamReader reader = section.reader();
    auto index = I::load_from(reader);
    if (!index) return rebuild_failed(snapshot, index.error());
    IQDB_TRY(reader.expect_end());
    return index;
  }
}

}  // namespace iqdb::persist::detail

#endif  // IQDB_PERSIST_DETAIL_SNAPSHOT_IO_H_
