// A randomized history test (docs/design.md §3): client threads (blocking_client)
// and event-based actors (async_client) run seeded random sequences of
// operations on a few shared contexts while a killer actor kills actors that
// wait for, hold or are committing a context. Every answer is recorded, and
// the whole history is checked at the end against the sequential rules:
//
// - each context's committed versions form one sequence: one version, one
//   value; a written value has one version wherever it is seen;
// - each client sees a context's versions in increasing order;
// - an acknowledged write is visible in every snapshot (and grant) that
//   starts after its acknowledgement, until a later version replaces it;
// - no snapshot shows a value that was never sent for commit (uncommitted
//   changes of aborted, unwound or killed sessions) nor a refused write;
// - the counter context counts exactly the acknowledged increments, plus at
//   most the in-doubt ones (sent by an actor killed before their answer).
//
// Every value is a cart whose `owner` is a unique tag naming the write and
// whose `total` is what was written. The seed is printed ("history seed: N");
// CTXSTORE_HISTORY_SEED=N replays one seed (the operations, not the exact
// interleaving of threads).

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <future>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "fixture.hpp"

using namespace ctxstore;
using namespace std::chrono_literals;

namespace {

// -- sizes --------------------------------------------------------------------

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr int thread_clients = 2;
constexpr int thread_ops = 300;
constexpr int actor_runs = 20;
constexpr int actor_ops = 40;
constexpr int seeds_per_run = 1;
#else
constexpr int thread_clients = 3;
constexpr int thread_ops = 3000;
constexpr int actor_runs = 150;
constexpr int actor_ops = 80;
constexpr int seeds_per_run = 3;
#endif
constexpr int concurrent_actors = 5;

/// How long any client or wait may take before the test gives up.
constexpr auto patience = std::chrono::seconds{30};

constexpr int contexts = 4;
/// Only ever incremented by one per version: total == version - 1.
constexpr int counter_ctx = 0;
/// Also erased and re-created, so its versions start over.
constexpr int volatile_ctx = 3;

/// What the killer was told an actor is doing.
enum class doing : int { waiting = 0, holding = 1, committing = 2 };

// -- the model ----------------------------------------------------------------

/// One write (store, commit or committing release) sent for commit.
struct write_rec {
  int ctx = 0;
  int client = 0;
  int64_t total = 0;
  uint64_t sent_at = 0;
  enum { sent, acked, refused } state = sent;
  uint64_t acked_at = 0;
  std::optional<uint64_t> version; // from the answer, or seen in a snapshot
};

/// A (version, value) that a client saw: a snapshot, a grant or an answer.
struct observation {
  int client = 0;
  int ctx = 0;
  uint64_t version = 0;
  std::string tag;
  int64_t total = 0;
  uint64_t started_at = 0; // when the request was sent
  const char* what = "";
};

struct erase_rec {
  uint64_t sent_at = 0;
  uint64_t acked_at = 0;
};

/// The recorded history; every client records into it as it goes. Times
/// are positions in one global order of events (a logical clock).
class history {
public:
  uint64_t now() {
    std::lock_guard<std::mutex> guard{mtx_};
    return ++clock_;
  }

  /// Registers a write of `total` that is about to be sent; returns its tag.
  std::string sending(int client, int ctx, int64_t total) {
    std::lock_guard<std::mutex> guard{mtx_};
    auto tag = "c" + std::to_string(client) + "." + std::to_string(++serial_);
    write_rec w;
    w.ctx = ctx;
    w.client = client;
    w.total = total;
    w.sent_at = ++clock_;
    writes_.emplace(tag, w);
    return tag;
  }

  /// A tag for changes that are never sent for commit.
  std::string uncommitted(int client) {
    std::lock_guard<std::mutex> guard{mtx_};
    return "u" + std::to_string(client) + "." + std::to_string(++serial_);
  }

  /// The write was acknowledged (with its version, if the answer has one).
  void acked(int client, const std::string& tag,
             std::optional<uint64_t> version) {
    std::lock_guard<std::mutex> guard{mtx_};
    auto& w = writes_.at(tag);
    w.state = write_rec::acked;
    w.acked_at = ++clock_;
    if (version) {
      w.version = version;
      observations_.push_back(
        observation{client, w.ctx, *version, tag, w.total, w.sent_at, "ack"});
    }
  }

