// Compressed-section benchmarks and their floors (benchmarks/README.md,
// "Compressed sections"). The data is one section of ascending u64 ids with
// random gaps of 1 to 16, as an index's id array looks after removals: one
// per vector (compression_bench_ids(): 8 MB at the default scale), cut by the
// library into 1 MiB chunks. LZ4 halves it and zstd level 1 shrinks it about
// 7x, so it stays compressed under the default compression_max_ratio (the
// setup checks that every chunk is). It is held by IdsIndex, a mock defined
// here whose load keeps a view of the decoded section (no copy), so that a
// load or a save costs the section and nothing else.
//
// Each floor does the codec's work alone, on one thread unless /threads:T says
// otherwise, on the same chunks as its subject, into memory allocated and
// touched before the timed loop: LZ4_decompress_safe of the very chunks the
// snapshot holds (read through its public chunk table), ZSTD_compressCCtx of
// the same pieces of the index's ids at the same level (the setup checks that
// the result is byte for byte the library's). Each pair does one section per
// iteration; items_per_second is ids per second and bytes_per_second is the
// section's uncompressed bytes per second.
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <isa-l/crc.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#ifdef IQDB_PERSIST_WITH_LZ4
#include <lz4.h>
#endif
#ifdef IQDB_PERSIST_WITH_ZSTD
#include <zstd.h>
#endif

#include "benchmarks.h"
#include "iqdb/persist/persisted_index.h"

namespace iqdb::bench {
namespace {

using persist::Compression;
using persist::FsyncPolicy;
using persist::PersistConfig;
using persist::PersistedIndex;
using persist::SectionCompression;
using persist::SectionInfo;

// Every file these benchmarks create starts with this; remove_compression_files() deletes them.
constexpr std::string_view kCompressionPrefix = "compression-";
constexpr std::string_view kIdsSection = "ids";
constexpr int kZstdLevel = 1;

// ---------------------------------------------------------------------------
// The mock index: an array of u64 ids in one section, "ids". Saved from
// memory it owns; loaded as a view of the section, kept alive by the
// section's keep_alive() handle.
class IdsIndex {
 public:
  static constexpr std::string_view kIndexType = "bench-ids";

  explicit IdsIndex(std::vector<std::uint64_t> ids) {
    auto owned = std::make_shared<const std::vector<std::uint64_t>>(std::move(ids));
    ids_ = *owned;
    keep_alive_ = std::move(owned);
  }
  IdsIndex(std::span<const std::uint64_t> ids, std::shared_ptr<const void> keep_alive)
      : ids_(ids), keep_alive_(std::move(keep_alive)) {}

  // The Index concept. The benchmarks only save and load it.
  IndexResult<void> insert(const VectorId&, std::span<const float>, const Metadata&) {
    return IndexError{IndexErrc::InvalidArgument, "bench-ids is read-only"};
  }
  IndexResult<void> remove(const VectorId&) {
    return IndexError{IndexErrc::InvalidArgument, "bench-ids is read-only"};
  }
  std::size_t size() const { return ids_.size(); }
  std::size_t dim() const { return 1; }
  DistanceMetric metric() const { return DistanceMetric::Cosine; }

  std::span<const std::uint64_t> ids() const { return ids_; }

  persist::Result<void> save_sections(persist::SectionWriter& out) const {
    return out.add_array<std::uint64_t>(kIdsSection, ids_);
  }
  static persist::Result<IdsIndex> load_sections(const persist::SnapshotView& snapshot) {
    IQDB_TRY_ASSIGN(auto section, snapshot.section(kIdsSection));
    IQDB_TRY_ASSIGN(auto ids, section.as_span<std::uint64_t>(snapshot.header().n_vectors));
    return IdsIndex(ids, section.keep_alive());
  }

