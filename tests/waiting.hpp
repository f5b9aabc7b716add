#pragma once

// Helpers of the specifications that wait for other clients: threads that
// hold sessions on command, bounded waits for futures and for the storage's
// counts. Every wait is bounded: when a deadline passes, the storage is
// killed (which answers every blocked call with storage_down) and the test
// fails instead of hanging.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "fixture.hpp"

namespace waiting {

using namespace ctxstore;
using namespace std::chrono_literals;

/// How long any single step may take before the test gives up.
constexpr auto patience = std::chrono::seconds{5};

/// Frees every call blocked on the storage (they fail with storage_down).
inline void unblock(fixture& f) {
  if (f.store)
    caf::anon_send_exit(f.store.registry(), caf::exit_reason::kill);
}

/// Waits for `fut` at most `patience`; on timeout frees the storage and fails.
template <class R>
R await(fixture& f, std::future<R>& fut, const std::string& what) {
  if (fut.wait_for(patience) != std::future_status::ready) {
    unblock(f);
    fut.wait_for(patience);
    FAIL(what << " did not finish within 5 s");
  }
  return fut.get();
}

/// A function running on its own thread. Its destructor never waits longer
/// than `patience` before freeing the storage, so a broken implementation
/// makes a test fail rather than hang.
template <class R>
class task {
public:
  template <class F>
  task(fixture& f, F fn)
    : f_(&f), fut_(std::async(std::launch::async, std::move(fn))) {
    // nop
  }

  task(task&&) = default;

  ~task() {
    if (fut_.valid() && fut_.wait_for(patience) != std::future_status::ready)
      unblock(*f_);
  }

  R get(const std::string& what) {
    return await(*f_, fut_, what);
  }

  bool done() const {
    return fut_.wait_for(0s) == std::future_status::ready;
  }

private:
  fixture* f_;
  std::future<R> fut_;
};

/// Runs `fn` on another thread (never the holder of anything) and returns
/// its result, or fails after `patience`.
template <class F>
auto within(fixture& f, F fn, const std::string& what) -> decltype(fn()) {
  task<decltype(fn())> t{f, std::move(fn)};
  return t.get(what);
}

/// Polls stats() until `pred` holds; fails after `patience`.
template <class Pred>
void poll_stats(fixture& f, Pred pred, const std::string& what) {
  auto deadline = std::chrono::steady_clock::now() + patience;
  while (!pred(f.client->stats())) {
    if (std::chrono::steady_clock::now() > deadline)
      FAIL("stats never showed: " << what);
    std::this_thread::yield();
  }
}

/// Waits until exactly `n` requests are queued in the storage.
inline void wait_for_waiters(fixture& f, uint64_t n) {
  poll_stats(
    f, [n](const storage_stats& s) { return s.waiters == n; },
    std::to_string(n) + " queued request(s)");
}

/// The code of the ctxstore::error that `fn` throws, or nothing.
template <class F>
std::optional<errc> code_of(F&& fn) {
  try {
    fn();
  } catch (const ctxstore::error& e) {
    return e.code();
  }
  return std::nullopt;
}

struct grant_info {
  uint64_t version = 0;
  uint64_t token = 0;
};

/// A thread that acquires a context and holds the session until told what to
/// do with it. Each step runs on the holder thread (the session belongs to
/// it) and returns when done; its exception propagates to the caller.
template <class T>
class holder {
public:
  holder(fixture& f, const context_id& id)
    : f_(f),
      granted_(granted_p_.get_future()),
      done_(done_p_.get_future()) {
    blocking_client client = *f.client;
    thread_ = std::thread([this, client, id]() mutable { body(client, id); });
  }

  holder(const holder&) = delete;
  holder& operator=(const holder&) = delete;

  ~holder() {
    if (!ended_)
      post(kind::leave);
    if (done_.wait_for(patience) != std::future_status::ready) {
      unblock(f_);
      done_.wait_for(patience);
    }
    thread_.join();
  }

  /// Waits until the session is granted.
  grant_info granted() {
    if (!info_)
      info_ = await(f_, granted_, "the holder's acquire");
    return *info_;
  }

  /// Runs `fn(session)` on the holder thread.
  void with(std::function<void(session<T>&)> fn, const std::string& what) {
    auto fut = post(kind::run, std::move(fn));
    await(f_, fut, what);
  }

  /// Changes the working copy (uncommitted).
  void change(std::function<void(T&)> fn) {
    with([fn](session<T>& s) { fn(*s); }, "a change by the holder");
  }

  void commit() {
    with([](session<T>& s) { s.commit(); }, "the holder's commit");
  }

  void release() {
    with([](session<T>& s) { s.release(); }, "the holder's release");
  }

  /// Leaves the session's scope normally (the destructor releases).
  void leave_scope() {
    ended_ = true;
    auto fut = post(kind::leave);
    await(f_, fut, "the holder leaving its scope");
  }

  /// Leaves the session's scope by an exception (the destructor aborts).
  void unwind() {
    ended_ = true;
    auto fut = post(kind::unwind);
    await(f_, fut, "the holder leaving its scope by an exception");
  }

private:
  enum class kind { run, leave, unwind };

