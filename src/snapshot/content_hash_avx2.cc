// XXH3 compiled for AVX2 (this file only is built with -mavx2; see
// CMakeLists.txt). It includes nothing but xxhash.h, whose functions are all
// static here (XXH_INLINE_ALL), so no AVX2 code can be shared with, or chosen
// by the linker for, the rest of the library. Called only on CPUs with AVX2.
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "snapshot/content_hash_avx2.h"

namespace iqdb::persist::avx2 {

void xxh3_reset(void* state) { XXH3_64bits_reset(static_cast<XXH3_state_t*>(state)); }

void xxh3_update(void* state, const void* data, size_t size) {
  XXH3_64bits_update(static_cast<XXH3_state_t*>(state), data, size);
}

uint64_t xxh3_digest(const void* state) {
  return XXH3_64bits_digest(static_cast<const XXH3_state_t*>(state));
}

}  // namespace iqdb::persist::avx2
