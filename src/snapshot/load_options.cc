// Names of the load options (iqdb/persist/load_options.h).
#include "iqdb/persist/load_options.h"

namespace iqdb::persist {

std::string_view to_string(VerifyMode mode) {
  switch (mode) {
    case VerifyMode::Eager: return "Eager";
    case VerifyMode::Background: return "Background";
    case VerifyMode::Skip: return "Skip";
  }
  return "Unknown";
}

std::string_view to_string(WarmUp mode) {
  switch (mode) {
    case WarmUp::Lazy: return "Lazy";
    case WarmUp::WillNeed: return "WillNeed";
    case WarmUp::Populate: return "Populate";
    case WarmUp::Prefetch: return "Prefetch";
    case WarmUp::Lock: return "Lock";
  }
  return "Unknown";
}

}  // namespace iqdb::persist
