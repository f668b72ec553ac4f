#include "output/exit_status.h"

#include <cstdio>

#include <fmt/core.h>

namespace iqdb::tools {

using persist::ErrorKind;

std::string_view exit_status_help() {
  return "Exit status:\n"
         "  0  success\n"
         "  1  integrity or format error: the file is damaged or is not a snapshot\n"
         "     (or the demo's query returned a wrong answer, or torture lost a write)\n"
         "  2  usage error: bad command line\n"
         "  3  I/O or other error: missing file, permission denied, disk full,\n"
         "     another writer holds the database or another publisher the name\n"
         "     (Locked), nothing published under a name (NotFound), ...";
}

int exit_status_for(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::BadMagic:
    case ErrorKind::UnsupportedVersion:
    case ErrorKind::ChecksumMismatch:
    case ErrorKind::TruncatedHeader:
    case ErrorKind::TruncatedPayload:
    case ErrorKind::InvalidHeader:
    case ErrorKind::InvalidMetric:
    case ErrorKind::UnsupportedMetric:
    case ErrorKind::InvalidIndexType:
    case ErrorKind::InvalidPayload:
    case ErrorKind::Compression: return kExitIntegrity;
    default: return kExitOther;
  }
}

void print_error(std::string_view kind, std::string_view message) {
  std::fflush(stdout);  // keep stdout and stderr in order on a shared terminal
  fmt::print(stderr, "iqdb-persist: {}: {}\n", kind, message);
}

int report(const persist::PersistError& error) {
  print_error(persist::to_string(error.kind()), error.message());
  return exit_status_for(error.kind());
}

}  // namespace iqdb::tools
