// How a load reads a snapshot: when it checks the CRCs (VerifyMode) and how
// it brings raw sections into memory (WarmUp); PersistConfig::verify,
// warm_up and section_warm_up take them. Plain enums: thread-safe values.
#ifndef IQDB_PERSIST_LOAD_OPTIONS_H_
#define IQDB_PERSIST_LOAD_OPTIONS_H_

#include <string_view>

namespace iqdb::persist {

// When a load checks the section CRCs (compressed sections are always
// checked, chunk by chunk, before they are decoded).
//   Eager:      before load() returns, in parallel over
//               PersistConfig::verify_threads threads. A damaged file is an
//               error; the index never sees damaged bytes.
//   Background: load() returns once the header is validated; worker threads
//               check the rest while the index serves. The index may see
//               damaged bytes until the check passes; a failure is reported,
//               never swallowed (PersistedIndex::verification(), see
//               iqdb/persist/load_verification.h).
//   Skip:       never. For replicas whose files are known good (e.g. verified
//               by the writer, or by `iqdb-persist verify`). The header is
//               still fully validated, so a hostile file cannot cause
//               out-of-bounds access by the library; flipped payload bits
//               reach the index unnoticed.
// With Background and Skip the snapshot's payload is handed to the index as
// trusted (SnapshotView::payload_trusted()): an index may skip its own checks
// that cost time in proportion to the payload (the example flat index's
// distinct-id check), so that those loads stay independent of the file size.
// Every mode checks the file as it is during the load. Raw sections are read
// through the mapping afterwards: a file changed in place later is never
// checked again (see "Files changed under a live mapping" in sections.h).
enum class VerifyMode { Eager, Background, Skip };

// The mode's name as written here ("Eager", ...), for messages and reports.
std::string_view to_string(VerifyMode mode);

// How a load brings a raw section's pages into memory (compressed sections
// are decoded into memory at load, so they are resident anyway). Lazy is the
// default: a first query that scans a cold section in order then overlaps
// its work with the kernel's read-ahead, and was measured no slower than with
// WillNeed or Prefetch and faster than with Populate, whose load() first
// waits for every page (figures: benchmarks/README.md). The others suit
// queries that touch a section at random, or latency goals for the first
// query after start-up.
//   Lazy:      nothing; pages are read on first touch, with the kernel's
//              read-ahead.
//   WillNeed:  madvise(MADV_WILLNEED): the kernel starts reading the section
//              at once; load() does not wait.
//   Populate:  load() returns with every page resident (MADV_POPULATE_READ):
//              it takes as long as reading the section.
//   Prefetch:  a background thread touches every page after load() returns
//              (stopped when the snapshot's memory is released).
//   Lock:      Populate, then mlock(2): the pages stay resident. Needs a
//              large enough RLIMIT_MEMLOCK; a refusal fails the load (Io).
enum class WarmUp { Lazy, WillNeed, Populate, Prefetch, Lock };

// The mode's name as written here ("Lazy", ...).
std::string_view to_string(WarmUp mode);

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_LOAD_OPTIONS_H_
