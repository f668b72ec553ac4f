#include "snapshot/section_codec.h"

#include <fmt/format.h>

#include <climits>
#include <cstring>

#ifdef IQDB_PERSIST_WITH_ZSTD
#include <zstd.h>
#endif
#ifdef IQDB_PERSIST_WITH_LZ4
#include <lz4.h>
#endif

#include "util/little_endian.h"

namespace iqdb::persist {
namespace {

#ifdef IQDB_PERSIST_WITH_ZSTD
constexpr bool kHaveZstd = true;
#else
constexpr bool kHaveZstd = false;
#endif
#ifdef IQDB_PERSIST_WITH_LZ4
constexpr bool kHaveLz4 = true;
#else
constexpr bool kHaveLz4 = false;
#endif

std::string_view cmake_option(SectionCompression compression) {
  return compression == SectionCompression::Zstd ? "IQDB_PERSIST_WITH_ZSTD"
                                                 : "IQDB_PERSIST_WITH_LZ4";
}

#if defined(IQDB_PERSIST_WITH_ZSTD) || defined(IQDB_PERSIST_WITH_LZ4)
PersistError corrupt_chunk(SectionCompression compression, std::string_view context,
                           std::string_view why) {
  return PersistError(ErrorKind::InvalidPayload, fmt::format("{}: {} data does not decode: {}",
                                                             context, to_string(compression), why));
}
#endif

#ifdef IQDB_PERSIST_WITH_ZSTD
// A zstd skippable frame (RFC 8878, 3.1.2): magic, u32 content length, content.
// Decoders skip it; the encoder appends one to keep a chunk above
// min_stored_length().
constexpr std::uint32_t kZstdSkippableMagic = 0x184D2A50;
constexpr std::size_t kZstdSkippableHeaderSize = 8;

class ZstdEncoder final : public ChunkEncoder {
 public:
  explicit ZstdEncoder(int level) : level_(level), context_(ZSTD_createCCtx()) {}
  ~ZstdEncoder() override { ZSTD_freeCCtx(context_); }
  ZstdEncoder(const ZstdEncoder&) = delete;
  ZstdEncoder& operator=(const ZstdEncoder&) = delete;

  Result<bool> encode(std::span<const std::byte> chunk, std::vector<std::byte>& out) override {
    if (context_ == nullptr) return fail(ErrorKind::Io, "zstd: cannot allocate a context");
    out.resize(ZSTD_compressBound(chunk.size()));
    const std::size_t size =
        ZSTD_compressCCtx(context_, out.data(), out.size(), chunk.data(), chunk.size(), level_);
    if (ZSTD_isError(size)) {
      return fail(ErrorKind::Io, fmt::format("zstd: {}", ZSTD_getErrorName(size)));
    }
    out.resize(size);
    if (size >= chunk.size()) return false;
    pad_to(out, min_stored_length(chunk.size()));
    return out.size() < chunk.size();
  }

 private:
  // Appends a skippable frame if `out` is shorter than `min_size`.
  static void pad_to(std::vector<std::byte>& out, std::uint64_t min_size) {
    if (out.size() >= min_size) return;
    const std::uint64_t content = min_size - out.size() > kZstdSkippableHeaderSize
                                      ? min_size - out.size() - kZstdSkippableHeaderSize
                                      : 0;
    const std::size_t frame = out.size();
    out.resize(frame + kZstdSkippableHeaderSize + content, std::byte{0});
    const std::span<std::byte> bytes(out);
    store_le(bytes, frame, kZstdSkippableMagic, 4);
    store_le(bytes, frame + 4, content, 4);
  }

