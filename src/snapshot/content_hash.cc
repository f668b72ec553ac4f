#include "snapshot/content_hash.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <string_view>
#include <vector>

#ifdef IQDB_PERSIST_AVX2_XXH3
#include "snapshot/content_hash_avx2.h"
#endif
#include "util/little_endian.h"

namespace iqdb::persist {
namespace {

// The XXH3 build in use: AVX2 when this build has it and the CPU does too.
struct Xxh3Kernels {
  void (*reset)(void* state);
  void (*update)(void* state, const void* data, std::size_t size);
  std::uint64_t (*digest)(const void* state);
};

const Xxh3Kernels& kernels() {
  static const Xxh3Kernels chosen = [] {
#ifdef IQDB_PERSIST_AVX2_XXH3
    if (__builtin_cpu_supports("avx2")) {
      return Xxh3Kernels{avx2::xxh3_reset, avx2::xxh3_update, avx2::xxh3_digest};
    }
#endif
    return Xxh3Kernels{[](void* state) { XXH3_64bits_reset(static_cast<XXH3_state_t*>(state)); },
                       [](void* state, const void* data, std::size_t size) {
                         XXH3_64bits_update(static_cast<XXH3_state_t*>(state), data, size);
                       },
                       [](const void* state) {
                         return static_cast<std::uint64_t>(
                             XXH3_64bits_digest(static_cast<const XXH3_state_t*>(state)));
                       }};
  }();
  return chosen;
}

void put_u64(std::vector<std::byte>& out, std::uint64_t value, std::size_t width) {
  const std::size_t at = out.size();
  out.resize(at + width);
  store_le(out, at, value, width);
}

void put_string(std::vector<std::byte>& out, std::string_view text) {
  put_u64(out, text.size(), 4);
  const auto* bytes = reinterpret_cast<const std::byte*>(text.data());
  out.insert(out.end(), bytes, bytes + text.size());
}

}  // namespace

struct ContentHasher::State {
  XXH3_state_t xxh3;
};

ContentHasher::ContentHasher() : state_(new State) { kernels().reset(&state_->xxh3); }

ContentHasher::~ContentHasher() = default;

void ContentHasher::update(std::span<const std::byte> bytes) {
  if (!bytes.empty()) kernels().update(&state_->xxh3, bytes.data(), bytes.size());
}

std::uint64_t ContentHasher::digest() const { return kernels().digest(&state_->xxh3); }

std::uint64_t content_hash(std::span<const std::byte> bytes) {
  ContentHasher hasher;
  hasher.update(bytes);
  return hasher.digest();
}

std::uint64_t snapshot_content_hash(const FileHeader& header) {
  std::vector<std::byte> facts;
  put_string(facts, header.index_type);
  put_u64(facts, header.dim, 4);
  put_u64(facts, static_cast<std::uint8_t>(header.metric), 1);
  put_u64(facts, header.n_vectors, 8);
  for (const SectionInfo& section : header.sections) {
    put_string(facts, section.name);
    put_u64(facts, section.logical_length, 8);
    put_u64(facts, section.xxh3, 8);
  }
  return content_hash(facts);
}

}  // namespace iqdb::persist
