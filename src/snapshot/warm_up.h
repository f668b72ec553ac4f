// Warm-up of a loaded snapshot's sections per PersistConfig::warm_up,
// section_warm_up and huge_pages (see WarmUp in iqdb/persist/load_options.h).
//
// Everything here is advice to the kernel or page touching, except Lock,
// whose refusal is an error: a caller who asked for resident pages must hear
// that they are not.
#ifndef IQDB_PERSIST_SRC_SNAPSHOT_WARM_UP_H_
#define IQDB_PERSIST_SRC_SNAPSHOT_WARM_UP_H_

#include <atomic>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "iqdb/persist/error.h"
#include "iqdb/persist/file_header.h"
#include "iqdb/persist/load_options.h"

namespace iqdb::persist {

// Touches pages of some byte ranges on its own thread; the destructor stops it
// and waits for it. The ranges must outlive it.
class Prefetcher {
 public:
  explicit Prefetcher(std::vector<std::span<const std::byte>> ranges);
  ~Prefetcher();
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// The warm-up a load asks for: PersistConfig::warm_up, section_warm_up and
// huge_pages. The overrides must outlive the call.
struct WarmUpSettings {
  // For every section not named in `sections`.
  WarmUp mode = WarmUp::Lazy;
  // Per-section overrides, by name.
  std::span<const std::pair<std::string, WarmUp>> sections;
  // MADV_HUGEPAGE on raw sections aligned to 2 MiB.
  bool huge_pages = false;
};

// Applies `settings` to each section: raw sections are ranges of the mapped
// `file`, compressed ones their `decoded` bytes (one per table entry, empty
// when raw). Returns the Prefetcher to keep alive with the memory (null when
// no section asked for one). Errors: Io when mlock fails, naming `path` and
// the section.
[[nodiscard]] Result<std::unique_ptr<Prefetcher>> warm_up_sections(
    std::span<const std::byte> file, const FileHeader& header,
    const std::vector<std::span<const std::byte>>& decoded, const WarmUpSettings& settings,
    std::string_view path);

}  // namespace iqdb::persist

#endif  // IQDB_PERSIST_SRC_SNAPSHOT_WARM_UP_H_