  struct job {
    kind k = kind::run;
    std::function<void(session<T>&)> fn;
    std::promise<void> done;
  };

  struct unwinding {};

  std::future<void> post(kind k, std::function<void(session<T>&)> fn = {}) {
    auto j = std::make_shared<job>();
    j->k = k;
    j->fn = std::move(fn);
    auto fut = j->done.get_future();
    {
      std::lock_guard<std::mutex> guard{mtx_};
      jobs_.push_back(std::move(j));
    }
    cv_.notify_one();
    return fut;
  }

  std::shared_ptr<job> next() {
    std::unique_lock<std::mutex> guard{mtx_};
    cv_.wait(guard, [this] { return !jobs_.empty(); });
    auto j = std::move(jobs_.front());
    jobs_.pop_front();
    return j;
  }

  void body(blocking_client& client, const context_id& id) {
    std::shared_ptr<job> last;
    try {
      scope(client, id, last);
    } catch (const unwinding&) {
      // The session was left by an exception.
    }
    if (last)
      last->done.set_value();
    done_p_.set_value();
  }

  void scope(blocking_client& client, const context_id& id,
             std::shared_ptr<job>& last) {
    session<T> s;
    try {
      s = client.acquire<T>(id);
      granted_p_.set_value(grant_info{s.version(), s.token()});
    } catch (...) {
      granted_p_.set_exception(std::current_exception());
      return;
    }
    for (;;) {
      auto j = next();
      if (j->k == kind::run) {
        try {
          j->fn(s);
          j->done.set_value();
        } catch (...) {
          j->done.set_exception(std::current_exception());
        }
        continue;
      }
      last = j;
      if (j->k == kind::unwind)
        throw unwinding{};
      return;
    }
  }

  fixture& f_;
  std::promise<grant_info> granted_p_;
  std::future<grant_info> granted_;
  std::promise<void> done_p_;
  std::future<void> done_;
  std::optional<grant_info> info_;
  bool ended_ = false;
  std::mutex mtx_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<job>> jobs_;
  std::thread thread_;
};

/// Kills the actors it was given when it goes out of scope, so that no test
/// actor keeps the actor system's destructor waiting.
struct actor_reaper {
  std::vector<caf::actor> actors;

  ~actor_reaper() {
    for (auto& a : actors)
      caf::anon_send_exit(a, caf::exit_reason::kill);
  }
};

/// Collects an actor's answers as "first;second;...;" in the order they
/// arrive and hands the text to `done` once `expected` of them arrived.
inline std::function<void(const std::string&)>
answer_log(int expected, std::function<void(std::string)> done) {
  auto text = std::make_shared<std::string>();
  auto count = std::make_shared<int>(0);
  return [=](const std::string& what) {
    *text += what + ";";
    if (++*count == expected)
      done(*text);
  };
}

/// The name of an error's code, for answer logs.
inline std::string code_name(const caf::error& e) {
  return to_string(to_errc(e));
}

/// Spawns an actor in `sys` that acquires the counter `id` on `st` and, once
/// granted, sends release, erase, store 9 and a try-acquire right behind each
/// other (while the context's owner retires: the [retire] specs). The
/// future gets the four answers in the order they arrived.
inline std::future<std::string>
erase_then_store_and_acquire(caf::actor_system& sys, const storage& st,
                             const context_id& id) {
  auto result = std::make_shared<std::promise<std::string>>();
  auto fut = result->get_future();
  sys.spawn([result, st, id](caf::event_based_actor* self) {
    auto ac = std::make_shared<async_client>(self, st);
    auto note = answer_log(4, [result, self](std::string text) {
      result->set_value(std::move(text));
      self->quit();
    });
    // A bounded wait queues at the owner, which times it (an unbounded one
    // would wait in the context's cell, without an owner).
    ac->acquire<counter>(id, std::chrono::minutes{5}).then(
      [=](async_session<counter> s) {
        s.release().then([note](uint64_t) { note("released"); },
                         [=](caf::error& e) { note("release " + code_name(e)); });
        ac->erase<counter>(id).then(
          [note](bool existed) { note(existed ? "erased" : "not there"); },
          [=](caf::error& e) { note("erase " + code_name(e)); });
        ac->store<counter>(id, counter{9})
          .then([note](uint64_t) { note("stored"); },
                [=](caf::error& e) { note("store " + code_name(e)); });
        ac->acquire<counter>(id, std::chrono::milliseconds{0})
          .then(
            [note](async_session<counter> s2) {
              note("acquired " + std::to_string(s2->value));
              s2.abort().then([](uint64_t) {}, [](caf::error&) {});
            },
            [=](caf::error& e) { note("acquire " + code_name(e)); });
      },
      [=](caf::error& e) {
        for (int i = 0; i < 4; ++i)
          note("first acquire " + code_name(e));
      });
    return caf::behavior{[ac](int) {}};
  });
  return fut;
}

} // namespace waiting
