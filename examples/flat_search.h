// The inner loops of FlatIndex::search: one distance kernel per metric and a
// bounded top-k. Private to the example index (flat_index.cc includes it).
//
// Kernels use GCC/clang vector extensions of four floats, which any x86-64
// (SSE2) or AArch64 (NEON) target has without flags, with four independent
// accumulators: a scalar loop with one accumulator cannot be vectorized
// without -ffast-math (float addition does not reassociate), and runs at a
// fraction of the memory bandwidth a scan is bounded by. Sums are therefore
// taken in another order than a scalar loop's: distances may differ from one
// in the last bits, never in which metric they compute.
#ifndef IQDB_EXAMPLES_FLAT_SEARCH_H_
#define IQDB_EXAMPLES_FLAT_SEARCH_H_

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "flat_index.h"

namespace iqdb::examples::flat_search {

using Floats = float __attribute__((vector_size(16)));
using Ints = std::int32_t __attribute__((vector_size(16)));
constexpr std::size_t kLanes = 4;

inline Floats load(const float* p) {
  Floats v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline float lane_sum(Floats v) { return (v[0] + v[1]) + (v[2] + v[3]); }

// Sums term(q, r) over the components, term taking and returning Floats.
// `scalar` is the same term for one component (the tail of dim % 4).
template <class Term, class ScalarTerm>
float sum_terms(const float* q, const float* r, std::size_t dim, Term term, ScalarTerm scalar) {
  Floats a0{}, a1{}, a2{}, a3{};
  std::size_t i = 0;
  for (; i + 4 * kLanes <= dim; i += 4 * kLanes) {
    a0 += term(load(q + i), load(r + i));
    a1 += term(load(q + i + kLanes), load(r + i + kLanes));
    a2 += term(load(q + i + 2 * kLanes), load(r + i + 2 * kLanes));
    a3 += term(load(q + i + 3 * kLanes), load(r + i + 3 * kLanes));
  }
  for (; i + kLanes <= dim; i += kLanes) a0 += term(load(q + i), load(r + i));
  float sum = lane_sum((a0 + a1) + (a2 + a3));
  for (; i < dim; ++i) sum += scalar(q[i], r[i]);
  return sum;
}

// Each kernel holds the query; operator() is the distance to one row.
struct Euclidean {
  const float* query;
  std::size_t dim;
  float operator()(const float* row) const {
    return sum_terms(
        query, row, dim,
        [](Floats q, Floats r) {
          const Floats d = q - r;
          return d * d;
        },
        [](float q, float r) { return (q - r) * (q - r); });
  }
};

struct DotProduct {
  const float* query;
  std::size_t dim;
  float operator()(const float* row) const {
    return -sum_terms(
        query, row, dim, [](Floats q, Floats r) { return q * r; },
        [](float q, float r) { return q * r; });
  }
};

struct Manhattan {
  const float* query;
  std::size_t dim;
  float operator()(const float* row) const {
    return sum_terms(
        query, row, dim,
        [](Floats q, Floats r) {
          const Ints no_sign = {0x7fffffff, 0x7fffffff, 0x7fffffff, 0x7fffffff};
          return reinterpret_cast<Floats>(reinterpret_cast<Ints>(q - r) & no_sign);
        },
        [](float q, float r) { return std::abs(q - r); });
  }
};

// Counts of 1.0f are exact: dim is at most 2^24.
struct Hamming {
  const float* query;
  std::size_t dim;
  float operator()(const float* row) const {
    return sum_terms(
        query, row, dim,
        [](Floats q, Floats r) {
          const Floats zero{};
          const Floats one = {1.0f, 1.0f, 1.0f, 1.0f};
          const Ints differ = (q > zero) ^ (r > zero);
          return reinterpret_cast<Floats>(differ & reinterpret_cast<Ints>(one));
        },
        [](float q, float r) { return (q > 0) != (r > 0) ? 1.0f : 0.0f; });
  }
};

// 1 - cos; the query's norm is taken once.
struct Cosine {
  const float* query;
  std::size_t dim;
  float query_norm;  // sqrt of the query's squared norm

  Cosine(const float* q, std::size_t d)
      : query(q),
        dim(d),
        query_norm(std::sqrt(sum_terms(
            q, q, d, [](Floats a, Floats b) { return a * b; },
            [](float a, float b) { return a * b; }))) {}

  float operator()(const float* row) const {
    Floats dot0{}, dot1{}, norm0{}, norm1{};
    std::size_t i = 0;
    for (; i + 2 * kLanes <= dim; i += 2 * kLanes) {
      const Floats r0 = load(row + i);
      const Floats r1 = load(row + i + kLanes);
      dot0 += load(query + i) * r0;
      dot1 += load(query + i + kLanes) * r1;
      norm0 += r0 * r0;
      norm1 += r1 * r1;
    }
    float dot = lane_sum(dot0 + dot1);
    float norm = lane_sum(norm0 + norm1);
    for (; i < dim; ++i) {
      dot += query[i] * row[i];
      norm += row[i] * row[i];
    }
    const float denominator = query_norm * std::sqrt(norm);
    return denominator == 0 ? 1.0f : 1.0f - dot / denominator;
  }
};

// The k nearest hits offered so far: a max-heap of at most k entries whose
// top is the farthest kept. Ties in distance go to the smaller id.
class TopK {
 public:
  TopK(std::size_t k, std::size_t rows) : k_(k) { hits_.reserve(std::min(k, rows)); }

  // A distance above this cannot enter; one equal to it may (by its id).
  float bound() const {
    return hits_.size() < k_ ? std::numeric_limits<float>::infinity() : hits_.front().distance;
  }

  void offer(std::uint64_t id, float distance) {
    const SearchHit hit{id, distance};
    if (hits_.size() < k_) {
      hits_.push_back(hit);
      std::push_heap(hits_.begin(), hits_.end(), nearer);
    } else if (nearer(hit, hits_.front())) {
      std::pop_heap(hits_.begin(), hits_.end(), nearer);
      hits_.back() = hit;
      std::push_heap(hits_.begin(), hits_.end(), nearer);
    }
  }

  // The hits, nearest first.
  std::vector<SearchHit> take() && {
    std::sort_heap(hits_.begin(), hits_.end(), nearer);
    return std::move(hits_);
  }

 private:
  static bool nearer(const SearchHit& a, const SearchHit& b) {
    return a.distance < b.distance || (a.distance == b.distance && a.id < b.id);
  }

  std::size_t k_;
  std::vector<SearchHit> hits_;
};

}  // namespace iqdb::examples::flat_search

#endif  // IQDB_EXAMPLES_FLAT_SEARCH_H_