 private:
  std::span<const std::uint64_t> ids_;
  std::shared_ptr<const void> keep_alive_;
};
static_assert(persist::Persistable<IdsIndex>);

using IdsDb = PersistedIndex<IdsIndex>;

// What the registered benchmarks share; set once by register_compression_benchmarks().
struct CompressionSetup {
  std::filesystem::path dir;
  std::uint64_t ids = 0;
};
CompressionSetup g_setup;

std::filesystem::path compression_path(std::string_view name) {
  return g_setup.dir / fmt::format("{}{}-{}.iqdb", kCompressionPrefix, name, g_setup.ids);
}

// The ids: g_setup.ids ascending values with gaps of 1 to 16 (SplitMix64, the
// same in every run).
std::vector<std::uint64_t> sorted_ids() {
  std::vector<std::uint64_t> ids(g_setup.ids);
  std::uint64_t state = 42;
  std::uint64_t id = 0;
  for (std::uint64_t& value : ids) {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
    z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
    id += 1 + ((z ^ (z >> 31)) & 15);
    value = id;
  }
  return ids;
}

// The ids section of the snapshot at `path`, with its chunk table; an error
// unless `compression` encoded every one of its chunks (none stored raw).
persist::Result<SectionInfo> compressed_ids_section(const std::filesystem::path& path,
                                                    SectionCompression compression) {
  IQDB_TRY_ASSIGN(auto header, persist::read_file_header(path));
  const SectionInfo* section = header.find_section(kIdsSection);
  bool compressed = section != nullptr && section->compression == compression;
  for (std::size_t i = 0; compressed && i < section->chunks.size(); ++i) {
    compressed = section->chunks[i].stored_length < section->chunk_logical_length(i);
  }
  if (!compressed) {
    return persist::fail(persist::ErrorKind::InvalidPayload,
                         fmt::format("{}: the ids are not {}-compressed in every chunk",
                                     path.string(), persist::to_string(compression)));
  }
  return *section;
}

// Ids per second, the section's uncompressed bytes per second, and how much of
// them the file stores.
void set_counters(benchmark::State& state, const SectionInfo& section) {
  const auto ids = static_cast<std::int64_t>(g_setup.ids);
  state.SetItemsProcessed(state.iterations() * ids);
  state.SetBytesProcessed(state.iterations() * ids *
                          static_cast<std::int64_t>(sizeof(std::uint64_t)));
  state.counters["stored_fraction"] =
      static_cast<double>(section.stored_length) / static_cast<double>(section.logical_length);
}

// ---------------------------------------------------------------------------
// Load: a snapshot whose ids section is LZ4-compressed, written once
// (FsyncPolicy::never(); the page cache is hot) and loaded in every iteration.

struct Lz4Snapshot {
  PersistConfig config;
  SectionInfo section;  // the ids section, with its chunk table
  std::string error;
};

const Lz4Snapshot& lz4_snapshot() {
  static const Lz4Snapshot snapshot = [] {
    Lz4Snapshot written;
    written.config = PersistConfig(compression_path("lz4"));
    written.config.compression = Compression::lz4();
    written.config.fsync_policy = FsyncPolicy::never();
    auto db = IdsDb::open_with(IdsIndex(sorted_ids()), written.config);
    auto saved = db ? db.value().save() : persist::Result<void>(db.error());
    auto section = saved ? compressed_ids_section(written.config.path, SectionCompression::Lz4)
                         : persist::Result<SectionInfo>(saved.error());
    if (section) {
      written.section = std::move(section).value();
    } else {
      written.error = section.error().to_string();
    }
    return written;
  }();
  return snapshot;
}

void BM_LoadLz4(benchmark::State& state) {
  const Lz4Snapshot& snapshot = lz4_snapshot();
  if (!snapshot.error.empty()) {
    state.SkipWithError(snapshot.error.c_str());
    return;
  }
  // VerifyMode::Eager, the default: every chunk's CRC is checked before it is
  // decoded, then the rest of the file is verified as for any load.
  PersistConfig config = snapshot.config;
  config.verify_threads = static_cast<unsigned>(state.range(0));
  for (auto _ : state) {
    auto loaded = IdsDb::load(config);
    if (!loaded) {
      state.SkipWithError(loaded.error().to_string().c_str());
      break;
    }
    benchmark::DoNotOptimize(loaded.value().index().ids().data());
  }
  set_counters(state, snapshot.section);
}

#ifdef IQDB_PERSIST_WITH_LZ4
// One compressed chunk and where it decodes to.
struct Lz4Chunk {
  std::span<const std::byte> stored;
  std::span<std::byte> out;
};

// Decodes chunks first, first + step, ...; false if one does not decode to its length.
bool decode_lz4_chunks(const std::vector<Lz4Chunk>& chunks, std::size_t first, std::size_t step) {
  for (std::size_t i = first; i < chunks.size(); i += step) {
    const Lz4Chunk& chunk = chunks[i];
    const int size = LZ4_decompress_safe(reinterpret_cast<const char*>(chunk.stored.data()),
                                         reinterpret_cast<char*>(chunk.out.data()),
                                         static_cast<int>(chunk.stored.size()),
                                         static_cast<int>(chunk.out.size()));
    if (size != static_cast<int>(chunk.out.size())) return false;
  }
  return true;
}

// The load floor: the snapshot's LZ4 chunks, read into memory before the
// timed loop, decoded by `threads` threads (chunk i by thread i mod threads)
// into a buffer that the untimed first decode has touched.
void BM_Lz4Floor(benchmark::State& state) {
  const Lz4Snapshot& snapshot = lz4_snapshot();
  if (!snapshot.error.empty()) {
    state.SkipWithError(snapshot.error.c_str());
    return;
  }
  const SectionInfo& section = snapshot.section;
  std::vector<std::byte> stored(section.stored_length);
  std::ifstream file(snapshot.config.path, std::ios::binary);
  file.seekg(static_cast<std::streamoff>(section.offset));
  file.read(reinterpret_cast<char*>(stored.data()), static_cast<std::streamsize>(stored.size()));
  if (!file) {
    state.SkipWithError("cannot read the compressed section");
    return;
  }
  std::vector<std::byte> decoded(section.logical_length);
  std::vector<Lz4Chunk> chunks;
  std::uint64_t stored_at = 0;
  for (std::size_t i = 0; i < section.chunks.size(); ++i) {
    const std::uint64_t length = section.chunks[i].stored_length;
    chunks.push_back(
        {std::span(stored).subspan(stored_at, length),
         std::span(decoded).subspan(i * section.chunk_size, section.chunk_logical_length(i))});
    stored_at += length;
  }
  const std::vector<std::uint64_t> expected = sorted_ids();
  if (!decode_lz4_chunks(chunks, 0, 1) ||
      std::memcmp(decoded.data(), expected.data(), decoded.size()) != 0) {
    state.SkipWithError("the floor does not decode the section to the ids");
    return;
  }
  const auto threads = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) {
    std::vector<std::thread> helpers;
    std::vector<char> ok(threads);  // not vector<bool>: each thread writes its own element
    for (std::size_t t = 1; t < threads; ++t) {
      helpers.emplace_back([&, t] { ok[t] = decode_lz4_chunks(chunks, t, threads); });
    }
    ok[0] = decode_lz4_chunks(chunks, 0, threads);
    for (std::thread& helper : helpers) helper.join();
    if (std::count(ok.begin(), ok.end(), 0) != 0) {
      state.SkipWithError("LZ4_decompress_safe failed");
      break;
    }
    benchmark::DoNotOptimize(decoded.data());
  }
  set_counters(state, section);
}
#endif  // IQDB_PERSIST_WITH_LZ4

// ---------------------------------------------------------------------------
// Save: an owned IdsIndex saved with zstd level 1 under FsyncPolicy::never(),
// so that the pair compares compression, not the disk. Its first save is
// untimed: it creates the target, so every timed save replaces a snapshot,
// and it gives the floor the library's chunk table to check its output against.

struct ZstdSave {
  std::unique_ptr<IdsDb> db;
  SectionInfo section;  // the ids section of the first save
  std::string error;
};

ZstdSave& zstd_save() {
  static ZstdSave data = [] {
    ZstdSave created;
    PersistConfig config(compression_path("zstd"));
    config.compression = Compression::zstd(kZstdLevel);
    config.fsync_policy = FsyncPolicy::never();
    auto db = IdsDb::open_with(IdsIndex(sorted_ids()), config);
    auto saved = db ? db.value().save() : persist::Result<void>(db.error());
    auto section = saved ? compressed_ids_section(config.path, SectionCompression::Zstd)
                         : persist::Result<SectionInfo>(saved.error());
    if (!section) {
      created.error = section.error().to_string();
      return created;
    }
    created.db = std::make_unique<IdsDb>(std::move(db).value());
    created.section = std::move(section).value();
    return created;
  }();
  return data;
}

void BM_SaveZstd(benchmark::State& state) {
  ZstdSave& data = zstd_save();
  if (!data.db) {
    state.SkipWithError(data.error.c_str());
    return;
  }
  for (auto _ : state) {
    if (auto saved = data.db->save(); !saved) {
      state.SkipWithError(saved.error().to_string().c_str());
      break;
    }
  }
  set_counters(state, data.section);
}

#ifdef IQDB_PERSIST_WITH_ZSTD
// The save floor: ZSTD_compressCCtx at the library's level, one context for
// the whole run, of the index's own ids in the library's chunks, each into its
// ZSTD_compressBound() share of one buffer that the untimed first pass has
// touched.
void BM_ZstdFloor(benchmark::State& state) {
  const ZstdSave& data = zstd_save();
  if (!data.db) {
    state.SkipWithError(data.error.c_str());
    return;
  }
  const SectionInfo& section = data.section;
  const auto ids = std::as_bytes(data.db->index().ids());
  std::vector<std::span<const std::byte>> pieces;
  std::size_t bound = 0;
  for (std::uint64_t start = 0; start < ids.size(); start += section.chunk_size) {
    pieces.push_back(ids.subspan(start, std::min(section.chunk_size, ids.size() - start)));
    bound += ZSTD_compressBound(pieces.back().size());
  }
  std::vector<std::byte> out(bound);
  const std::unique_ptr<ZSTD_CCtx, decltype(&ZSTD_freeCCtx)> context(ZSTD_createCCtx(),
                                                                     ZSTD_freeCCtx);
  // Compresses every piece into `out`; the stored length of each, or nothing on failure.
  const auto compress = [&]() -> std::vector<std::size_t> {
    std::vector<std::size_t> sizes;
    std::byte* at = out.data();
    for (const auto piece : pieces) {
      const std::size_t size =
          ZSTD_compressCCtx(context.get(), at, ZSTD_compressBound(piece.size()), piece.data(),
                            piece.size(), kZstdLevel);
      if (ZSTD_isError(size)) return {};
      sizes.push_back(size);
      at += ZSTD_compressBound(piece.size());
    }
    return sizes;
  };
  const std::vector<std::size_t> sizes = context ? compress() : std::vector<std::size_t>();
  bool same = sizes.size() == section.chunks.size();
  const std::byte* at = out.data();
  for (std::size_t i = 0; same && i < sizes.size(); ++i) {
    same = sizes[i] == section.chunks[i].stored_length &&
           crc32_gzip_refl(0, reinterpret_cast<const unsigned char*>(at), sizes[i]) ==
               section.chunks[i].crc32;
    at += ZSTD_compressBound(pieces[i].size());
  }
  if (!same) {
    state.SkipWithError("the floor's zstd chunks are not the library's");
    return;
  }
  for (auto _ : state) {
    if (compress().size() != pieces.size()) {
      state.SkipWithError("ZSTD_compressCCtx failed");
      break;
    }
  }
  set_counters(state, section);
}
#endif  // IQDB_PERSIST_WITH_ZSTD

}  // namespace

