// `iqdb-persist unpublish NAME`: removes what a publisher of NAME that is no
// longer running left in the host's shared memory (remove_stale_publication(),
// iqdb/persist/shared_memory.h): the head and the segments of a publisher
// that was killed before it could withdraw. It prints how many objects it
// removed (0 when nothing is published under NAME). A publisher that stops
// cleanly leaves nothing; one that is running is never disturbed: that is
// Locked (exit 3), naming it.
#ifndef IQDB_PERSIST_TOOLS_UNPUBLISH_COMMAND_H_
#define IQDB_PERSIST_TOOLS_UNPUBLISH_COMMAND_H_

#include <string>

namespace iqdb::tools {

struct UnpublishOptions {
  std::string name;  // the publication
};

int run_unpublish(const UnpublishOptions& options);

}  // namespace iqdb::tools

#endif  // IQDB_PERSIST_TOOLS_UNPUBLISH_COMMAND_H_
