// The AVX2 build of XXH3 (content_hash_avx2.cc), over an XXH3_state_t that
// the caller allocates. Only for CPUs with AVX2; content_hash.cc chooses.
#ifndef IQDB_PERSIST_SRC_SNAPSHOT_CONTENT_HASH_AVX2_H_
#define IQDB_PERSIST_SRC_SNAPSHOT_CONTENT_HASH_AVX2_H_

#include <stddef.h>
#include <stdint.h>

namespace iqdb::persist::avx2 {

void xxh3_reset(void* state);
void xxh3_update(void* state, const void* data, size_t size);
uint64_t xxh3_digest(const void* state);

}  // namespace iqdb::persist::avx2

#endif  // IQDB_PERSIST_SRC_SNAPSHOT_CONTENT_HASH_AVX2_H_
