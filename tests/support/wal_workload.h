// The model behind the random write-ahead-log workloads of wal_crash_test.cc
// and wal_kill_test.cc: a deterministic random generator, the mutations a
// workload makes (inserts, removes, and the ones the index refuses), and the
// index content they lead to (State), checked like StreamMapIndex checks them;
// random batches of them, and the WriteBatch that makes them. Each test builds
// its own ops (and their mix) from these.
#ifndef IQDB_PERSIST_TESTS_SUPPORT_WAL_WORKLOAD_H_
#define IQDB_PERSIST_TESTS_SUPPORT_WAL_WORKLOAD_H_

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "iqdb/persist/error.h"
#include "iqdb/persist/write_batch.h"

namespace iqdb::persist::test {

// The dimension of the workloads' vectors.
inline constexpr std::size_t kDim = 4;

// The index content: id -> vector.
using State = std::map<std::uint64_t, std::vector<float>>;

// FNV-1a over ids and float bits: a content's fingerprint, which a child
// process reports so that its parent can check what it holds.
inline std::uint64_t state_digest(const State& state) {
  std::uint64_t hash = 0xcbf29ce484222325ull;
  const auto mix = [&hash](const void* data, std::size_t size) {
    const auto* bytes = static_cast<const unsigned char*>(data);
    for (std::size_t i = 0; i < size; ++i) hash = (hash ^ bytes[i]) * 0x100000001b3ull;
  };
  for (const auto& [id, vector] : state) {
    mix(&id, sizeof id);
    mix(vector.data(), vector.size() * sizeof(float));
  }
  return hash;
}

// SplitMix64: small, and the same sequence on every platform (and in the
// parent and the child of a forked test).
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  std::uint64_t below(std::uint64_t bound) { return next() % bound; }
  bool chance(int percent) { return below(100) < static_cast<std::uint64_t>(percent); }
  float unit() { return static_cast<float>(next() >> 40) / static_cast<float>(1 << 24) - 0.5f; }

 private:
  std::uint64_t state_;
};

struct Mutation {
  bool insert = true;
  std::uint64_t id = 0;
  std::vector<float> vector;  // Insert only; kDim floats, or fewer to be refused
};

// Applies `mutations` in order until the model index refuses one (checked like
// StreamMapIndex: dimension first, then presence); the ones before it stay.
inline std::optional<ErrorKind> apply_mutations(State& state,
                                                const std::vector<Mutation>& mutations) {
  for (const Mutation& m : mutations) {
    if (m.insert) {
      if (m.vector.size() != kDim) return ErrorKind::DimensionMismatch;
      if (!state.emplace(m.id, m.vector).second) return ErrorKind::DuplicateId;
    } else if (state.erase(m.id) == 0) {
      return ErrorKind::IdNotFound;
    }
  }
  return std::nullopt;
}

// An id not in `state`, small enough that removed ids come back.
inline std::uint64_t absent_id(Rng& rng, const State& state) {
  const std::uint64_t range = 2 * state.size() + 8;
  for (;;) {
    const std::uint64_t id = 1 + rng.below(range);
    if (!state.contains(id)) return id;
  }
}

// An id in `state`, which must not be empty.
inline std::uint64_t present_id(Rng& rng, const State& state) {
  auto it = state.begin();
  std::advance(it, static_cast<std::ptrdiff_t>(rng.below(state.size())));
  return it->first;
}

inline std::vector<float> random_vector(Rng& rng, std::size_t dim = kDim) {
  std::vector<float> vector(dim);
  for (float& v : vector) v = rng.unit();
  return vector;
}

inline Mutation insert_of(std::uint64_t id, std::vector<float> vector) {
  return {true, id, std::move(vector)};
}
inline Mutation remove_of(std::uint64_t id) { return {false, id, {}}; }

// A mutation the index refuses on `state`.
inline Mutation refused_mutation(Rng& rng, const State& state) {
  const auto pick = rng.below(3);
  if (pick == 0 && !state.empty()) return insert_of(present_id(rng, state), random_vector(rng));
  if (pick == 1) return insert_of(absent_id(rng, state), random_vector(rng, kDim - 1));
  return remove_of(absent_id(rng, state));
}

// 2..5 random mutations for one batch on `state`: each refused with a 15%
// chance (on the content the ones before it leave), the others inserts (60%)
// or removes. With `favour_removes`, the others remove while there is an id to.
inline std::vector<Mutation> random_batch(Rng& rng, const State& state,
                                          bool favour_removes = false) {
  std::vector<Mutation> mutations;
  State scratch = state;
  const auto n = 2 + rng.below(4);
  for (std::uint64_t i = 0; i < n; ++i) {
    Mutation m;
    if (rng.chance(15)) {
      m = refused_mutation(rng, scratch);
    } else if (scratch.empty() || (!favour_removes && rng.chance(60))) {
      m = insert_of(absent_id(rng, scratch), random_vector(rng));
    } else {
      m = remove_of(present_id(rng, scratch));
    }
    (void)apply_mutations(scratch, {m});
    mutations.push_back(std::move(m));
  }
  return mutations;
}

// The WriteBatch that makes `mutations`, in order.
inline WriteBatch batch_of(const std::vector<Mutation>& mutations) {
  WriteBatch batch;
  for (const Mutation& m : mutations) {
    if (m.insert) {
      batch.insert(m.id, m.vector);
    } else {
      batch.remove(m.id);
    }
  }
  return batch;
}

}  // namespace iqdb::persist::test

#endif  // IQDB_PERSIST_TESTS_SUPPORT_WAL_WORKLOAD_H_
