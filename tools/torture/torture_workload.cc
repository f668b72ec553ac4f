#include "torture/torture_workload.h"

#include <iterator>
#include <utility>

#include <fmt/format.h>

namespace iqdb::tools {
namespace {

using Kind = TortureOp::Kind;

// Above this many vectors, removes are favoured, so the database stays small
// and each iteration's load stays fast.
constexpr std::size_t kLargeState = 500;

std::uint64_t below(TortureRng& rng, std::uint64_t bound) { return rng() % bound; }

// An id not in `state`, from a range small enough that removed ids come back.
std::uint64_t absent_id(TortureRng& rng, const TortureState& state) {
  const std::uint64_t range = 2 * state.size() + 16;
  for (;;) {
    const std::uint64_t id = 1 + below(rng, range);
    if (!state.contains(id)) return id;
  }
}

// Precondition: !state.empty().
std::uint64_t present_id(TortureRng& rng, const TortureState& state) {
  return std::next(state.begin(), static_cast<std::ptrdiff_t>(below(rng, state.size())))->first;
}

std::vector<float> random_vector(TortureRng& rng, std::size_t dim) {
  std::vector<float> vector(dim);
  for (float& v : vector) v = static_cast<float>(rng() >> 40) / static_cast<float>(1 << 24) - 0.5f;
  return vector;
}

std::optional<persist::ErrorKind> apply_mutation(TortureState& state, const TortureMutation& m) {
  if (m.insert) {
    if (state.emplace(m.id, m.vector).second) return std::nullopt;
    return persist::ErrorKind::DuplicateId;
  }
  if (state.erase(m.id) == 1) return std::nullopt;
  return persist::ErrorKind::IdNotFound;
}

// A mutation the index refuses on `state`.
TortureMutation refused(TortureRng& rng, const TortureState& state, std::size_t dim) {
  if (!state.empty() && below(rng, 2) == 0) {
    return {true, present_id(rng, state), random_vector(rng, dim)};
  }
  return {false, absent_id(rng, state), {}};
}

// A mutation the index accepts on `state`: an insert or a remove, removes
// being favoured once the state is large.
TortureMutation accepted(TortureRng& rng, const TortureState& state, std::size_t dim) {
  const std::uint64_t insert_percent = state.size() > kLargeState ? 30 : 60;
  if (state.empty() || below(rng, 100) < insert_percent) {
    return {true, absent_id(rng, state), random_vector(rng, dim)};
  }
  return {false, present_id(rng, state), {}};
}

}  // namespace

TortureOp next_op(TortureRng& rng, const TortureState& state, std::size_t dim) {
  const std::uint64_t roll = below(rng, 100);
  if (roll < 3) return {Kind::Checkpoint, {}};
  if (roll < 20) {
    // Each mutation is drawn on the content the ones before it leave; one in
    // ten is refused, which cuts the batch short there.
    TortureOp batch{Kind::Batch, {}};
    TortureState scratch;  // the ids only: drawing needs no vectors
    for (const auto& entry : state) {
      scratch.emplace_hint(scratch.end(), entry.first, std::vector<float>());
    }
    const std::uint64_t size = 2 + below(rng, 5);
    for (std::uint64_t i = 0; i < size; ++i) {
      batch.mutations.push_back(below(rng, 10) == 0 ? refused(rng, scratch, dim)
                                                    : accepted(rng, scratch, dim));
      (void)apply_mutation(scratch, batch.mutations.back());
    }
    return batch;
  }
  // 4% of single ops are refused.
  TortureMutation single = roll < 24 ? refused(rng, state, dim) : accepted(rng, state, dim);
  const Kind kind = single.insert ? Kind::Insert : Kind::Remove;
  return {kind, {std::move(single)}};
}

TortureOutcome apply_op(TortureState& state, const TortureOp& op) {
  TortureOutcome outcome;
  for (const TortureMutation& m : op.mutations) {
    outcome.refusal = apply_mutation(state, m);
    if (outcome.refusal) break;
    ++outcome.applied;
  }
  return outcome;
}

persist::WriteBatch batch_of(const TortureOp& op) {
  persist::WriteBatch batch;
  for (const TortureMutation& m : op.mutations) {
    if (m.insert) {
      batch.insert(m.id, m.vector);
    } else {
      batch.remove(m.id);
    }
  }
  return batch;
}

TortureState state_of(const examples::FlatIndex& index) {
  TortureState state;
  index.for_each([&state](std::uint64_t id, std::span<const float> vector) {
    state.emplace(id, std::vector<float>(vector.begin(), vector.end()));
  });
  return state;
}

std::string describe(const TortureOp& op) {
  std::vector<std::string> parts;
  for (const TortureMutation& m : op.mutations) {
    parts.push_back(fmt::format("{} {}", m.insert ? "insert" : "remove", m.id));
  }
  switch (op.kind) {
    case Kind::Checkpoint: return "checkpoint";
    case Kind::Batch: return fmt::format("batch [{}]", fmt::join(parts, ", "));
    default: return parts.front();
  }
}

std::vector<IdDifference> compare(const TortureState& expected, const TortureState& got) {
  std::vector<IdDifference> differences;
  for (const auto& [id, vector] : expected) {
    const auto found = got.find(id);
    if (found == got.end()) {
      differences.push_back({id, IdDifference::Kind::Missing});
    } else if (found->second != vector) {
      differences.push_back({id, IdDifference::Kind::VectorChanged});
    }
  }
  for (const auto& entry : got) {
    if (!expected.contains(entry.first)) {
      differences.push_back({entry.first, IdDifference::Kind::Unexpected});
    }
  }
  return differences;
}

}  // namespace iqdb::tools
