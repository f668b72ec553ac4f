// How much of a file sits in the operating system's page cache, and a request
// to drop it, so that the demo can time loads "cold" and say truthfully whether
// they were: posix_fadvise(POSIX_FADV_DONTNEED) is only advice (pages that are
// dirty or mapped stay, and on tmpfs the cache is the file), so the demo
// reports the resident fraction measured with mincore() afterwards.
//
// These are the tool's only direct system calls besides the library's
// FileSystem seam, which has no page-cache operations.
#ifndef IQDB_PERSIST_TOOLS_DEMO_PAGE_CACHE_H_
#define IQDB_PERSIST_TOOLS_DEMO_PAGE_CACHE_H_

#include <filesystem>

#include "iqdb/persist/error.h"

namespace iqdb::tools {

// The fraction (0..1) of the file's pages resident in memory. Errors: NotFound, Io.
[[nodiscard]] persist::Result<double> resident_fraction(const std::filesystem::path& path);

// Asks the kernel to evict the file's clean pages, then returns
// resident_fraction(). Errors: NotFound, Io.
[[nodiscard]] persist::Result<double> drop_from_page_cache(const std::filesystem::path& path);

}  // namespace iqdb::tools

#endif  // IQDB_PERSIST_TOOLS_DEMO_PAGE_CACHE_H_
