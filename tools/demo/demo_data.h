// The demo's data set: `count` pseudo-random unit vectors of dimension `dim`.
// Vector i has id i and depends only on (seed, i), so any vector can be
// regenerated without the index: the demo checks what it loads against data
// that never went through the file.
//
// Unit length makes the query check meaningful for every metric: a stored
// vector is its own nearest neighbour under cosine, euclidean, manhattan and
// hamming distance, and under dot product among unit vectors.
#ifndef IQDB_PERSIST_TOOLS_DEMO_DEMO_DATA_H_
#define IQDB_PERSIST_TOOLS_DEMO_DEMO_DATA_H_

#include <cstddef>
#include <cstdint>
#include <span>

#include "flat_index.h"
#include "iqdb/persist/error.h"
#include "iqdb/types.h"

namespace iqdb::tools {

struct DemoData {
  std::uint64_t count = 0;
  std::size_t dim = 0;
  std::uint64_t seed = 0;

  std::uint64_t vector_bytes() const { return count * dim * sizeof(float); }
};

// Writes vector `i` of `data` into `out`. Precondition: out.size() == data.dim.
void fill_vector(const DemoData& data, std::uint64_t i, std::span<float> out);

// A FlatIndex holding every vector of `data`, showing progress on a terminal.
// Errors: those of FlatIndex::insert (none are expected).
[[nodiscard]] persist::Result<examples::FlatIndex> build_index(const DemoData& data,
                                                               DistanceMetric metric);

}  // namespace iqdb::tools

#endif  // IQDB_PERSIST_TOOLS_DEMO_DEMO_DATA_H_