std::uint64_t compression_bench_ids(std::uint64_t vectors) {
  return std::min<std::uint64_t>(vectors, std::uint64_t{1} << 22);
}

void register_compression_benchmarks(const std::filesystem::path& dir, std::uint64_t vectors) {
  g_setup.dir = dir;
  g_setup.ids = compression_bench_ids(vectors);
  for (const std::int64_t threads : {1, 2}) {
#ifdef IQDB_PERSIST_WITH_LZ4
    benchmark::RegisterBenchmark("BM_Lz4Floor", BM_Lz4Floor)
        ->Arg(threads)
        ->ArgName("threads")
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
#endif
    benchmark::RegisterBenchmark("BM_LoadLz4", BM_LoadLz4)
        ->Arg(threads)
        ->ArgName("threads")
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  }
#ifdef IQDB_PERSIST_WITH_ZSTD
  benchmark::RegisterBenchmark("BM_ZstdFloor", BM_ZstdFloor)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
#endif
  benchmark::RegisterBenchmark("BM_SaveZstd", BM_SaveZstd)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
}

void remove_compression_files(const std::filesystem::path& dir) {
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
    if (entry.path().filename().string().starts_with(kCompressionPrefix)) {
      std::filesystem::remove(entry.path(), error);
    }
  }
}

}  // namespace iqdb::bench
