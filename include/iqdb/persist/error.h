// PersistError and Result<T>: how every fallible iqdb-persist call reports
// failure. No exception crosses the public API; every error is a value.
// Callers who prefer exceptions opt in with value_or_throw() (below), which
// throws a PersistException carrying the PersistError.
//
// A PersistError has a kind to branch on and a message for people. Messages
// name the file and, where relevant, the section, the byte offset, and the
// expected and found values, e.g.
//   ChecksumMismatch: /data/idx.iqdb: section 'vectors' (offset 4096,
//   512000000 bytes): CRC32 expected 0x1a2b3c4d, found 0x5e6f7a8b
//
// Choosing a kind (first match wins):
//   NotFound            the snapshot file, or the directory it belongs in, does
//                       not exist: a load finds nothing to read, a save (and
//                       open_with() with the log) nowhere to write.
//   Io                  the operating system refused (open, write, fsync, mmap...).
//   BadMagic            the file does not start with "IQDBPRST": not ours.
//   UnsupportedVersion  ours, but a format version this build cannot read.
//   TruncatedHeader     the file ends inside the prefix or header.
//   TruncatedPayload    the file ends before a section does.
//   ChecksumMismatch    a CRC32 (prefix, header or section) does not match.
//   InvalidHeader       the header is intact (CRC matches) but malformed or
//                       inconsistent: bad FlatBuffer, overlapping sections...
//   InvalidMetric       the metric tag is not a known DistanceMetric.
//   UnsupportedMetric   a known metric the index cannot serve.
//   InvalidIndexType    the file holds a different index type than requested.
//   InvalidPayload      section bytes the index cannot rebuild from, header
//                       facts (dim, metric, count) the rebuilt index contradicts,
//                       or a compressed chunk (CRC intact) that does not decode
//                       to its length (docs/FORMAT.md, "Compressed sections").
//   Compression         not reported by this version (see InvalidPayload).
//   IndexBuild          the index failed to rebuild for a reason of its own.
//   Unsupported         a feature this build or this host does not offer.
//   InvalidConfig       a PersistConfig value is out of range.
//   AlreadyExists       open_with() found a database at the path and was not
//                       asked to overwrite it.
//   Locked              another writer (another process, or another object in
//                       this one) has the database open: one writer per
//                       database. The message names the holder.
//   DuplicateId, IdNotFound, DimensionMismatch, InvalidArgument
//                       the index refused a mutation (see iqdb/types.h).
#ifndef IQDB_PERSIST_ERROR_H_
#define IQDB_PERSIST_ERROR_H_

#include <boost/outcome/result.hpp>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "iqdb/types.h"

namespace iqdb::persist {

enum class ErrorKind {
  Io,
  NotFound,
  BadMagic,
  UnsupportedVersion,
  ChecksumMismatch,
  TruncatedHeader,
  TruncatedPayload,
  InvalidHeader,
  InvalidMetric,
  UnsupportedMetric,
  InvalidIndexType,
  InvalidPayload,
  Compression,
  IndexBuild,
  Unsupported,
  InvalidConfig,
  AlreadyExists,
  Locked,
  DuplicateId,
  IdNotFound,
  DimensionMismatch,
  InvalidArgument,
};

// The kind's name, e.g. "ChecksumMismatch".
std::string_view to_string(ErrorKind kind);

class PersistError {
 public:
  PersistError() = default;
  PersistError(ErrorKind kind, std::string message) : kind_(kind), message_(std::move(message)) {}

  // Maps an index's refusal onto the matching kind, keeping its message.
  static PersistError from_index(const IndexError& error);

  ErrorKind kind() const { return kind_; }
  const std::string& message() const { return message_; }

  // "Kind: message", for logs and command-line output.
  std::string to_string() const;

  // Returns this error with `context` prepended to the message ("context: message"),
  // e.g. the file path when an index reported a payload problem.
  PersistError with_context(std::string_view context) const;

