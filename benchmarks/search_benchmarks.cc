// The search pair: one FlatIndex::search(query, 10) over a zero-copy loaded
// snapshot, and its floor, a plain L2 scan of the same mapped vectors that
// keeps only the best distance (no ids, no top k, one metric). Both read every
// vector once per iteration from the hot mapping; the search may cost more
// only for what a real top-k search needs on top of the arithmetic.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <limits>
#include <memory>
#include <random>
#include <span>
#include <utility>
#include <vector>

#include "benchmarks.h"
#include "iqdb/persist/persisted_index.h"

namespace iqdb::bench {
namespace {

using examples::FlatIndex;
using persist::PersistConfig;
using persist::PersistedIndex;

constexpr std::size_t kNeighbours = 10;

std::vector<float> make_query(std::size_t dim) {
  std::mt19937 random(2024);
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  std::vector<float> query(dim);
  for (float& component : query) component = value(random);
  return query;
}

// The smallest squared L2 distance from `query` to a row of `vectors`, as a
// competent engineer writes it: eight independent accumulators that the
// compiler turns into vector instructions.
float best_l2(std::span<const float> vectors, std::span<const float> query) {
  const std::size_t dim = query.size();
  const float* q = query.data();
  float best = std::numeric_limits<float>::infinity();
  for (const float* row = vectors.data(); row != vectors.data() + vectors.size(); row += dim) {
    float acc[8] = {};
    std::size_t i = 0;
    for (; i + 8 <= dim; i += 8) {
      for (std::size_t lane = 0; lane < 8; ++lane) {
        const float d = q[i + lane] - row[i + lane];
        acc[lane] += d * d;
      }
    }
    float sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; i < dim; ++i) sum += (q[i] - row[i]) * (q[i] - row[i]);
    best = std::min(best, sum);
  }
  return best;
}

// The snapshot loaded the zero-copy way (Skip: no check, nothing read).
const PersistedIndex<FlatIndex>* load_once(benchmark::State& state, const SnapshotFile& file) {
  static std::unique_ptr<PersistedIndex<FlatIndex>> loaded;
  if (loaded == nullptr) {
    PersistConfig config(file.path);
    config.verify = persist::VerifyMode::Skip;
    auto db = PersistedIndex<FlatIndex>::load(config);
    if (!db) {
      state.SkipWithError(db.error().to_string().c_str());
      return nullptr;
    }
    loaded = std::make_unique<PersistedIndex<FlatIndex>>(std::move(db).value());
  }
  return loaded.get();
}

void set_bytes(benchmark::State& state, const FlatIndex& index) {
  state.SetBytesProcessed(state.iterations() *
                          static_cast<std::int64_t>(index.base_vectors().size_bytes()));
}

void BM_ScanFloor(benchmark::State& state, const SnapshotFile* file) {
  const auto* db = load_once(state, *file);
  if (db == nullptr) return;
  const FlatIndex& index = db->index();
  const std::vector<float> query = make_query(index.dim());
  for (auto _ : state) benchmark::DoNotOptimize(best_l2(index.base_vectors(), query));
  set_bytes(state, index);
}

void BM_FlatSearch(benchmark::State& state, const SnapshotFile* file) {
  const auto* db = load_once(state, *file);
  if (db == nullptr) return;
  const FlatIndex& index = db->index();
  const std::vector<float> query = make_query(index.dim());
  for (auto _ : state) benchmark::DoNotOptimize(index.search(query, kNeighbours));
  set_bytes(state, index);
}

}  // namespace

void register_search_benchmarks(const SnapshotFile& file) {
  const auto vectors = static_cast<std::int64_t>(file.vectors);
  benchmark::RegisterBenchmark("BM_ScanFloor", BM_ScanFloor, &file)
      ->Arg(vectors)
      ->ArgName("vectors")
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("BM_FlatSearch", BM_FlatSearch, &file)
      ->Arg(vectors)
      ->ArgName("vectors")
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
}

}  // namespace iqdb::bench
