#include "unpublish_command.h"

#include <cstddef>

#include <fmt/format.h>

#include "iqdb/persist/shared_memory.h"
#include "output/exit_status.h"
#include "output/text_format.h"

namespace iqdb::tools {

int run_unpublish(const UnpublishOptions& options) {
  auto removed = persist::remove_stale_publication(options.name);
  if (!removed) return report(removed.error());
  const std::size_t count = removed.value();
  fmt::print("removed {} object{} of '{}'\n", count, count == 1 ? "" : "s",
             escape_for_terminal(options.name));
  return kExitOk;
}

}  // namespace iqdb::tools