  /// The write was refused: it must never be visible.
  void refused(const std::string& tag) {
    std::lock_guard<std::mutex> guard{mtx_};
    writes_.at(tag).state = write_rec::refused;
  }

  void observed(int client, int ctx, uint64_t started_at,
                const versioned<cart>& x, const char* what) {
    std::lock_guard<std::mutex> guard{mtx_};
    observations_.push_back(observation{client, ctx, x.version, x.value.owner,
                                        x.value.total, started_at, what});
  }

  void erased(uint64_t sent_at) {
    std::lock_guard<std::mutex> guard{mtx_};
    erases_.push_back(erase_rec{sent_at, ++clock_});
  }

  /// An error that the rules allow (timeout, a missing volatile context).
  void expected(errc code) {
    std::lock_guard<std::mutex> guard{mtx_};
    ++expected_[code];
  }

  void unexpected(int client, const std::string& what) {
    std::lock_guard<std::mutex> guard{mtx_};
    violations_.push_back("client " + std::to_string(client)
                          + ": unexpected error: " + what);
  }

  void killed(doing d) {
    std::lock_guard<std::mutex> guard{mtx_};
    ++kills_[static_cast<int>(d)];
  }

  /// Checks the whole history; returns the broken rules, one per line.
  std::vector<std::string> check();

  /// Acknowledged and in-doubt writes (all increments) of the counter.
  std::pair<int64_t, int64_t> counter_writes() const {
    std::lock_guard<std::mutex> guard{mtx_};
    int64_t acked = 0;
    int64_t in_doubt = 0;
    for (auto& kv : writes_) {
      auto& w = kv.second;
      if (w.ctx != counter_ctx || w.client == 0) // 0: the initial store
        continue;
      acked += w.state == write_rec::acked ? 1 : 0;
      in_doubt += w.state == write_rec::sent ? 1 : 0;
    }
    return {acked, in_doubt};
  }

