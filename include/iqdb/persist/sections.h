// Section persistence, the zero-copy way for an index to be Persistable (the
// SectionPersistable concept in iqdb/persist/persistable.h): an index saves
// itself as named sections written straight from its own memory, and is
// rebuilt from a SnapshotView whose sections are spans into the read-only
// mapping of the file.
//
//   Result<void> save_sections(SectionWriter& out) const {
//     IQDB_TRY(out.add_array<std::uint64_t>("ids", ids_));
//     return out.add_array<float>("vectors", vectors_);
//   }
//   static Result<MyIndex> load_sections(const SnapshotView& snapshot) {
//     IQDB_TRY_ASSIGN(auto vectors, snapshot.section("vectors"));
//     IQDB_TRY_ASSIGN(auto floats, vectors.as_span<float>());
//     return MyIndex(floats, vectors.keep_alive());  // no copy
//   }
//
// Lifetime: the bytes of a SectionView stay valid while any copy of its
// keep_alive() handle (or of the SnapshotView) lives. An index that keeps spans
// into a snapshot must keep that handle with them. The mapping is read-only:
// an index that mutates loaded data must copy it first.
//
// Files changed under a live mapping. A raw section's bytes are the file's
// own pages, read through a shared mapping for as long as the SnapshotView or
// any keep_alive() handle lives; the load checked them once. Changing the
// file in place afterwards changes what the index reads, and no check runs
// again: truncating it (`truncate`, `cp` or a shell `>` over it) makes the
// next access past the new end raise SIGBUS, killing the process; writing
// into it (an overwrite of the same length, an editor, `dd conv=notrunc`)
// has the index serve the new bytes, wrong vectors, silently, whatever the
// VerifyMode. (Compressed sections, decoded into memory at load, and the
// header are copies, unaffected.) This is the nature of mmap; LMDB documents
// the same. Replace a snapshot only by writing the new file beside it and
// renaming it over the old one, as save() does: a reader keeps the old file
// until it loads again. Removing the file is safe too. Snapshots are written
// read-only (mode 0444) so that ordinary tools refuse to write into them.
//
// Section names are 1..255 bytes, unique within a snapshot; at most
// kMaxSections sections. Alignment 0 means PersistConfig::section_alignment.
#ifndef IQDB_PERSIST_SECTIONS_H_
#define IQDB_PERSIST_SECTIONS_H_

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "iqdb/persist/error.h"
#include "iqdb/persist/file_header.h"
#include "iqdb/persist/stream.h"

namespace iqdb::persist {

// Where an index writes its sections during save_sections(). Sections are laid
// out in the order they are added.
class SectionWriter {
 public:
  virtual ~SectionWriter() = default;

  // Writes `bytes` as section `name`, directly from the caller's memory (no
  // staging copy). Errors: InvalidArgument (bad or duplicate name, bad
  // alignment, too many sections), Io.
  [[nodiscard]] virtual Result<void> add_section(std::string_view name,
                                                 std::span<const std::byte> bytes,
                                                 std::uint64_t alignment = 0) = 0;

  // Writes a section whose bytes are produced by `fill` (for data that is not
  // contiguous in memory). Errors: as add_section(), plus whatever fill returns.
  [[nodiscard]] virtual Result<void> add_streamed_section(
      std::string_view name, const std::function<Result<void>(StreamWriter&)>& fill,
      std::uint64_t alignment = 0) = 0;

  template <class T>
  requires std::is_trivially_copyable_v<T>
  [[nodiscard]] Result<void> add_array(std::string_view name, std::span<const T> values,
                                       std::uint64_t alignment = 0) {
    return add_section(name, std::as_bytes(values), alignment);
  }
};

// One section of a loaded snapshot.
class SectionView {
 public:
  SectionView(SectionInfo info, std::span<const std::byte> bytes,
              std::shared_ptr<const void> keep_alive, std::string context)
      : info_(std::move(info)),
        bytes_(bytes),
        keep_alive_(std::move(keep_alive)),
        context_(std::move(context)) {}

