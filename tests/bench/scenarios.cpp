// Scenarios 1-5 (in one process, blocking and async clients) and 7 (scale).

#include "scenarios.hpp"

#include <unistd.h>

#include <atomic>
#include <fstream>
#include <future>
#include <iostream>

#include <caf/all.hpp>

#include "driver.hpp"

namespace bench {

namespace {

using ctxstore::async_session;
using ctxstore::context_id;

int64_t counter_of(caf::actor_system& sys, const ctxstore::storage& st,
                   const context_id& id) {
  ctxstore::blocking_client client{sys, st};
  return client.snapshot<session_ctx>(id).counter;
}

// Runs `once` and checks that the counter of `id` grew by the number of
// completed cycles: a lost update counts as an error.
template <class F>
auto checked_cycles(caf::actor_system& sys, const ctxstore::storage& st,
                    context_id id, F once) {
  return [&sys, st, id, once] {
    auto before = counter_of(sys, st, id);
    auto s = once();
    auto grew = counter_of(sys, st, id) - before;
    if (grew != static_cast<int64_t>(s.ops)) {
      std::cout << "LOST UPDATES: " << s.ops << " cycles, counter +" << grew
                << std::endl;
      s.errors += 1;
    }
    return s;
  };
}

void snapshot_group(const options& opts, caf::actor_system& sys) {
  auto st = ctxstore::spawn_storage(sys);
  auto ids = fill(sys, st, 1, 1);
  auto keys = one_key(ids->front());
  auto lim = limits_of(opts);
  measure(opts, "snapshot.blocking.1", "snapshot, blocking, 1 thread", [&] {
    return run_blocking(sys, st, 1, lim, blocking_snapshot(keys));
  });
  measure(opts, "snapshot.view.blocking.1",
          "snapshot as a shared view (no copy), blocking, 1 thread", [&] {
            return run_blocking(sys, st, 1, lim, blocking_view(keys));
          });
  measure(opts, "snapshot.async.1", "snapshot, async, 1 in flight",
          [&] { return run_async(sys, st, 1, 1, lim, async_snapshot(keys)); });
  measure(opts, "snapshot.async.64", "snapshot, async, 64 in flight",
          [&] { return run_async(sys, st, 1, 64, lim, async_snapshot(keys)); });
}

void cycle_group(const options& opts, caf::actor_system& sys) {
  auto st = ctxstore::spawn_storage(sys);
  auto one = fill(sys, st, 1, 2);
  auto many = fill(sys, st, 1000, 3);
  auto key = one_key(one->front());
  auto lim = limits_of(opts);
  measure(opts, "cycle.blocking.1", "session cycle, blocking, 1 thread 1 key",
          checked_cycles(sys, st, one->front(), [&] {
            return run_blocking(sys, st, 1, lim, blocking_cycle(key));
          }));
  measure(opts, "cycle.async.1", "session cycle, async, 1 actor 1 key",
          checked_cycles(sys, st, one->front(), [&] {
            return run_async(sys, st, 1, 1, lim, async_cycle(key));
          }));
  auto spread = keys_round_robin(many);
  measure(opts, "cycle.blocking.64x1000",
          "session cycle, blocking, 64 threads over 1,000 keys", [&] {
            return run_blocking(sys, st, 64, lim, blocking_cycle(spread));
          });
  measure(opts, "cycle.async.64x1000",
          "session cycle, async, 64 actors over 1,000 keys",
          [&] { return run_async(sys, st, 64, 1, lim, async_cycle(spread)); });
  // The same without a write: what the cycle costs beyond the copy of T
  // that a session's first write makes (the commit others read stays as
  // it is).
  measure(
    opts, "cycle.async.64x1000.read",
    "session cycle, async, 64 actors over 1,000 keys, read only (no copy)",
    [&] { return run_async(sys, st, 64, 1, lim, async_cycle_read(spread)); });
}

void contention_group(const options& opts, caf::actor_system& sys) {
  auto st = ctxstore::spawn_storage(sys);
  auto one = fill(sys, st, 1, 4);
  auto key = one_key(one->front());
  auto lim = limits_of(opts);
  measure(opts, "contention.blocking.64",
          "contention, blocking, 64 threads cycling on ONE key",
          checked_cycles(sys, st, one->front(),
                         [&] {
                           return run_blocking(sys, st, 64, lim,
                                               blocking_cycle(key));
                         }),
          true);
  measure(opts, "contention.async.64",
          "contention, async, 64 actors cycling on ONE key",
          checked_cycles(
            sys, st, one->front(),
            [&] { return run_async(sys, st, 64, 1, lim, async_cycle(key)); }),
          true);
}

using release_atom = caf::atom_constant<caf::atom("brelease")>;

// Scenario 4: one actor holds a session on `id` for the whole measurement and
// 100 actors wait behind it; snapshots of `id` are measured meanwhile, each
// repetition followed by one on a free context of the same storage (the p99
// of a sub-microsecond read moves with the machine's noise: compared in the
// same moments, the ratio shows what the held context costs).
void held_group(const options& opts, caf::actor_system& sys) {
  auto st = ctxstore::spawn_storage(sys);
  auto one = fill(sys, st, 1, 5);
  auto id = one->front();
  auto free_key = one_key(fill(sys, st, 1, 6)->front());
  auto granted = std::make_shared<std::promise<bool>>();
  auto holder = sys.spawn([=](caf::event_based_actor* self) -> caf::behavior {
    auto client = std::make_shared<ctxstore::async_client>(self, st);
    auto sess = std::make_shared<async_session<session_ctx>>();
    client->acquire<session_ctx>(id).then(
      [=](async_session<session_ctx> s) {
        s->step = "uncommitted"; // snapshots must not see it
        *sess = std::move(s);
        granted->set_value(true);
      },
      [=](caf::error&) { granted->set_value(false); });
    return {[=](release_atom) {
      sess->release().then([=](uint64_t) { self->quit(); },
                           [=](caf::error&) { self->quit(); });
    }};
  });
  if (!granted->get_future().get()) {
    std::cout << "error: the holder got no session" << std::endl;
    return;
  }
  constexpr int n_waiters = 100;
  auto served = std::make_shared<std::atomic<int>>(0);
  auto all_served = std::make_shared<std::promise<void>>();
  auto issued = std::make_shared<std::atomic<int>>(0);
  auto all_issued = std::make_shared<std::promise<void>>();
  for (int i = 0; i < n_waiters; ++i)
    sys.spawn([=](caf::event_based_actor* self) {
      auto client = std::make_shared<ctxstore::async_client>(self, st);
      auto done = [=] {
        if (served->fetch_add(1) + 1 == n_waiters)
          all_served->set_value();
      };
      client->acquire<session_ctx>(id).then(
        [=](async_session<session_ctx> s) {
          s.release().then([=](uint64_t) { done(); },
                           [=](caf::error&) { done(); });
        },
        [=](caf::error&) { done(); });
      // An acquire of a context held in this process is queued in the
      // context's cell before `then` returns (checked below).
      if (issued->fetch_add(1) + 1 == n_waiters)
        all_issued->set_value();
    });
  auto issuing = all_issued->get_future();
  if (issuing.wait_for(std::chrono::seconds(60)) != std::future_status::ready)
    std::cout << "error: the waiting actors did not start" << std::endl;
  ctxstore::blocking_client probe{sys, st};
  auto queued = probe.stats().waiters;
  auto queued_text = " + " + std::to_string(queued) + " queued, ";
  auto key = one_key(id);
  auto lim = limits_of(opts);
  auto check = [&](rep_sample s) {
    // Still held, still queued, nothing uncommitted visible.
    auto v = probe.snapshot<session_ctx>(id);
    if (v.step == "uncommitted" || probe.stats().waiters < queued)
      s.errors += 1;
    return s;
  };
  measure_alternating(
    opts, "held.blocking.1",
    "snapshot while held" + queued_text + "blocking, 1 thread",
    [&] {
      return check(run_blocking(sys, st, 1, lim, blocking_snapshot(key)));
    },
    "held.free.blocking.1",
    "snapshot of a free context meanwhile, blocking, 1 thread",
    [&] { return run_blocking(sys, st, 1, lim, blocking_snapshot(free_key)); });
  measure_alternating(
    opts, "held.async.1",
    "snapshot while held" + queued_text + "async, 1 in flight",
    [&] {
      return check(run_async(sys, st, 1, 1, lim, async_snapshot(key)));
    },
    "held.free.async.1",
    "snapshot of a free context meanwhile, async, 1 in flight",
    [&] { return run_async(sys, st, 1, 1, lim, async_snapshot(free_key)); });
  caf::anon_send(holder, release_atom::value);
  auto fut = all_served->get_future();
  if (fut.wait_for(std::chrono::seconds(60)) != std::future_status::ready)
    std::cout << "error: the queued acquires were not all served" << std::endl;
  if (queued < n_waiters)
    std::cout << "error: only " << queued << " acquires were queued"
              << std::endl;
}

void store_group(const options& opts, caf::actor_system& sys) {
  // Each store copies the value (`store<T>(id, value)`), or stores one
  // shared value (`store(id, shared_value<T>)`: no copy of T, as the Python
  // reference stores a reference to one object).
  struct form {
    const char* key; // suffix of the scenario keys
    const char* label;
    store_source_ptr source;
  };
  const form forms[] = {{"", "", copies_of(make_ctx())},
                        {".shared", ", shared value", shared(make_ctx())}};
  // New contexts cost memory: a fresh storage per repetition, at most 20,000
  // contexts each (as the Python reference's a1).
  auto lim = limits_of(opts);
  lim.max_ops = std::min<uint64_t>(lim.max_ops, 20000);
  // Each repetition's storage is stopped (and its contexts freed) before the
  // next one starts.
  auto new_contexts = [&](const form& f, const std::string& key,
                          const std::string& label, auto run) {
    measure(opts, key + f.key, label + f.label, [&] {
      auto st = ctxstore::spawn_storage(sys);
      auto r = run(st);
      stop_storage(sys, st);
      return r;
    });
  };
  for (const auto& f : forms) {
    new_contexts(f, "store.blocking.new", "store new contexts, blocking",
                 [&](const ctxstore::storage& st) {
                   return run_blocking(sys, st, 1, lim,
                                       blocking_store_new(f.source));
                 });
    new_contexts(f, "store.async.new", "store new contexts, async, 1 in flight",
                 [&](const ctxstore::storage& st) {
                   return run_async(sys, st, 1, 1, lim,
                                    async_store_new(f.source));
                 });
    new_contexts(f, "store.async.new.64",
                 "store new contexts, async, 64 in flight",
                 [&](const ctxstore::storage& st) {
                   return run_async(sys, st, 1, 64, lim,
                                    async_store_new(f.source));
                 });
  }
  auto st = ctxstore::spawn_storage(sys);
  auto many = fill(sys, st, 1000, 6);
  auto keys = keys_round_robin(many);
  auto rlim = limits_of(opts);
  for (const auto& f : forms) {
    measure(opts, std::string{"store.blocking.replace"} + f.key,
            std::string{"store replacing (1,000 keys), blocking"} + f.label,
            [&] {
              return run_blocking(sys, st, 1, rlim,
                                  blocking_store(keys, f.source));
            });
    measure(opts, std::string{"store.async.replace"} + f.key,
            std::string{"store replacing (1,000 keys), async, 1 in flight"}
              + f.label,
            [&] {
              return run_async(sys, st, 1, 1, rlim,
                               async_store(keys, f.source));
            });
  }
}

} // namespace

void run_local(const options& opts, caf::actor_system& sys) {
  if (opts.wants("snapshot"))
    snapshot_group(opts, sys);
  if (opts.wants("cycle"))
    cycle_group(opts, sys);
  if (opts.wants("contention"))
    contention_group(opts, sys);
  if (opts.wants("held"))
    held_group(opts, sys);
  if (opts.wants("store"))
    store_group(opts, sys);
}

// -- scale
// ---------------------------------------------------------------------

namespace {

/// The same creation from 2 threads (the blocking client creates a context in
/// the storage's process without a message), into a storage of its own that
/// is gone afterwards.
void scale_create_blocking(const options& opts, caf::actor_system& sys) {
  const auto n = opts.scale;
  auto ids = std::make_shared<std::vector<context_id>>();
  ids->reserve(n);
  std::mt19937_64 rng{11};
  for (uint64_t i = 0; i < n; ++i)
    ids->push_back(random_id(rng));
  auto st = ctxstore::spawn_storage(sys);
  std::atomic<uint64_t> next{0};
  auto create = [&](blocking_ctx& c, uint64_t) {
    auto k = next.fetch_add(1);
    try {
      c.client->store<tiny>((*ids)[k], tiny{static_cast<int64_t>(k)});
      return true;
    } catch (const std::exception&) {
      return false;
    }
  };
  limits lim{n, std::chrono::minutes(5), false};
  auto rss0 = rss_bytes();
  auto s = run_blocking(sys, st, 2, lim, create);
  auto rss1 = rss_bytes();
  auto stored = ctxstore::blocking_client{sys, st}.stats().contexts;
  s.per_client.clear();
  s.per_client_window.clear();
  std::vector<rep_sample> one{s};
  auto r = summarize("scale.create.blocking",
                     "scale: create " + std::to_string(n)
                       + " small contexts, blocking, 2 threads",
                     one);
  r.value = s.seconds;
  r.unit = "s total";
  r.note = std::to_string(stored) + " contexts stored, "
           + std::to_string((rss1 - rss0) / static_cast<int64_t>(n))
           + " B resident per context";
  if (stored != n)
    r.errors += 1;
  add_result(opts, r);
}

} // namespace

void run_scale(const options& opts, caf::actor_system& sys) {
  const auto n = opts.scale;
  auto ids = std::make_shared<std::vector<context_id>>();
  ids->reserve(n);
  std::mt19937_64 rng{7};
  for (uint64_t i = 0; i < n; ++i)
    ids->push_back(random_id(rng));
  auto st = ctxstore::spawn_storage(sys);
  auto next = std::make_shared<std::atomic<uint64_t>>(0);
  auto create = [ids, next](async_ctx& c, uint64_t, done_fn done) {
    auto k = next->fetch_add(1);
    c.client->store<tiny>((*ids)[k], tiny{static_cast<int64_t>(k)})
      .then([done](uint64_t) { done(true); },
            [done](caf::error&) { done(false); });
  };
  limits lim{n, std::chrono::minutes(5), false};
  auto rss0 = rss_bytes();
  auto s = run_async(sys, st, 2, 64, lim, create);
  ctxstore::blocking_client probe{sys, st};
  auto stored = probe.stats().contexts;
  auto rss1 = rss_bytes();
  s.per_client.clear();
  s.per_client_window.clear();
  std::vector<rep_sample> one{s};
  auto r = summarize("scale.create",
                     "scale: create " + std::to_string(n)
                       + " small contexts, async, 2 actors x 64 in flight",
                     one);
  r.value = s.seconds;
  r.unit = "s total";
  r.note = std::to_string(stored) + " contexts stored";
  if (stored != n)
    r.errors += 1;
  add_result(opts, r);
  result mem;
  mem.key = "scale.rss_per_context";
  mem.name = "scale: resident memory per context (statm delta / n)";
  mem.value = static_cast<double>(rss1 - rss0) / static_cast<double>(n);
  mem.unit = "B per context";
  mem.reps = 1;
  mem.note
    = "the value itself: sizeof(tiny) = " + std::to_string(sizeof(tiny)) + " B";
  add_result(opts, mem);
  scale_create_blocking(opts, sys);
  // Snapshots of random existing contexts.
  auto random_key = [ids](int index, uint64_t seq) {
    auto h = (seq + 1) * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(index);
    return (*ids)[(h >> 17) % ids->size()];
  };
  auto snap_async = [random_key](async_ctx& c, uint64_t seq, done_fn done) {
    c.client->snapshot<tiny>(random_key(c.index, seq))
      .then([done](const tiny&) { done(true); },
            [done](caf::error&) { done(false); });
  };
  auto snap_blocking = [random_key](blocking_ctx& c, uint64_t seq) {
    try {
      c.client->snapshot<tiny>(random_key(c.index, seq));
      return true;
    } catch (const std::exception&) {
      return false;
    }
  };
  auto slim = limits_of(opts);
  measure(opts, "scale.snapshot.blocking.1",
          "scale: snapshot of random contexts, blocking, 1 thread",
          [&] { return run_blocking(sys, st, 1, slim, snap_blocking); });
  measure(opts, "scale.snapshot.async.64",
          "scale: snapshot of random contexts, async, 64 in flight",
          [&] { return run_async(sys, st, 1, 64, slim, snap_async); });
  // Lookups of unknown ids must leave nothing behind.
  auto unknown = [](async_ctx& c, uint64_t, done_fn done) {
    c.client->snapshot<tiny>(random_id(c.rng))
      .then([done](const tiny&) { done(false); },
            [done](caf::error& err) {
              done(ctxstore::to_errc(err) == ctxstore::errc::no_such_context);
            });
  };
  uint64_t lookups = std::min<uint64_t>(100000, n);
  limits ulim{lookups / 10, std::chrono::minutes(1), false};
  run_async(sys, st, 1, 64, ulim, unknown); // warm-up: allocator caches
  ulim.max_ops = lookups;
  auto rss2 = rss_bytes();
  auto u = run_async(sys, st, 1, 64, ulim, unknown);
  auto rss3 = rss_bytes();
  auto after = probe.stats();
  result un;
  un.key = "scale.rss_per_unknown";
  un.name = "scale: memory kept per snapshot of an unknown id";
  un.ops_per_s = u.seconds > 0 ? static_cast<double>(u.ops) / u.seconds : 0;
  un.value = std::max(0.0, static_cast<double>(rss3 - rss2)
                             / static_cast<double>(lookups));
  un.unit = "B per lookup";
  un.reps = 1;
  un.errors
    = u.errors + (after.contexts != n ? 1 : 0) + (after.owners > n ? 1 : 0);
  un.note = std::to_string(lookups)
            + " lookups; owners afterwards: " + std::to_string(after.owners);
  add_result(opts, un);
}

} // namespace bench