  std::string summary() const {
    std::lock_guard<std::mutex> guard{mtx_};
    std::ostringstream out;
    size_t acked = 0;
    size_t in_doubt = 0;
    for (auto& kv : writes_) {
      acked += kv.second.state == write_rec::acked ? 1 : 0;
      in_doubt += kv.second.state == write_rec::sent ? 1 : 0;
    }
    auto count = [&](errc c) {
      auto i = expected_.find(c);
      return i == expected_.end() ? 0 : i->second;
    };
    out << writes_.size() << " writes (" << acked << " acked, " << in_doubt
        << " in doubt), " << observations_.size() << " observations, "
        << erases_.size() << " erases, kills: " << kills_[0] << " waiting, "
        << kills_[1] << " holding, " << kills_[2] << " committing; "
        << count(errc::timeout) << " timeouts, " << count(errc::no_such_context)
        << " missing";
    return out.str();
  }

private:
  mutable std::mutex mtx_;
  uint64_t clock_ = 0;
  uint64_t serial_ = 0;
  std::map<std::string, write_rec> writes_;
  std::vector<observation> observations_;
  std::vector<erase_rec> erases_;
  std::map<errc, int> expected_;
  int kills_[3] = {0, 0, 0};
  std::vector<std::string> violations_;
};

std::string show(const observation& o) {
  return std::string{o.what} + " by client " + std::to_string(o.client)
         + " of ctx " + std::to_string(o.ctx) + ": version "
         + std::to_string(o.version) + " value " + o.tag + "/"
         + std::to_string(o.total);
}

std::vector<std::string> history::check() {
  std::lock_guard<std::mutex> guard{mtx_};
  auto bad = violations_;
  // A seen value is a write that was sent, not refused, has what was
  // written, and has one version wherever it is seen.
  for (auto& o : observations_) {
    auto i = writes_.find(o.tag);
    if (i == writes_.end()) {
      bad.push_back(show(o) + ": a value never sent for commit");
      continue;
    }
    auto& w = i->second;
    if (w.ctx != o.ctx || w.total != o.total)
      bad.push_back(show(o) + ": not what " + o.tag + " wrote");
    if (w.state == write_rec::refused)
      bad.push_back(show(o) + ": a refused write");
    if (!w.version)
      w.version = o.version;
    else if (*w.version != o.version)
      bad.push_back(show(o) + ": " + o.tag + " also has version "
                    + std::to_string(*w.version));
  }
  // The counter: every version adds exactly one.
  for (auto& o : observations_)
    if (o.ctx == counter_ctx && o.total + 1 != static_cast<int64_t>(o.version))
      bad.push_back(show(o) + ": the counter is not version - 1");
  // One version, one value (the volatile context starts over when erased).
  std::map<std::pair<int, uint64_t>, std::string> by_version;
  for (auto& [tag, w] : writes_) {
    if (!w.version || w.ctx == volatile_ctx)
      continue;
    auto [i, added]
      = by_version.emplace(std::make_pair(w.ctx, *w.version), tag);
    if (!added)
      bad.push_back("ctx " + std::to_string(w.ctx) + " version "
                    + std::to_string(*w.version) + " is both " + i->second
                    + " and " + tag);
  }
  // Each client sees increasing versions.
  std::map<std::pair<int, int>, const observation*> last;
  for (auto& o : observations_) {
    if (o.ctx == volatile_ctx)
      continue;
    auto& prev = last[{o.client, o.ctx}];
    if (prev
        && (o.version < prev->version
            || (o.version == prev->version && o.tag != prev->tag)))
      bad.push_back(show(o) + " after " + show(*prev));
    prev = &o;
  }
  // An acknowledged write is visible until replaced: nothing that starts
  // after its acknowledgement sees an older version.
  std::vector<std::vector<std::pair<uint64_t, uint64_t>>> acks(contexts);
  for (auto& [tag, w] : writes_)
    if (w.state == write_rec::acked && w.version)
      acks[w.ctx].emplace_back(w.acked_at, *w.version);
  for (auto& a : acks) {
    std::sort(a.begin(), a.end());
    for (size_t k = 1; k < a.size(); ++k)
      a[k].second = std::max(a[k].second, a[k - 1].second);
  }
  for (auto& o : observations_) {
    if (o.ctx == volatile_ctx)
      continue;
    auto& a = acks[o.ctx];
    auto i = std::lower_bound(a.begin(), a.end(),
                              std::make_pair(o.started_at, uint64_t{0}));
    if (i != a.begin() && std::prev(i)->second > o.version)
      bad.push_back(show(o) + ": older than acknowledged version "
                    + std::to_string(std::prev(i)->second));
  }
  // The volatile context: nothing that starts after an acknowledged erase
  // sees a write acknowledged before that erase was sent.
  for (auto& o : observations_) {
    if (o.ctx != volatile_ctx)
      continue;
    auto i = writes_.find(o.tag);
    if (i == writes_.end() || i->second.state != write_rec::acked)
      continue;
    for (auto& e : erases_)
      if (e.acked_at < o.started_at && i->second.acked_at < e.sent_at) {
        bad.push_back(show(o) + ": erased before");
        break;
      }
  }
  return bad;
}

using rng = std::mt19937_64;

rng rng_for(uint64_t seed, int client) {
  std::seed_seq seq{static_cast<uint32_t>(seed),
                    static_cast<uint32_t>(seed >> 32),
                    static_cast<uint32_t>(client)};
  return rng{seq};
}

int roll(rng& r, int n) {
  return static_cast<int>(r() % static_cast<uint64_t>(n));
}

bool allowed(errc code, int ctx) {
  // Not errc::deadlock: these clients hold one context at a time (an
  // actor's release of its last one may still be on its way when it
  // acquires the next: no cycle, see context::holder_leaving).
  return code == errc::timeout
         || (code == errc::no_such_context && ctx == volatile_ctx);
}

// -- client threads -----------------------------------------------------------

struct unwinding {};

/// One client thread: `ops` random operations through a blocking_client.
void run_thread(fixture& f, history& h, const std::vector<context_id>& ids,
                int client, uint64_t seed, int ops) {
  blocking_client c{f.sys, f.store};
  auto r = rng_for(seed, client);
  for (int n = 0; n < ops; ++n) {
    int ctx = roll(r, contexts);
    auto& id = ids[ctx];
    std::string pending; // a write sent and not answered yet
    auto ack = [&](std::optional<uint64_t> version) {
      h.acked(client, pending, version);
      pending.clear();
    };
    try {
      switch (roll(r, 10)) {
      case 0:
      case 1: { // snapshot
        auto t = h.now();
        h.observed(client, ctx, t, c.snapshot_versioned<cart>(id), "snapshot");
        break;
      }
      case 2: { // update
        c.update<cart>(id, [&](cart& x) {
          x.total += 1;
          pending = h.sending(client, ctx, x.total);
          x.owner = pending;
        });
        ack(std::nullopt);
        break;
      }
      case 3: { // store (never on the counter)
        if (ctx == counter_ctx)
          break;
        int64_t total = roll(r, 1000);
        pending = h.sending(client, ctx, total);
        c.store<cart>(id, cart{pending, {}, {}, total});
        ack(std::nullopt);
        break;
      }
      case 4: { // erase (only the volatile context)
        if (ctx != volatile_ctx)
          break;
        auto t = h.now();
        c.erase<cart>(id);
        h.erased(t);
        break;
      }
      default: { // a session, maybe with a deadline
        auto t = h.now();
        auto s = roll(r, 3) == 0 ? c.acquire<cart>(id, roll(r, 3) * 1ms)
                                 : c.acquire<cart>(id);
        h.observed(client, ctx, t, versioned<cart>{*s, s.version()}, "grant");
        bool dirty = false; // one increment since the last commit
        auto increment = [&](cart& x) {
          if (!dirty)
            x.total += 1;
          dirty = false;
          pending = h.sending(client, ctx, x.total);
          x.owner = pending;
        };
        for (int steps = roll(r, 4); steps > 0; --steps) {
          switch (roll(r, 3)) {
          case 0: // commit
            increment(*s);
            s.commit();
            ack(s.version());
            break;
          case 1: { // a nested level
            auto inner = c.acquire<cart>(id);
            if (!dirty) // at most one increment per version
              inner->total += 1;
            dirty = true;
            if (roll(r, 2) == 0) {
              increment(*inner);
              inner.commit();
              ack(inner.version());
            }
            inner.release(); // ends only this level
            break;
          }
          default: { // the holder's own store
            if (ctx == counter_ctx)
              break;
            int64_t total = roll(r, 1000);
            pending = h.sending(client, ctx, total);
            c.store<cart>(id, cart{pending, {}, {}, total});
            ack(s.version());
            dirty = false;
            break;
          }
          }
        }
        switch (roll(r, 5)) {
        case 0:   // abort
        case 1: { // leave by an exception
          s->owner = h.uncommitted(client);
          s->total += 1000;
          auto t2 = h.now();
          h.observed(client, ctx, t2, c.snapshot_versioned<cart>(id),
                     "holder's snapshot");
          if (roll(r, 2) == 0) {
            s.abort();
            break;
          }
          try {
            auto moved = std::move(s);
            throw unwinding{};
          } catch (const unwinding&) {
            // the session's destructor aborted it
          }
          break;
        }
        case 2: { // leave the scope (the destructor releases)
          auto expected = s.version() + 1;
          increment(*s);
          s = session<cart>{};
          ack(expected);
          break;
        }
        case 3: // the holder erases (only the volatile context)
          if (ctx == volatile_ctx) {
            auto t2 = h.now();
            c.erase<cart>(id);
            h.erased(t2);
            break;
          }
          [[fallthrough]];
        default: { // release
          auto expected = s.version() + 1;
          increment(*s);
          s.release();
          ack(expected);
          break;
        }
        }
        break;
      }
      }
    } catch (const ctxstore::error& e) {
      if (!pending.empty())
        h.refused(pending);
      if (allowed(e.code(), ctx))
        h.expected(e.code());
      else
        h.unexpected(client, e.what());
    }
  }
}

// -- actors -------------------------------------------------------------------

/// One event-based client: `ops` random operations through an async_client,
/// one at a time. It tells the killer when it waits, holds or commits.
class actor_client : public std::enable_shared_from_this<actor_client> {
private:
  /// Wraps a continuation so that it runs only while this client lives.
  template <class F>
  auto resume(F fn) {
    std::weak_ptr<actor_client> weak = shared_from_this();
    return [weak, fn](auto&&... xs) mutable {
      if (auto self = weak.lock())
        fn(xs...);
    };
  }