 private:
  ErrorKind kind_ = ErrorKind::Io;
  std::string message_;
};

// The result of every fallible call: a value of type T, or a PersistError.
// Check it before taking the value: `if (!r) ... r.error() ...`, or
// IQDB_TRY / IQDB_TRY_ASSIGN below, or value_or_throw().
//
// value() on an error, like error() on a success, is a programming error and
// aborts the process: Boost.Outcome's policy::terminate calls std::abort() (in
// Boost 1.74; despite its name, not std::terminate(), so no terminate handler
// runs), throws nothing and runs no destructors. The policy is named because
// Boost's default for an error type of our own would not compile value().
template <class T>
using Result = boost::outcome_v2::result<T, PersistError, boost::outcome_v2::policy::terminate>;

// A successful Result<void>: `return success();`. (Boost.Outcome's own, so
// that success(value) works too, and so does code that names it in full.)
using boost::outcome_v2::success;

// Shorthand for building a failed Result: `return fail(ErrorKind::Io, "...")`.
inline auto fail(ErrorKind kind, std::string message) {
  return boost::outcome_v2::failure(PersistError(kind, std::move(message)));
}

// A PersistError as an exception, for callers who prefer exceptions (see
// value_or_throw()). The library itself never throws it.
class PersistException : public std::exception {
 public:
  explicit PersistException(PersistError error);
  // Copied, never moved from: a moved-from exception would hold no error.
  PersistException(const PersistException&) noexcept = default;
  PersistException& operator=(const PersistException&) noexcept = default;

  const PersistError& error() const noexcept { return *error_; }
  ErrorKind kind() const noexcept { return error_->kind(); }
  // The error's message (without its kind: error().to_string() has both).
  const char* what() const noexcept override;

 private:
  // Shared, so that copying the exception (as throwing and catching may) never
  // throws.
  std::shared_ptr<const PersistError> error_;
};

// The value of `result`, or a thrown PersistException holding its error:
//   auto db = value_or_throw(PersistedIndex<FlatIndex>::load(config));
//   value_or_throw(db.save());  // Result<void>: returns nothing, or throws
// It takes the Result by rvalue (it moves the value out): pass a call's
// result, or std::move(r).
template <class T>
T value_or_throw(Result<T>&& result) {
  if (!result) throw PersistException(std::move(result).error());
  return std::move(result).value();
}

}  // namespace iqdb::persist

// Early return on failure, for functions returning a Result of any type:
//   IQDB_TRY(file->sync());                          // Result<void>
//   IQDB_TRY_ASSIGN(auto header, read_file_header(p)); // declares `header`
// (Boost's own BOOST_OUTCOME_TRY changed its syntax between Boost releases;
// these spell the same thing the same way on every release.)
#define IQDB_TRY(...)                                                           \
  do {                                                                          \
    auto&& iqdb_try_result_ = (__VA_ARGS__);                                    \
    if (!iqdb_try_result_) {                                                    \
      return ::boost::outcome_v2::failure(std::move(iqdb_try_result_).error()); \
    }                                                                           \
  } while (false)

#define IQDB_TRY_ASSIGN(declaration, ...) \
  IQDB_TRY_ASSIGN_IMPL_(IQDB_TRY_CONCAT_(iqdb_try_, __COUNTER__), declaration, __VA_ARGS__)
#define IQDB_TRY_CONCAT_(a, b) IQDB_TRY_CONCAT_IMPL_(a, b)
#define IQDB_TRY_CONCAT_IMPL_(a, b) a##b
#define IQDB_TRY_ASSIGN_IMPL_(temporary, declaration, ...)                           \
  auto&& temporary = (__VA_ARGS__);                                                  \
  if (!temporary) return ::boost::outcome_v2::failure(std::move(temporary).error()); \
  declaration = std::move(temporary).value()

#endif  // IQDB_PERSIST_ERROR_H_
