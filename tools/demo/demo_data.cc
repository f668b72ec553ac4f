#include "demo/demo_data.h"

#include <cmath>
#include <vector>

#include "output/progress.h"

namespace iqdb::tools {
namespace {

// SplitMix64 (Steele, Lea, Flood 2014): fast, and good enough for test data.
std::uint64_t split_mix(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace

void fill_vector(const DemoData& data, std::uint64_t i, std::span<float> out) {
  std::uint64_t state = data.seed ^ (i * 0xd1b54a32d192ed03ull);
  split_mix(state);  // decorrelate neighbouring i
  double norm = 0;
  for (float& component : out) {
    // The top 24 bits as a float in [-1, 1).
    component = static_cast<float>(split_mix(state) >> 40) * (2.0f / 16777216.0f) - 1.0f;
    norm += double{component} * component;
  }
  if (norm == 0) {
    out[0] = 1.0f;
    return;
  }
  const auto scale = static_cast<float>(1.0 / std::sqrt(norm));
  for (float& component : out) component *= scale;
}

persist::Result<examples::FlatIndex> build_index(const DemoData& data, DistanceMetric metric) {
  examples::FlatIndex index(data.dim, metric);
  index.reserve(static_cast<std::size_t>(data.count));
  ProgressLine progress("building");
  std::vector<float> vector(data.dim);
  const Metadata no_metadata;
  for (std::uint64_t i = 0; i < data.count; ++i) {
    fill_vector(data, i, vector);
    if (auto inserted = index.insert(i, vector, no_metadata); !inserted) {
      return boost::outcome_v2::failure(persist::PersistError::from_index(inserted.error()));
    }
    if (i % 4096 == 0) progress.update(i * data.dim * sizeof(float), data.vector_bytes());
  }
  return index;
}

}  // namespace iqdb::tools