  /// Records a failure (refusing the write `tag`, if any) and moves on.
  std::function<void(caf::error&)> failed(std::shared_ptr<std::string> tag
                                          = nullptr) {
    return resume([this, tag](caf::error& err) {
      if (tag && !tag->empty())
        h_.refused(*tag);
      auto code = to_errc(err);
      if (allowed(code, ctx_))
        h_.expected(code);
      else
        h_.unexpected(client_, describe(err));
      next();
    });
  }

  void tell(doing d) {
    self_->send(killer_, static_cast<int>(d),
                caf::actor_cast<caf::actor>(self_));
  }

  /// Increments the working copy once since the last commit and tags it.
  std::shared_ptr<std::string> increment(cart& x) {
    if (!dirty_)
      x.total += 1;
    dirty_ = false;
    auto tag
      = std::make_shared<std::string>(h_.sending(client_, ctx_, x.total));
    x.owner = *tag;
    return tag;
  }

public:
  actor_client(caf::event_based_actor* self, storage st, history& h,
               std::vector<context_id> ids, caf::actor killer, int client,
               uint64_t seed, int ops)
      : self_(self), ac_(self, std::move(st)), h_(h), ids_(std::move(ids)),
        killer_(std::move(killer)), client_(client), r_(rng_for(seed, client)),
        left_(ops) {
    // nop
  }

