#include "iqdb/persist/compression.h"

#include "snapshot/section_codec.h"

namespace iqdb::persist {

bool Compression::available() const { return codec_available(section_compression(*this)); }

}  // namespace iqdb::persist
