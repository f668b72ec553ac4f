#include "demo/baseline_load.h"

#include <vector>

#include <fmt/format.h>

#include "iqdb/persist/file_header.h"
#include "iqdb/persist/file_system.h"
#include "output/stopwatch.h"

namespace iqdb::tools {
namespace {

using persist::ErrorKind;
using persist::fail;
using persist::Result;
// The bytes of section `name`, which must be `expected_length` long.
Result<std::span<const std::byte>> section_bytes(const std::vector<std::byte>& file,
                                                 const persist::FileHeader& header,
                                                 std::string_view name,
                                                 std::uint64_t expected_length) {
  const persist::SectionInfo* section = header.find_section(name);
  if (section == nullptr || section->stored_length != expected_length ||
      section->offset > file.size() || expected_length > file.size() - section->offset) {
    return fail(ErrorKind::InvalidPayload,
                fmt::format("baseline load: section '{}' is missing or is not {} bytes", name,
                            expected_length));
  }
  return std::span<const std::byte>(file).subspan(section->offset, expected_length);
}

}  // namespace

Result<BaselineLoad> load_by_reading(const std::filesystem::path& path) {
  const Stopwatch read_time;
  IQDB_TRY_ASSIGN(const auto header, persist::read_file_header(path));
  IQDB_TRY_ASSIGN(const auto file, persist::default_file_system()->open_readable(path));
  std::vector<std::byte> buffer(file->size());
  IQDB_TRY(file->read_at(0, buffer));
  const double read_seconds = read_time.seconds();

  const Stopwatch copy_time;
  const std::size_t count = header.n_vectors;
  IQDB_TRY_ASSIGN(const auto id_bytes,
                  section_bytes(buffer, header, "ids", count * sizeof(std::uint64_t)));
  IQDB_TRY_ASSIGN(const auto vector_bytes,
                  section_bytes(buffer, header, "vectors", count * header.dim * sizeof(float)));
  // Sections start at multiples of 4096 and operator new aligns the buffer for
  // any scalar type, so both arrays are suitably aligned.
  const auto* ids = reinterpret_cast<const std::uint64_t*>(id_bytes.data());
  const std::span<const float> vectors(reinterpret_cast<const float*>(vector_bytes.data()),
                                       count * header.dim);
  examples::FlatIndex index(header.dim, header.metric);
  index.reserve(count);
  const Metadata no_metadata;
  for (std::size_t i = 0; i < count; ++i) {
    auto inserted = index.insert(ids[i], vectors.subspan(i * header.dim, header.dim), no_metadata);
    if (!inserted) {
      return boost::outcome_v2::failure(persist::PersistError::from_index(inserted.error()));
    }
  }
  return BaselineLoad{std::move(index), buffer.size(), read_seconds, copy_time.seconds()};
}

}  // namespace iqdb::tools
