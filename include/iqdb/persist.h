// iqdb-persist: durable, fast-loading persistence for in-memory vector indexes.
//
// Include this one header. Start with PersistedIndex (persisted_index.h) and
// PersistConfig (config.h), whose option types have headers of their own
// (compression.h, load_options.h, wal_options.h); implement Persistable
// (persistable.h) for your index; read snapshot headers with
// read_file_header() (file_header.h) and check files with verify_snapshot()
// (verify_snapshot.h); change how a file is stored with rewrite_snapshot() (rewrite.h).
// docs/FORMAT.md specifies the on-disk format byte by byte.
#ifndef IQDB_PERSIST_H_
#define IQDB_PERSIST_H_

#include "iqdb/index.h"
#include "iqdb/persist/compression.h"
#include "iqdb/persist/config.h"
#include "iqdb/persist/error.h"
#include "iqdb/persist/file_header.h"
#include "iqdb/persist/file_system.h"
#include "iqdb/persist/load_options.h"
#include "iqdb/persist/persistable.h"
#include "iqdb/persist/persisted_index.h"
#include "iqdb/persist/replica.h"
#include "iqdb/persist/replica_options.h"
#include "iqdb/persist/rewrite.h"
#include "iqdb/persist/sections.h"
#include "iqdb/persist/shared_memory.h"
#include "iqdb/persist/stream.h"
#include "iqdb/persist/verify_snapshot.h"
#include "iqdb/persist/version.h"
#include "iqdb/persist/wal_inspection.h"
#include "iqdb/persist/wal_options.h"
#include "iqdb/persist/wal_replay.h"
#include "iqdb/types.h"

#endif  // IQDB_PERSIST_H_