  /// Starts the next operation, or quits after the last one.
  void next() {
    s_ = async_session<cart>{};
    dirty_ = false;
    if (left_-- == 0) {
      self_->quit();
      return;
    }
    ctx_ = roll(r_, contexts);
    auto& id = ids_[ctx_];
    switch (roll(r_, 10)) {
    case 0:
    case 1: { // snapshot
      auto t = h_.now();
      ac_.snapshot_versioned<cart>(id).then(
        resume([this, t](versioned<cart>& x) {
          h_.observed(client_, ctx_, t, x, "snapshot");
          next();
        }),
        failed());
      break;
    }
    case 2: { // update
      auto tag = std::make_shared<std::string>();
      auto sending = [this, tag](cart& x) {
        x.total += 1;
        *tag = h_.sending(client_, ctx_, x.total);
        x.owner = *tag;
      };
      ac_.update<cart>(id, sending)
        .then(resume([this, tag](uint64_t v) {
                h_.acked(client_, *tag, v);
                next();
              }),
              failed(tag));
      break;
    }
    case 3: { // store (never on the counter)
      if (ctx_ == counter_ctx)
        return next();
      int64_t total = roll(r_, 1000);
      auto tag
        = std::make_shared<std::string>(h_.sending(client_, ctx_, total));
      ac_.store<cart>(id, cart{*tag, {}, {}, total})
        .then(resume([this, tag](uint64_t v) {
                h_.acked(client_, *tag, v);
                next();
              }),
              failed(tag));
      break;
    }
    case 4: { // erase (only the volatile context)
      if (ctx_ != volatile_ctx)
        return next();
      auto t = h_.now();
      ac_.erase<cart>(id).then(resume([this, t](bool) {
                                 h_.erased(t);
                                 next();
                               }),
                               failed());
      break;
    }
    default: { // a session, maybe with a deadline
      auto t = h_.now();
      auto wait = roll(r_, 3) == 0 ? roll(r_, 3) * 1ms : -1ms;
      tell(doing::waiting);
      ac_.acquire<cart>(id, wait).then(
        resume([this, t](async_session<cart>& s) {
          s_ = s;
          h_.observed(client_, ctx_, t, versioned<cart>{*s_, s_.version()},
                      "grant");
          tell(doing::holding);
          step(roll(r_, 4));
        }),
        failed());
      break;
    }
    }
  }

private:
  /// The holder's remaining `steps`, then the end of its session.
  void step(int steps) {
    if (steps == 0)
      return finish();
    auto& id = ids_[ctx_];
    switch (roll(r_, 3)) {
    case 0: { // commit
      auto tag = increment(*s_);
      s_.commit().then(resume([this, tag, steps](uint64_t v) {
                         h_.acked(client_, *tag, v);
                         step(steps - 1);
                       }),
                       failed(tag));
      tell(doing::committing);
      break;
    }
    case 1: { // a nested level
      ac_.acquire<cart>(id).then(
        resume([this, steps](async_session<cart>& inner) {
          if (!dirty_) // at most one increment per version
            inner->total += 1;
          dirty_ = true;
          if (roll(r_, 2) == 0) {
            inner.release().then(
              resume([this, steps](uint64_t) { step(steps - 1); }), failed());
            return;
          }
          auto tag = increment(*inner);
          inner.commit().then(
            resume([this, tag, inner, steps](uint64_t v) mutable {
              h_.acked(client_, *tag, v);
              inner.release().then(
                resume([this, steps](uint64_t) { step(steps - 1); }), failed());
            }),
            failed(tag));
        }),
        failed());
      break;
    }
    default: { // the holder's own store
      if (ctx_ == counter_ctx)
        return step(steps - 1);
      int64_t total = roll(r_, 1000);
      auto tag
        = std::make_shared<std::string>(h_.sending(client_, ctx_, total));
      ac_.store<cart>(id, cart{*tag, {}, {}, total})
        .then(resume([this, tag, steps](uint64_t v) {
                h_.acked(client_, *tag, v);
                dirty_ = false;
                step(steps - 1);
              }),
              failed(tag));
      break;
    }
    }
  }

