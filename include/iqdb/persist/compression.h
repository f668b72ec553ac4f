// Compression: the user's choice of codec (and level) for snapshot sections,
// as PersistConfig::compression and RewriteOptions::compression take it.
//
// Sections are cut into chunks (docs/FORMAT.md, "Chunks"), each encoded on its
// own, so that a load decodes them in parallel; the CRC covers the stored
// (compressed) bytes, so damage is caught before decoding. A compressed
// section loads into anonymous memory (a copy); a raw one is used straight
// from the file's mapping. When a snapshot is closed, the process keeps up to
// 64 MiB of that decoded memory (MADV_FREE: the kernel may reclaim it) for the
// next load to reuse. Which sections are compressed is decided per save by
// compressed_sections and compression_max_ratio (PersistConfig, or
// RewriteOptions for rewrite_snapshot()).
//
// On disk, a section records its codec as a SectionCompression tag
// (file_header.h); a zstd level is not recorded, since decoding needs none.
//
// Each codec exists only in builds configured with its CMake option
// (IQDB_PERSIST_WITH_ZSTD / IQDB_PERSIST_WITH_LZ4, on when the library is
// found): without it, a save asking for it and a load of a file that needs it
// fail with Unsupported, naming the option.
//
// A Compression is a plain constexpr value; available() is thread-safe.
#ifndef IQDB_PERSIST_COMPRESSION_H_
#define IQDB_PERSIST_COMPRESSION_H_

namespace iqdb::persist {

class Compression {
 public:
  enum class Kind { None, Zstd, Lz4 };

  // Every section stored raw: loads are zero-copy.
  static constexpr Compression none() { return Compression(Kind::None, 0); }
  // The better ratio, slower to encode as the level rises. Levels are zstd's
  // (1..19 in practice; PersistConfig::validate() refuses one the library
  // does not accept); 1 to 3 are cheap enough to write at save time.
  static constexpr Compression zstd(int level = 3) { return Compression(Kind::Zstd, level); }
  // The cheapest to decode: for sections a load must bring up quickly.
  static constexpr Compression lz4() { return Compression(Kind::Lz4, 0); }

  constexpr Kind kind() const { return kind_; }
  // Meaningful for Kind::Zstd only.
  constexpr int level() const { return level_; }
  // Whether this build has the codec (none() always).
  bool available() const;

  friend constexpr bool operator==(const Compression&, const Compression&) = default;

 private:
  constexpr Compression(Kind kind, int level) : kind_(kind), level_(level) {}
  Kind kind_;
  int level_;
};

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_COMPRESSION_H_
