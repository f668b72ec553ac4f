// Persistable: what an index implements to be saved and loaded (Tier 3 of the
// API).
//
// Two ways to persist; implement either or both (section persistence wins when
// both are):
//
// Stream persistence (StreamPersistable; its contract is in
// iqdb/persist/stream.h):
//   static constexpr std::string_view kIndexType = "flat";
//   Result<void> save_to(StreamWriter& out) const;
//   static Result<I> load_from(StreamReader& in);
// The index writes only its own payload; framing, CRCs and the atomic write
// are the library's. load_from must consume the payload exactly.
//
// Section persistence, zero-copy (SectionPersistable):
//   static constexpr std::string_view kIndexType = "flat";
//   Result<void> save_sections(SectionWriter& out) const;
//   static Result<I> load_sections(const SnapshotView& snapshot);
// The index writes named sections from its own memory and is rebuilt from
// spans into the read-only mapping (see iqdb/persist/sections.h).
//
// Either way the rebuilt index's dim(), metric() and size() must equal what
// the saved one reported; load() checks this against the header.
//
// kIndexType is 1..64 bytes and must be stable: it is how a snapshot says which
// index it holds.
#ifndef IQDB_PERSIST_PERSISTABLE_H_
#define IQDB_PERSIST_PERSISTABLE_H_

#include <concepts>
#include <string_view>

#include "iqdb/index.h"
#include "iqdb/persist/error.h"
#include "iqdb/persist/sections.h"
#include "iqdb/persist/stream.h"

namespace iqdb::persist {

template <class I>
concept HasIndexType = requires {
  { I::kIndexType } -> std::convertible_to<std::string_view>;
};

template <class I>
concept StreamPersistable = HasIndexType<I> &&
    requires(const I& index, StreamWriter& writer, StreamReader& reader) {
  { index.save_to(writer) } -> std::same_as<Result<void>>;
  { I::load_from(reader) } -> std::same_as<Result<I>>;
};

template <class I>
concept SectionPersistable = HasIndexType<I> &&
    requires(const I& index, SectionWriter& writer, const SnapshotView& view) {
  { index.save_sections(writer) } -> std::same_as<Result<void>>;
  { I::load_sections(view) } -> std::same_as<Result<I>>;
};

template <class I>
concept Persistable = Index<I> && std::movable<I> &&(StreamPersistable<I> || SectionPersistable<I>);

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_PERSISTABLE_H_
