// The shared-memory publication format (publication_format.h).
#include "shared/publication_format.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "util/crc32.h"
#include "util/little_endian.h"

namespace iqdb::persist::publication_format {
namespace {

constexpr std::size_t kVersionOffset = 8;
constexpr std::size_t kSizeOffset = 12;
constexpr std::size_t kPathLengthOffset = 100;
constexpr std::size_t kPathOffset = 104;

bool has_magic(std::span<const std::byte> bytes, const char (&magic)[8]) {
  return bytes.size() >= 8 && std::memcmp(bytes.data(), magic, 8) == 0;
}

}  // namespace

Result<void> check_name(std::string_view name) {
  // No '.': it separates a name from a segment's suffix, so that no name
  // can be another's segment ("a.current", "a.<16 hex digits>").
  const bool valid_chars = std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
  if (name.empty() || name.size() > kMaxNameLength || !valid_chars) {
    return fail(ErrorKind::InvalidArgument,
                fmt::format("'{}' is not a publication name: use 1 to {} characters of "
                            "[A-Za-z0-9_-]",
                            name, kMaxNameLength));
  }
  return success();
}

std::string head_object(std::string_view name) { return fmt::format("iqdb.{}", name); }

std::string current_object(std::string_view name) { return fmt::format("iqdb.{}.current", name); }

std::string building_object(std::string_view name, std::uint64_t generation) {
  return fmt::format("iqdb.{}.{:016x}", name, generation);
}

std::filesystem::path object_path(std::string_view object) {
  return std::filesystem::path(kShmDirectory) / object;
}

Result<HeadFields> decode_head(std::span<const std::byte> bytes, std::uint64_t object_size,
                               const std::string& path) {
  if (!has_magic(bytes, kHeadMagic)) {
    return fail(ErrorKind::BadMagic,
                fmt::format("{}: not the head of a publication (no IQDBSHMH magic)", path));
  }
  if (bytes.size() < kHeadFieldsEnd) {
    return fail(ErrorKind::InvalidHeader,
                fmt::format("{}: {} bytes, shorter than a head", path, bytes.size()));
  }
  const auto version = static_cast<std::uint32_t>(load_le(bytes, kVersionOffset, 4));
  if (version != kVersion) {
    return fail(
        ErrorKind::UnsupportedVersion,
        fmt::format("{}: head version {}, this build reads version {}", path, version, kVersion));
  }
  const auto size = load_le(bytes, kSizeOffset, 4);
  if (size != kHeadSize || object_size != kHeadSize) {
    return fail(ErrorKind::InvalidHeader,
                fmt::format("{}: the head says it is {} bytes and the object is {} (expected {})",
                            path, size, object_size, kHeadSize));
  }
  HeadFields head;
  head.current = load_le(bytes, kCurrentOffset, 8);
  head.building = load_le(bytes, kBuildingOffset, 8);
  head.changes = static_cast<std::uint32_t>(load_le(bytes, kChangesOffset, 4));
  head.publisher_pid = static_cast<std::uint32_t>(load_le(bytes, kPidOffset, 4));
  head.published_ns = load_le(bytes, kPublishedOffset, 8);
  return head;
}

void encode_new_head(std::span<std::byte> head) {
  std::fill(head.begin(), head.end(), std::byte{0});
  std::memcpy(head.data(), kHeadMagic, 8);
  store_le(head, kVersionOffset, kVersion, 4);
  store_le(head, kSizeOffset, kHeadSize, 4);
}

std::vector<std::byte> encode_descriptor(const Descriptor& descriptor) {
  const std::size_t path_length = std::min(descriptor.source_path.size(), kMaxSourcePath);
  std::vector<std::byte> out(kDescriptorFixed + path_length);
  std::memcpy(out.data(), kSegmentMagic, 8);
  store_le(out, kVersionOffset, kVersion, 4);
  store_le(out, kSizeOffset, out.size(), 4);
  store_le(out, 16, descriptor.generation, 8);
  store_le(out, 24, descriptor.image_offset, 8);
  store_le(out, 32, descriptor.image_length, 8);
  store_le(out, 40, descriptor.wal_lsn, 8);
  store_le(out, 48, descriptor.content_hash, 8);
  store_le(out, 56, descriptor.source_device, 8);
  store_le(out, 64, descriptor.source_inode, 8);
  store_le(out, 72, descriptor.source_size, 8);
  store_le(out, 80, descriptor.source_mtime_ns, 8);
  store_le(out, 88, descriptor.published_ns, 8);
  store_le(out, 96, descriptor.publisher_pid, 4);
  store_le(out, kPathLengthOffset, path_length, 4);
  std::memcpy(out.data() + kPathOffset, descriptor.source_path.data(), path_length);
  const std::size_t crc_at = kPathOffset + path_length;
  store_le(out, crc_at, crc32(std::span(out).first(crc_at)), 4);
  return out;
}

Result<Descriptor> decode_descriptor(std::span<const std::byte> bytes, std::uint64_t segment_size,
                                     const std::string& path) {
  if (segment_size < kImageOffset || bytes.size() < kDescriptorFixed) {
    return fail(ErrorKind::TruncatedHeader,
                fmt::format("{}: {} bytes, too short for a segment (at least {})", path,
                            segment_size, kImageOffset));
  }
  if (!has_magic(bytes, kSegmentMagic)) {
    return fail(ErrorKind::BadMagic,
                fmt::format("{}: not a publication segment (no IQDBSHMS magic)", path));
  }
  const auto version = static_cast<std::uint32_t>(load_le(bytes, kVersionOffset, 4));
  if (version != kVersion) {
    return fail(ErrorKind::UnsupportedVersion,
                fmt::format("{}: segment version {}, this build reads version {}", path, version,
                            kVersion));
  }
  // The length, and the path length within it, are checked before the CRC
  // that they locate is read.
  const std::uint64_t length = load_le(bytes, kSizeOffset, 4);
  const std::uint64_t path_length = load_le(bytes, kPathLengthOffset, 4);
  if (length < kDescriptorFixed || length > kImageOffset || length > bytes.size() ||
      path_length != length - kDescriptorFixed) {
    return fail(ErrorKind::InvalidHeader,
                fmt::format("{}: descriptor length {} with a source path of {} bytes (a "
                            "descriptor is {} bytes plus the path, at most {})",
                            path, length, path_length, kDescriptorFixed, kImageOffset));
  }
  const std::size_t crc_at = kPathOffset + static_cast<std::size_t>(path_length);
  const auto stored_crc = static_cast<std::uint32_t>(load_le(bytes, crc_at, 4));
  const std::uint32_t computed = crc32(bytes.first(crc_at));
  if (stored_crc != computed) {
    return fail(ErrorKind::ChecksumMismatch,
                fmt::format("{}: descriptor CRC32 0x{:08x}, computed 0x{:08x}", path, stored_crc,
                            computed));
  }
  Descriptor descriptor;
  descriptor.generation = load_le(bytes, 16, 8);
  descriptor.image_offset = load_le(bytes, 24, 8);
  descriptor.image_length = load_le(bytes, 32, 8);
  descriptor.wal_lsn = load_le(bytes, 40, 8);
  descriptor.content_hash = load_le(bytes, 48, 8);
  descriptor.source_device = load_le(bytes, 56, 8);
  descriptor.source_inode = load_le(bytes, 64, 8);
  descriptor.source_size = load_le(bytes, 72, 8);
  descriptor.source_mtime_ns = load_le(bytes, 80, 8);
  descriptor.published_ns = load_le(bytes, 88, 8);
  descriptor.publisher_pid = static_cast<std::uint32_t>(load_le(bytes, 96, 4));
  descriptor.source_path.assign(reinterpret_cast<const char*>(bytes.data() + kPathOffset),
                                static_cast<std::size_t>(path_length));
  if (descriptor.generation == 0 || descriptor.image_offset != kImageOffset ||
      descriptor.image_length != segment_size - kImageOffset) {
    return fail(ErrorKind::InvalidHeader,
                fmt::format("{}: descriptor for generation {} with an image of {} bytes at {}; "
                            "expected a generation above 0 and an image of {} bytes at {}",
                            path, descriptor.generation, descriptor.image_length,
                            descriptor.image_offset, segment_size - kImageOffset, kImageOffset));
  }
  return descriptor;
}

}  // namespace iqdb::persist::publication_format