  int level_;
  ZSTD_CCtx* context_;
};

Result<void> decode_zstd(std::span<const std::byte> stored, std::span<std::byte> out,
                         std::string_view context) {
  struct FreeContext {
    void operator()(ZSTD_DCtx* dctx) const { ZSTD_freeDCtx(dctx); }
  };
  thread_local const std::unique_ptr<ZSTD_DCtx, FreeContext> dctx(ZSTD_createDCtx());
  if (!dctx) return fail(ErrorKind::Io, "zstd: cannot allocate a context");
  const std::size_t size =
      ZSTD_decompressDCtx(dctx.get(), out.data(), out.size(), stored.data(), stored.size());
  if (ZSTD_isError(size)) {
    return corrupt_chunk(SectionCompression::Zstd, context, ZSTD_getErrorName(size));
  }
  if (size != out.size()) {
    return corrupt_chunk(SectionCompression::Zstd, context,
                         fmt::format("{} bytes decoded, expected {}", size, out.size()));
  }
  return success();
}
#endif

#ifdef IQDB_PERSIST_WITH_LZ4
class Lz4Encoder final : public ChunkEncoder {
 public:
  Result<bool> encode(std::span<const std::byte> chunk, std::vector<std::byte>& out) override {
    if (chunk.size() > LZ4_MAX_INPUT_SIZE) {
      return fail(ErrorKind::InvalidArgument,
                  fmt::format("lz4: a chunk of {} bytes is too large", chunk.size()));
    }
    const int input_size = static_cast<int>(chunk.size());
    out.resize(static_cast<std::size_t>(LZ4_compressBound(input_size)));
    const int size = LZ4_compress_default(reinterpret_cast<const char*>(chunk.data()),
                                          reinterpret_cast<char*>(out.data()), input_size,
                                          static_cast<int>(out.size()));
    if (size <= 0) return fail(ErrorKind::Io, "lz4: compression failed");
    out.resize(static_cast<std::size_t>(size));
    // LZ4 cannot be padded; its own limit (about 255x) is within the format's.
    return out.size() < chunk.size() && out.size() >= min_stored_length(chunk.size());
  }
};

Result<void> decode_lz4(std::span<const std::byte> stored, std::span<std::byte> out,
                        std::string_view context) {
  if (stored.size() > INT_MAX || out.size() > INT_MAX) {
    return corrupt_chunk(SectionCompression::Lz4, context, "chunk too large for LZ4");
  }
  const int size = LZ4_decompress_safe(
      reinterpret_cast<const char*>(stored.data()), reinterpret_cast<char*>(out.data()),
      static_cast<int>(stored.size()), static_cast<int>(out.size()));
  if (size < 0) return corrupt_chunk(SectionCompression::Lz4, context, "malformed block");
  if (static_cast<std::size_t>(size) != out.size()) {
    return corrupt_chunk(SectionCompression::Lz4, context,
                         fmt::format("{} bytes decoded, expected {}", size, out.size()));
  }
  return success();
}
#endif

}  // namespace

SectionCompression section_compression(const Compression& compression) {
  switch (compression.kind()) {
    case Compression::Kind::None: return SectionCompression::None;
    case Compression::Kind::Zstd: return SectionCompression::Zstd;
    case Compression::Kind::Lz4: return SectionCompression::Lz4;
  }
  return SectionCompression::None;
}

Result<void> check_zstd_level(int level, std::string_view context) {
#ifdef IQDB_PERSIST_WITH_ZSTD
  if (level >= ZSTD_minCLevel() && level <= ZSTD_maxCLevel()) return success();
  return fail(ErrorKind::InvalidConfig, fmt::format("{}: zstd level {} is outside {}..{}", context,
                                                    level, ZSTD_minCLevel(), ZSTD_maxCLevel()));
#else
  (void)level;
  return check_codec_available(SectionCompression::Zstd, context);
#endif
}

bool codec_available(SectionCompression compression) {
  switch (compression) {
    case SectionCompression::None: return true;
    case SectionCompression::Zstd: return kHaveZstd;
    case SectionCompression::Lz4: return kHaveLz4;
  }
  return false;
}

Result<void> check_codec_available(SectionCompression compression, std::string_view context) {
  if (codec_available(compression)) return success();
  return fail(ErrorKind::Unsupported,
              fmt::format("{}: {} compression is not in this build of iqdb-persist (configure "
                          "with -D{}=ON)",
                          context, to_string(compression), cmake_option(compression)));
}

Result<std::unique_ptr<ChunkEncoder>> ChunkEncoder::create(SectionCompression compression,
                                                           [[maybe_unused]] int level,
                                                           std::string_view context) {
  IQDB_TRY(check_codec_available(compression, context));
  switch (compression) {
#ifdef IQDB_PERSIST_WITH_ZSTD
    case SectionCompression::Zstd: return std::unique_ptr<ChunkEncoder>(new ZstdEncoder(level));
#endif
#ifdef IQDB_PERSIST_WITH_LZ4
    case SectionCompression::Lz4: return std::unique_ptr<ChunkEncoder>(new Lz4Encoder());
#endif
    default: break;
  }
  return fail(ErrorKind::InvalidArgument,
              fmt::format("{}: no encoder for {}", context, to_string(compression)));
}

Result<void> decode_chunk(SectionCompression compression,
                          [[maybe_unused]] std::span<const std::byte> stored,
                          [[maybe_unused]] std::span<std::byte> out, std::string_view context) {
  IQDB_TRY(check_codec_available(compression, context));
  switch (compression) {
#ifdef IQDB_PERSIST_WITH_ZSTD
    case SectionCompression::Zstd: return decode_zstd(stored, out, context);
#endif
#ifdef IQDB_PERSIST_WITH_LZ4
    case SectionCompression::Lz4: return decode_lz4(stored, out, context);
#endif
    default: break;
  }
  return fail(ErrorKind::InvalidArgument,
              fmt::format("{}: {} is not a codec", context, to_string(compression)));
}

}  // namespace iqdb::persist