  void finish() {
    auto& id = ids_[ctx_];
    switch (roll(r_, 4)) {
    case 0:   // abort
    case 1: { // drop the session (aborts it)
      s_->owner = h_.uncommitted(client_);
      s_->total += 1000;
      auto t = h_.now();
      bool drop = roll(r_, 2) == 0;
      ac_.snapshot_versioned<cart>(id).then(
        resume([this, t, drop](versioned<cart>& x) {
          h_.observed(client_, ctx_, t, x, "holder's snapshot");
          if (drop)
            return next();
          s_.abort().then(resume([this](uint64_t) { next(); }), failed());
        }),
        failed());
      break;
    }
    case 2: // the holder erases (only the volatile context)
      if (ctx_ == volatile_ctx) {
        auto t = h_.now();
        ac_.erase<cart>(id).then(resume([this, t](bool) {
                                   h_.erased(t);
                                   next();
                                 }),
                                 failed());
        break;
      }
      [[fallthrough]];
    default: { // release
      auto tag = increment(*s_);
      s_.release().then(resume([this, tag](uint64_t v) {
                          h_.acked(client_, *tag, v);
                          next();
                        }),
                        failed(tag));
      tell(doing::committing);
      break;
    }
    }
  }

  caf::event_based_actor* self_;
  async_client ac_;
  history& h_;
  std::vector<context_id> ids_;
  caf::actor killer_;
  int client_;
  rng r_;
  int left_;
  int ctx_ = 0;
  async_session<cart> s_;
  bool dirty_ = false;
};

/// Kills a random share of the actors that report waiting, holding or
/// committing, at most `budget` of them.
caf::behavior killer(caf::event_based_actor*, history* h, uint64_t seed,
                     int budget) {
  auto r = std::make_shared<rng>(rng_for(seed, -1));
  auto left = std::make_shared<int>(budget);
  return {[=](int d, caf::actor& who) {
    if (*left > 0 && roll(*r, 6) == 0) {
      --*left;
      h->killed(static_cast<doing>(d));
      caf::anon_send_exit(who, caf::exit_reason::kill);
    }
  }};
}

/// Counts actors that ended (finished or killed).
struct endings {
  std::mutex mtx;
  std::condition_variable cv;
  int ended = 0;

