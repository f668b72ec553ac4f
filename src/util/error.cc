#include "iqdb/persist/error.h"

#include <fmt/format.h>

namespace iqdb::persist {

std::string_view to_string(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::Io: return "Io";
    case ErrorKind::NotFound: return "NotFound";
    case ErrorKind::BadMagic: return "BadMagic";
    case ErrorKind::UnsupportedVersion: return "UnsupportedVersion";
    case ErrorKind::ChecksumMismatch: return "ChecksumMismatch";
    case ErrorKind::TruncatedHeader: return "TruncatedHeader";
    case ErrorKind::TruncatedPayload: return "TruncatedPayload";
    case ErrorKind::InvalidHeader: return "InvalidHeader";
    case ErrorKind::InvalidMetric: return "InvalidMetric";
    case ErrorKind::UnsupportedMetric: return "UnsupportedMetric";
    case ErrorKind::InvalidIndexType: return "InvalidIndexType";
    case ErrorKind::InvalidPayload: return "InvalidPayload";
    case ErrorKind::Compression: return "Compression";
    case ErrorKind::IndexBuild: return "IndexBuild";
    case ErrorKind::Unsupported: return "Unsupported";
    case ErrorKind::InvalidConfig: return "InvalidConfig";
    case ErrorKind::AlreadyExists: return "AlreadyExists";
    case ErrorKind::Locked: return "Locked";
    case ErrorKind::DuplicateId: return "DuplicateId";
    case ErrorKind::IdNotFound: return "IdNotFound";
    case ErrorKind::DimensionMismatch: return "DimensionMismatch";
    case ErrorKind::InvalidArgument: return "InvalidArgument";
  }
  return "Unknown";
}

PersistError PersistError::from_index(const IndexError& error) {
  switch (error.code) {
    case IndexErrc::DuplicateId: return {ErrorKind::DuplicateId, error.message};
    case IndexErrc::IdNotFound: return {ErrorKind::IdNotFound, error.message};
    case IndexErrc::DimensionMismatch: return {ErrorKind::DimensionMismatch, error.message};
    case IndexErrc::InvalidArgument: return {ErrorKind::InvalidArgument, error.message};
  }
  return {ErrorKind::InvalidArgument, error.message};
}

std::string PersistError::to_string() const {
  return fmt::format("{}: {}", persist::to_string(kind_), message_);
}

PersistError PersistError::with_context(std::string_view context) const {
  return {kind_, fmt::format("{}: {}", context, message_)};
}

PersistException::PersistException(PersistError error)
    : error_(std::make_shared<const PersistError>(std::move(error))) {}

const char* PersistException::what() const noexcept { return error_->message().c_str(); }

}  // namespace iqdb::persist
