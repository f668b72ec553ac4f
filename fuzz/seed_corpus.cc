// Writes small valid snapshots of the example flat index (with and without
// metadata, several metrics, raw and compressed) and of the tests'
// StreamMapIndex (stream persistence) into DIR, as seeds for the snapshot and
// header fuzzers, and with --chunks encoded chunks in
// chunk_decode_fuzz's input format (codec byte, 24-bit length, data):
//   iqdb_fuzz_seeds DIR
//   iqdb_fuzz_seeds --chunks DIR
#include <cstdio>
#include <string>
#include <vector>

#include "flat_index.h"
#include "iqdb/persist.h"
#include "snapshot/section_codec.h"
#include "support/mock_indexes.h"

using iqdb::examples::FlatIndex;
namespace persist = iqdb::persist;

namespace {

int write_chunk_seeds(const std::string& dir) {
  int written = 0;
  for (const auto codec : {persist::SectionCompression::Zstd, persist::SectionCompression::Lz4}) {
    auto encoder = persist::ChunkEncoder::create(codec, 1, "seed");
    if (!encoder) continue;
    for (const std::size_t length : {1000, 70000}) {
      std::vector<std::byte> chunk(length);
      for (std::size_t i = 0; i < length; ++i) chunk[i] = std::byte(i % 251 < 128 ? i % 7 : i);
      std::vector<std::byte> encoded;
      auto shrank = encoder.value()->encode(chunk, encoded);
      if (!shrank || !shrank.value()) continue;
      const std::uint8_t head[4] = {
          std::uint8_t(codec == persist::SectionCompression::Zstd ? 0 : 1), std::uint8_t(length),
          std::uint8_t(length >> 8), std::uint8_t(length >> 16)};
      const std::string path = dir + "/chunk-" + std::to_string(written++);
      std::FILE* file = std::fopen(path.c_str(), "wb");
      if (file == nullptr) return 1;
      std::fwrite(head, 1, sizeof head, file);
      std::fwrite(encoded.data(), 1, encoded.size(), file);
      std::fclose(file);
    }
  }
  std::printf("wrote %d chunk seeds to %s\n", written, dir.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "--chunks") return write_chunk_seeds(argv[2]);
  if (argc != 2) return std::fprintf(stderr, "usage: iqdb_fuzz_seeds [--chunks] DIR\n"), 2;
  const std::string dir = argv[1];
  int written = 0;
  for (const std::size_t count : {0, 1, 5}) {
    for (const auto metric : {iqdb::DistanceMetric::Cosine, iqdb::DistanceMetric::Hamming}) {
      FlatIndex index(4, metric);
      for (std::uint64_t id = 0; id < count; ++id) {
        const std::vector<float> vector = {float(id), 1, -1, 0.5f};
        iqdb::Metadata metadata;
        if (id % 2 == 1) metadata = {{"tag", std::string("odd")}, {"n", std::int64_t(id)}};
        if (!index.insert(id, vector, metadata)) return 1;
      }
      persist::PersistConfig config(dir + "/seed-" + std::to_string(written++) + ".iqdb");
      config.fsync_policy = persist::FsyncPolicy::never();
      auto db = persist::PersistedIndex<FlatIndex>::open_with(std::move(index), config);
      if (!db || !db.value().save()) return std::fprintf(stderr, "cannot write seeds\n"), 1;
    }
  }
  // Compressed sections (where the build has the codec): vectors that shrink.
  for (const auto compression : {persist::Compression::zstd(1), persist::Compression::lz4()}) {
    if (!compression.available()) continue;
    FlatIndex index(4, iqdb::DistanceMetric::Euclidean);
    for (std::uint64_t id = 0; id < 64; ++id) {
      const std::vector<float> vector = {float(id % 3), 1, 1, 0};
      if (!index.insert(id, vector, {})) return 1;
    }
    persist::PersistConfig config(dir + "/seed-" + std::to_string(written++) + ".iqdb");
    config.fsync_policy = persist::FsyncPolicy::never();
    config.compression = compression;
    config.compression_max_ratio = 1.0;
    auto db = persist::PersistedIndex<FlatIndex>::open_with(std::move(index), config);
    if (!db || !db.value().save()) return std::fprintf(stderr, "cannot write seeds\n"), 1;
  }
  for (const std::size_t count : {0, 3}) {
    persist::test::StreamMapIndex index(3, iqdb::DistanceMetric::DotProduct);
    for (std::uint64_t id = 0; id < count; ++id) {
      const std::vector<float> vector = {float(id), -2, 0.25f};
      if (!index.insert(id, vector, {})) return 1;
    }
    persist::PersistConfig config(dir + "/seed-" + std::to_string(written++) + ".iqdb");
    config.fsync_policy = persist::FsyncPolicy::never();
    auto db =
        persist::PersistedIndex<persist::test::StreamMapIndex>::open_with(std::move(index), config);
    if (!db || !db.value().save()) return std::fprintf(stderr, "cannot write seeds\n"), 1;
  }
  std::printf("wrote %d seeds to %s\n", written, dir.c_str());
  return 0;
}
