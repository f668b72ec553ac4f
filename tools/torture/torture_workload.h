// The random workload of `iqdb-persist torture` and the model that says what
// the database must hold after it. A workload is a stream of operations
// (single inserts and removes, batches, checkpoints), a few of which the index
// refuses (an insert of a present id, a remove of an absent one). The stream
// is a pure function of the random generator and the content it starts from,
// so the parent process regenerates exactly what a killed child ran.
//
// The test suite's model (tests/support/wal_workload.h) drives an index of its own; this
// one drives the example FlatIndex at the user's dimension.
#ifndef IQDB_PERSIST_TOOLS_TORTURE_TORTURE_WORKLOAD_H_
#define IQDB_PERSIST_TOOLS_TORTURE_TORTURE_WORKLOAD_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "flat_index.h"
#include "iqdb/persist/error.h"
#include "iqdb/persist/write_batch.h"

namespace iqdb::tools {

// The same sequence for the same seed in every process of one binary, which is
// all the parent and its forked children need.
using TortureRng = std::mt19937_64;

// The index content: id -> vector.
using TortureState = std::map<std::uint64_t, std::vector<float>>;

struct TortureMutation {
  bool insert = true;
  std::uint64_t id = 0;
  std::vector<float> vector;  // insert only
};

struct TortureOp {
  enum class Kind { Insert, Remove, Batch, Checkpoint };
  Kind kind = Kind::Insert;
  std::vector<TortureMutation> mutations;  // one for Insert and Remove, 2..6 for Batch
};

// What an op does to the content: the mutations applied, and the index's
// refusal that stopped it (a refused mutation and the rest of its batch are
// not applied).
struct TortureOutcome {
  std::size_t applied = 0;
  std::optional<persist::ErrorKind> refusal;
};

// The next op of the stream on `state`, with vectors of `dim` floats.
TortureOp next_op(TortureRng& rng, const TortureState& state, std::size_t dim);

// Applies `op` to `state` as FlatIndex does: in order, until a refusal.
TortureOutcome apply_op(TortureState& state, const TortureOp& op);

// The WriteBatch of a Batch op.
persist::WriteBatch batch_of(const TortureOp& op);

// The content of `index`, whatever its slot order.
TortureState state_of(const examples::FlatIndex& index);

// "insert 17", "remove 4", "batch [insert 3, remove 9]", "checkpoint".
std::string describe(const TortureOp& op);

// How `got` differs from `expected`, id by id.
struct IdDifference {
  enum class Kind { Missing, Unexpected, VectorChanged };
  std::uint64_t id = 0;
  Kind kind = Kind::Missing;
};
std::vector<IdDifference> compare(const TortureState& expected, const TortureState& got);

}  // namespace iqdb::tools

#endif  // IQDB_PERSIST_TOOLS_TORTURE_TORTURE_WORKLOAD_H_
