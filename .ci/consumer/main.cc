// Saves and loads a minimal index (stream persistence) through the installed
// package.
#include <cstdio>
#include <map>
#include <span>
#include <vector>

#include <iqdb/persist.h>

namespace {

namespace persist = iqdb::persist;

class TinyIndex {
 public:
  static constexpr std::string_view kIndexType = "consumer-tiny";

  iqdb::IndexResult<void> insert(const iqdb::VectorId& id, std::span<const float> vector,
                                 const iqdb::Metadata&) {
    if (!id.is_u64()) return iqdb::IndexError{iqdb::IndexErrc::InvalidArgument, "u64 ids only"};
    if (vector.size() != 2) return iqdb::IndexError{iqdb::IndexErrc::DimensionMismatch, "dim 2"};
    if (!rows_.emplace(id.as_u64(), std::vector<float>(vector.begin(), vector.end())).second) {
      return iqdb::IndexError{iqdb::IndexErrc::DuplicateId, "duplicate"};
    }
    return persist::success();
  }
  iqdb::IndexResult<void> remove(const iqdb::VectorId& id) {
    if (!id.is_u64() || rows_.erase(id.as_u64()) == 0) {
      return iqdb::IndexError{iqdb::IndexErrc::IdNotFound, "absent"};
    }
    return persist::success();
  }
  std::size_t size() const { return rows_.size(); }
  std::size_t dim() const { return 2; }
  iqdb::DistanceMetric metric() const { return iqdb::DistanceMetric::Euclidean; }

  persist::Result<void> save_to(persist::StreamWriter& out) const {
    IQDB_TRY(out.write_value<std::uint64_t>(rows_.size()));
    for (const auto& [id, row] : rows_) {
      IQDB_TRY(out.write_value(id));
      IQDB_TRY(out.write_array(std::span<const float>(row)));
    }
    return persist::success();
  }
  static persist::Result<TinyIndex> load_from(persist::StreamReader& in) {
    TinyIndex index;
    IQDB_TRY_ASSIGN(auto count, in.read_value<std::uint64_t>());
    for (std::uint64_t i = 0; i < count; ++i) {
      IQDB_TRY_ASSIGN(auto id, in.read_value<std::uint64_t>());
      std::vector<float> row(2);
      IQDB_TRY(in.read_array(std::span<float>(row)));
      index.rows_.emplace(id, std::move(row));
    }
    return index;
  }

 private:
  std::map<std::uint64_t, std::vector<float>> rows_;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return std::fprintf(stderr, "usage: consumer FILE\n"), 2;
  auto db =
      persist::PersistedIndex<TinyIndex>::open_with(TinyIndex{}, persist::PersistConfig(argv[1]));
  if (!db) return std::fprintf(stderr, "%s\n", db.error().to_string().c_str()), 1;
  const std::vector<float> row = {1.0f, 2.0f};
  if (auto r = db.value().insert(7, row); !r) return 1;
  if (auto r = db.value().save(); !r)
    return std::fprintf(stderr, "%s\n", r.error().to_string().c_str()), 1;
  auto loaded = persist::PersistedIndex<TinyIndex>::load(persist::PersistConfig(argv[1]));
  if (!loaded || loaded.value().index().size() != 1)
    return std::fprintf(stderr, "load failed\n"), 1;
  // A read-only replica of the same file (replica.h, installed too).
  auto replica = persist::Replica<TinyIndex>::open(persist::PersistConfig(argv[1]));
  if (!replica || replica.value().acquire().index().size() != 1)
    return std::fprintf(stderr, "replica failed\n"), 1;
  auto header = persist::read_file_header(argv[1]);
  if (!header || header.value().index_type != TinyIndex::kIndexType) return 1;
  // kVersion comes from the generated version.h: this checks it is installed.
  std::printf("consumer: iqdb-persist %.*s saved and loaded %s (%s, %zu section)\n",
              static_cast<int>(persist::kVersion.size()), persist::kVersion.data(), argv[1],
              header.value().index_type.c_str(), header.value().sections.size());
  return 0;
}
