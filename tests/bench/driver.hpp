#pragma once

// Load drivers: N event-based actors (each with k requests in flight) or N
// threads (blocking), doing ops until a budget of ops or time is spent, and
// the operations they run (ctxstore clients, bare CAF echo, ...).

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>

#include "ctxstore/async_client.hpp"
#include "ctxstore/blocking_client.hpp"
#include "ctxstore/storage.hpp"
#include "model.hpp"
#include "stats.hpp"

namespace bench {

/// Budget of one repetition.
struct limits {
  uint64_t max_ops = 0;
  std::chrono::milliseconds max_time{0};
  bool latencies = true; // record one latency per op
};

inline limits limits_of(const options& opts) {
  return limits{opts.max_ops, opts.max_time, true};
}

/// What an op of an async client sees; lives inside its actor.
struct async_ctx {
  caf::event_based_actor* self = nullptr;
  std::optional<ctxstore::async_client> client; // none without a storage
  int index = 0;                                // of this client
  std::mt19937_64 rng;
};

struct async_client_state; // the driver's, per client

/// Called once per completed op (false: it failed). Two words and trivially
/// copyable, so that the handlers that capture it fit in a `std::function`
/// without an allocation: the harness costs little next to what it measures.
class done_fn {
public:
  done_fn(async_client_state* client, bench_clock::time_point issued) noexcept
      : client_(client), issued_(issued) {
    // nop
  }

  void operator()(bool ok) const;

private:
  async_client_state* client_;
  bench_clock::time_point issued_;
};
using async_op = std::function<void(async_ctx&, uint64_t seq, done_fn)>;

/// What an op of a blocking client sees; lives in its thread.
struct blocking_ctx {
  std::optional<ctxstore::blocking_client> client; // none without a storage
  std::optional<caf::scoped_actor> self;           // for bare CAF requests
  int index = 0;
  std::mt19937_64 rng;
};

/// Returns false when the op failed.
using blocking_op = std::function<bool(blocking_ctx&, uint64_t seq)>;

/// `clients` actors with `inflight` ops each in flight.
rep_sample run_async(caf::actor_system& sys, const ctxstore::storage& st,
                     int clients, int inflight, const limits& lim, async_op op);

/// `threads` threads, one op at a time each; `scoped` gives each a
/// scoped_actor (bare CAF requests).
rep_sample run_blocking(caf::actor_system& sys, const ctxstore::storage& st,
                        int threads, const limits& lim, blocking_op op,
                        bool scoped = false);

/// A fresh random id (fast, not cryptographic).
ctxstore::context_id random_id(std::mt19937_64& rng);

using ids_ptr = std::shared_ptr<std::vector<ctxstore::context_id>>;

/// Stores `n` contexts with random ids (from `seed`) and the reference value.
ids_ptr fill(caf::actor_system& sys, const ctxstore::storage& st, size_t n,
             uint64_t seed);

// -- the operations
// ------------------------------------------------------------

/// Picks the key of op `seq` of client `index`.
using key_fn = std::function<ctxstore::context_id(int index, uint64_t seq)>;

key_fn one_key(ctxstore::context_id id);
key_fn keys_round_robin(std::shared_ptr<std::vector<ctxstore::context_id>>);
/// Client i works on key i (2 clients on distinct keys).
key_fn key_per_client(std::shared_ptr<std::vector<ctxstore::context_id>>);

async_op async_snapshot(key_fn keys);
async_op async_cycle(key_fn keys);
/// A cycle that reads the value and changes nothing (no copy of T).
async_op async_cycle_read(key_fn keys);
/// What a store scenario stores each time: a copy of `value`, or `value`
/// itself, shared (no copy of T, as the Python reference stores a reference).
struct store_source {
  ctxstore::shared_value<session_ctx> value;
  bool shared = false;
};
using store_source_ptr = std::shared_ptr<const store_source>;
store_source_ptr copies_of(session_ctx value);
store_source_ptr shared(session_ctx value);

async_op async_store(key_fn keys, store_source_ptr source);
async_op async_store_new(store_source_ptr source);
async_op async_echo(caf::actor echo);

blocking_op blocking_snapshot(key_fn keys);
/// A snapshot as a shared read-only view (no copy of the value).
blocking_op blocking_view(key_fn keys);
blocking_op blocking_cycle(key_fn keys);
blocking_op blocking_store(key_fn keys, store_source_ptr source);
blocking_op blocking_store_new(store_source_ptr source);
blocking_op blocking_echo(caf::actor echo);

/// A trivial actor answering an int with the same int.
caf::actor spawn_echo(caf::actor_system& sys);

/// Drops `st` and waits until its registry is gone (with it, every context:
/// freeing them must not run on the other core during the next
/// measurement).
void stop_storage(caf::actor_system& sys, ctxstore::storage& st);

/// A repetition of a row that shows no fairness (where clients do not
/// compete, max/min completed ops per client means nothing).
inline rep_sample without_fairness(rep_sample rep) {
  rep.per_client.clear();
  rep.per_client_window.clear();
  return rep;
}

/// Runs `reps` repetitions of `once` and adds the row; `fair`: the row shows
/// max/min completed ops per client (meaningful where clients compete).
template <class F>
const result& measure(const options& opts, const std::string& key,
                      const std::string& name, F once, bool fair = false) {
  if (!opts.wants_row(key)) {
    static const result skipped;
    return skipped;
  }
  std::vector<rep_sample> reps;
  for (int i = 0; i < opts.reps; ++i)
    reps.push_back(fair ? once() : without_fairness(once()));
  return add_result(opts, summarize(key, name, reps));
}

/// `measure` for two rows whose repetitions alternate (a, b, a, b, ...): both
/// see the shared machine in the same moments, so a ratio of the two does not
/// depend on which of them a noisy second hit.
template <class F, class G>
void measure_alternating(const options& opts, const std::string& key_a,
                         const std::string& name_a, F once_a,
                         const std::string& key_b, const std::string& name_b,
                         G once_b) {
  auto want_a = opts.wants_row(key_a);
  auto want_b = opts.wants_row(key_b);
  std::vector<rep_sample> reps_a;
  std::vector<rep_sample> reps_b;
  for (int i = 0; i < opts.reps; ++i) {
    if (want_a)
      reps_a.push_back(without_fairness(once_a()));
    if (want_b)
      reps_b.push_back(without_fairness(once_b()));
  }
  if (want_a)
    add_result(opts, summarize(key_a, name_a, reps_a));
  if (want_b)
    add_result(opts, summarize(key_b, name_b, reps_b));
}

} // namespace bench
