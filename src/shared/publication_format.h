// The shared-memory publication format (docs/FORMAT.md, "Shared-memory
// publication"): the names of a publication's objects, the head object, and
// the descriptor at the start of each generation's segment. Integers are
// little-endian. Decoding trusts nothing: every length, offset and count is
// checked against the object's size before it is used.
//
// A publication NAME is, in the host's POSIX shared memory (/dev/shm):
//   iqdb.NAME                 the head: liveness, the current generation's
//                             number, a change counter
//   iqdb.NAME.current         the current generation's segment: a
//                             descriptor page, then a snapshot image
//   iqdb.NAME.<generation>    a segment being written (16 hex digits),
//                             renamed to iqdb.NAME.current once complete
// So an attacher opens one object, and a publisher replaces the current
// generation with one rename: processes that mapped the old one keep it.
//
// Head (kHeadSize bytes; the publisher rewrites its fields in place, as
// atomics; attachers only read it, so nothing in it is trusted):
//   [0, 8)    magic "IQDBSHMH"
//   [8, 12)   version (u32) = kVersion
//   [12, 16)  head size (u32) = kHeadSize
//   [16, 24)  current generation (u64): the number of iqdb.NAME.current's
//             segment; 0 = none
//   [24, 32)  building generation (u64): a segment being written; 0 = none
//   [32, 36)  change counter (u32): bumped at each publication and at
//             withdrawal; the futex word attachers wait on
//   [36, 40)  publisher pid (u32): for messages only
//   [40, 48)  publication time of the current generation (u64, ns since the
//             Unix epoch)
//   the rest: zero
// Liveness: the publisher holds an open-file-description lock (F_OFD_SETLK,
// write) on byte 0 of the head while it runs; the kernel drops it when the
// publisher exits or dies. Never a pid.
//
// Segment: a descriptor at [0, descriptor length), zero up to kImageOffset,
// then the image: a snapshot in the file format, every section stored raw
// (compression None), page-aligned, so that it is used in place.
// Descriptor (P: the source path's length, at most kMaxSourcePath):
//   [0, 8)      magic "IQDBSHMS"
//   [8, 12)     version (u32) = kVersion
//   [12, 16)    descriptor length (u32) = kDescriptorFixed + P
//   [16, 24)    generation (u64), not 0
//   [24, 32)    image offset (u64) = kImageOffset
//   [32, 40)    image length (u64): the segment is exactly offset + length
//   [40, 48)    wal_lsn (u64): the image header's
//   [48, 56)    content hash (u64): the image header's (FORMAT.md, "Content
//               hashes"): the source snapshot's, whatever its compression
//   [56, 64)    source device (u64)   the identity of the file the image was
//   [64, 72)    source inode (u64)    decoded from when it was published
//   [72, 80)    source size (u64)
//   [80, 88)    source mtime (u64, ns since the Unix epoch)
//   [88, 96)    publication time (u64, ns since the Unix epoch)
//   [96, 100)   publisher pid (u32): for messages only
//   [100, 104)  P (u32)
//   [104, 104+P) the source path (UTF-8 bytes)
//   [104+P, 108+P) CRC-32 of bytes [0, 104+P)
// The section table, each section's CRC-32 and content hash are the image
// header's: an attacher validates the image as a load validates a file.
#ifndef IQDB_PERSIST_SRC_SHARED_PUBLICATION_FORMAT_H_
#define IQDB_PERSIST_SRC_SHARED_PUBLICATION_FORMAT_H_

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "iqdb/persist/error.h"

namespace iqdb::persist::publication_format {

inline constexpr std::uint32_t kVersion = 1;
inline constexpr char kHeadMagic[8] = {'I', 'Q', 'D', 'B', 'S', 'H', 'M', 'H'};
inline constexpr char kSegmentMagic[8] = {'I', 'Q', 'D', 'B', 'S', 'H', 'M', 'S'};

inline constexpr std::size_t kHeadSize = 4096;
inline constexpr std::size_t kCurrentOffset = 16;
inline constexpr std::size_t kBuildingOffset = 24;
inline constexpr std::size_t kChangesOffset = 32;
inline constexpr std::size_t kPidOffset = 36;
inline constexpr std::size_t kPublishedOffset = 40;
inline constexpr std::size_t kHeadFieldsEnd = 48;

inline constexpr std::uint64_t kImageOffset = 4096;
// The descriptor's length without the source path; with it, at most
// kImageOffset.
inline constexpr std::uint32_t kDescriptorFixed = 108;
inline constexpr std::size_t kMaxSourcePath = kImageOffset - kDescriptorFixed;

// Where POSIX shared memory objects are files (Linux).
inline constexpr std::string_view kShmDirectory = "/dev/shm";
// Names: 1 to kMaxNameLength characters of [A-Za-z0-9_-] (no '.', which
// separates a name from a segment's suffix).
inline constexpr std::size_t kMaxNameLength = 200;

// InvalidArgument unless `name` is a valid publication name.
Result<void> check_name(std::string_view name);
// The shared memory object names (for shm_open: no directory) of the head,
// the current segment and a segment being written, and their paths in
// kShmDirectory.
std::string head_object(std::string_view name);
std::string current_object(std::string_view name);
std::string building_object(std::string_view name, std::uint64_t generation);
std::filesystem::path object_path(std::string_view object);

// What the head says, as read by an attacher (a snapshot of its fields).
struct HeadFields {
  std::uint64_t current = 0;
  std::uint64_t building = 0;
  std::uint32_t changes = 0;
  std::uint32_t publisher_pid = 0;
  std::uint64_t published_ns = 0;
};

// Validates a head's first bytes (`bytes`, at most kHeadSize of an object of
// `object_size` bytes). Errors, naming `path`: BadMagic, UnsupportedVersion,
// InvalidHeader.
Result<HeadFields> decode_head(std::span<const std::byte> bytes, std::uint64_t object_size,
                               const std::string& path);
// A fresh head's bytes (no generation yet).
void encode_new_head(std::span<std::byte> head);

struct Descriptor {
  std::uint64_t generation = 0;
  std::uint64_t image_offset = kImageOffset;
  std::uint64_t image_length = 0;
  std::uint64_t wal_lsn = 0;
  std::uint64_t content_hash = 0;
  std::uint64_t source_device = 0;
  std::uint64_t source_inode = 0;
  std::uint64_t source_size = 0;
  std::uint64_t source_mtime_ns = 0;
  std::uint64_t published_ns = 0;
  std::uint32_t publisher_pid = 0;
  std::string source_path;  // cut to kMaxSourcePath bytes by encode_descriptor()
};

// The descriptor's bytes (its length is the returned size).
std::vector<std::byte> encode_descriptor(const Descriptor& descriptor);
// Validates the descriptor at the start of a segment of `segment_size` bytes
// (`bytes`: at least its first min(segment_size, kImageOffset) bytes).
// Errors, naming `path`: TruncatedHeader, BadMagic, UnsupportedVersion,
// ChecksumMismatch, InvalidHeader.
Result<Descriptor> decode_descriptor(std::span<const std::byte> bytes, std::uint64_t segment_size,
                                     const std::string& path);

}  // namespace iqdb::persist::publication_format

#endif  // IQDB_PERSIST_SRC_SHARED_PUBLICATION_FORMAT_H_