  bool wait_for(int n) {
    std::unique_lock<std::mutex> guard{mtx};
    return cv.wait_for(guard, patience, [&] { return ended >= n; });
  }
};

caf::actor spawn_client(fixture& f, history& h,
                        const std::vector<context_id>& ids,
                        const caf::actor& kill, int client, uint64_t seed,
                        const std::shared_ptr<endings>& ends) {
  auto st = f.store;
  auto a = f.sys.spawn([=, &h](caf::event_based_actor* self) {
    auto c = std::make_shared<actor_client>(self, st, h, ids, kill, client,
                                            seed, actor_ops);
    c->next();
    return caf::behavior{[c](int) {}};
  });
  a->attach_functor([ends] {
    std::lock_guard<std::mutex> guard{ends->mtx};
    ++ends->ended;
    ends->cv.notify_all();
  });
  return a;
}

std::vector<uint64_t> seeds() {
  if (auto env = std::getenv("CTXSTORE_HISTORY_SEED"))
    return {std::strtoull(env, nullptr, 10)};
  std::random_device rd;
  std::vector<uint64_t> result;
  for (int i = 0; i < seeds_per_run; ++i)
    result.push_back((uint64_t{rd()} << 32) | rd());
  return result;
}

/// Runs one seeded history and checks it.
void run_history(uint64_t seed) {
  fixture f;
  history h;
  std::vector<context_id> ids;
  for (int ctx = 0; ctx < contexts; ++ctx) {
    ids.push_back(new_id());
    auto tag = h.sending(0, ctx, 0);
    REQUIRE(tag == "c0." + std::to_string(ctx + 1));
    f.client->store<cart>(ids.back(), cart{tag, {}, {}, 0});
    h.acked(0, tag, 1);
  }
  auto unblock
    = [&f] { caf::anon_send_exit(f.store.registry(), caf::exit_reason::kill); };
  auto kill = f.sys.spawn(killer, &h, seed, actor_runs / 2);
  auto ends = std::make_shared<endings>();
  std::vector<std::future<void>> threads;
  for (int t = 1; t <= thread_clients; ++t)
    threads.push_back(std::async(std::launch::async, [&, t] {
      run_thread(f, h, ids, t, seed, thread_ops);
    }));
  int spawned = 0;
  bool stuck = false;
  while (spawned < actor_runs && !stuck) {
    if (spawned >= concurrent_actors)
      stuck = !ends->wait_for(spawned - concurrent_actors + 1);
    if (!stuck) {
      spawn_client(f, h, ids, kill, 100 + spawned, seed, ends);
      ++spawned;
    }
  }
  stuck = stuck || !ends->wait_for(spawned);
  for (auto& t : threads)
    if (t.wait_for(patience) != std::future_status::ready)
      stuck = true;
  if (stuck) {
    unblock();
    for (auto& t : threads)
      t.wait();
    ends->wait_for(spawned);
    caf::anon_send_exit(kill, caf::exit_reason::kill);
    FAIL("a client did not finish within " << patience.count() << " s");
  }
  caf::anon_send_exit(kill, caf::exit_reason::kill);
  // Nobody holds or waits any more: every context is granted at once (the
  // dead holders' sessions end as soon as their owners saw the deaths).
  for (int ctx = 0; ctx < contexts; ++ctx) {
    auto t = h.now();
    try {
      auto s = f.client->acquire<cart>(ids[ctx], 5s);
      h.observed(0, ctx, t, versioned<cart>{*s, s.version()}, "final grant");
      s.abort();
      auto t2 = h.now();
      h.observed(0, ctx, t2, f.client->snapshot_versioned<cart>(ids[ctx]),
                 "final snapshot");
    } catch (const ctxstore::error& e) {
      if (!allowed(e.code(), ctx) || e.code() == errc::timeout)
        h.unexpected(0, std::string{"at the end: "} + e.what());
    }
  }
  auto bad = h.check();
  // The counter counts the acknowledged increments and at most the
  // in-doubt ones (sent by actors killed before the answer came).
  auto final = f.client->snapshot_versioned<cart>(ids[counter_ctx]);
  auto [acked, in_doubt] = h.counter_writes();
  std::ostringstream line;
  line << "history seed: " << seed << " (" << h.summary() << "; counter "
       << final.value.total << " = " << acked << " acknowledged + "
       << final.value.total - acked << " of " << in_doubt << " in doubt)";
  INFO(line.str());
  std::cout << line.str() << "\n";
  for (size_t k = 0; k < bad.size() && k < 20; ++k)
    UNSCOPED_INFO(bad[k]);
  CHECK(bad.size() == 0);
  CHECK(final.value.total >= acked);
  CHECK(final.value.total <= acked + in_doubt);
  auto stats = f.client->stats();
  CHECK(stats.sessions == 0);
  CHECK(stats.waiters == 0);
}

} // namespace

SCENARIO("random histories of threads and actors, some killed while waiting, "
         "holding or committing, follow the sequential rules",
         "[history]") {
  for (auto seed : seeds())
    run_history(seed);
}