  const SectionInfo& info() const { return info_; }
  const std::string& name() const { return info_.name; }
  // The section's logical bytes.
  std::span<const std::byte> bytes() const { return bytes_; }
  // Owns the memory bytes() points into; copy it to extend its life.
  const std::shared_ptr<const void>& keep_alive() const { return keep_alive_; }

  // The bytes as an array of T. InvalidPayload if the length is not a multiple
  // of sizeof(T) or the data is not aligned for T.
  template <class T>
  requires std::is_trivially_copyable_v<T>
  [[nodiscard]] Result<std::span<const T>> as_span() const {
    IQDB_TRY(check_array(sizeof(T), alignof(T), nullptr));
    return std::span<const T>(reinterpret_cast<const T*>(bytes_.data()), bytes_.size() / sizeof(T));
  }

  // As above, and InvalidPayload unless it holds exactly `expected_count` elements.
  template <class T>
  requires std::is_trivially_copyable_v<T>
  [[nodiscard]] Result<std::span<const T>> as_span(std::size_t expected_count) const {
    IQDB_TRY(check_array(sizeof(T), alignof(T), &expected_count));
    return std::span<const T>(reinterpret_cast<const T*>(bytes_.data()), expected_count);
  }

  // A bounds-checked stream over the section's bytes.
  StreamReader reader() const { return StreamReader(bytes_, context_); }

  // "<file>: section '<name>'", the prefix of this section's error messages.
  const std::string& context() const { return context_; }

 private:
  Result<void> check_array(std::size_t element_size, std::size_t element_alignment,
                           const std::size_t* expected_count) const;

  SectionInfo info_;
  std::span<const std::byte> bytes_;
  std::shared_ptr<const void> keep_alive_;
  std::string context_;
};

// A validated snapshot (header, section table and, unless VerifyMode::Skip,
// CRCs checked) together with the mapping that holds its bytes. Raw sections
// are views of the file's mapping; compressed ones, of the memory they were
// decoded into (`decoded`: per table entry, empty for a raw section).
class SnapshotView {
 public:
  SnapshotView(std::filesystem::path path, FileHeader header,
               std::shared_ptr<const void> keep_alive, std::span<const std::byte> file_bytes,
               std::vector<std::span<const std::byte>> decoded = {}, bool payload_trusted = false)
      : path_(std::move(path)),
        header_(std::move(header)),
        keep_alive_(std::move(keep_alive)),
        file_bytes_(file_bytes),
        decoded_(std::move(decoded)),
        payload_trusted_(payload_trusted) {}

  const std::filesystem::path& path() const { return path_; }
  const FileHeader& header() const { return header_; }
  bool has_section(std::string_view name) const { return header_.find_section(name) != nullptr; }

  // The section named `name`. InvalidPayload if the snapshot has none.
  [[nodiscard]] Result<SectionView> section(std::string_view name) const;

  // Owns the mapping and decoded memory; every SectionView holds a copy.
  const std::shared_ptr<const void>& keep_alive() const { return keep_alive_; }

  // True when the load was asked not to check the payload before handing it
  // over (VerifyMode::Skip, a trusted replica, or Background, which checks
  // the CRCs later). An index may then skip its own checks of the payload
  // that cost time in proportion to it (e.g. that ids are distinct), so that
  // such a load stays independent of the file's size; with Eager, which has
  // read every byte anyway, it should make them.
  bool payload_trusted() const { return payload_trusted_; }

 private:
  std::filesystem::path path_;
  FileHeader header_;
  std::shared_ptr<const void> keep_alive_;
  std::span<const std::byte> file_bytes_;
  std::vector<std::span<const std::byte>> decoded_;
  bool payload_trusted_ = false;
};

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_SECTIONS_H_
