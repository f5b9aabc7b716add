#pragma once

// The parts of a context's owner actor (owner.hpp) that its two halves share:
// owner.cpp (the event loop of the state machine) and owner_durable.cpp (a
// durable context: loading, persisting, passivation).

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>

#include <caf/actor_addr.hpp>
#include <caf/behavior.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/expected.hpp>
#include <caf/response_promise.hpp>
#include <caf/result.hpp>
#include <caf/stateful_actor.hpp>

#include "ctxstore/actors/owner.hpp"
#include "ctxstore/backend.hpp"
#include "ctxstore/messages/payload.hpp"

namespace ctxstore::actors::owner_detail {

/// A request parked in the context's queue until its turn.
struct parked_request final : waiter {
  parked_request(request what, uint64_t seq, caf::response_promise promise)
      : waiter(kind::parked, what), seq(seq), promise(std::move(promise)) {
    // nop
  }

  const uint64_t seq; // identifies it for its deadline
  caf::response_promise promise;
};

class step;

/// What a backend's thread hands the owner: put under a mutex before the
/// message that announces it is sent, taken under it when that message runs.
/// (CAF's mailbox orders the two, but ThreadSanitizer cannot see through
/// Debian's uninstrumented CAF; a mutex is an edge it sees.)
template <class T>
class handoff {
public:
  void put(T x) {
    std::lock_guard<std::mutex> guard{mtx_};
    value_ = std::move(x);
  }

  T take() {
    std::lock_guard<std::mutex> guard{mtx_};
    return std::move(*value_);
  }

private:
  std::mutex mtx_;
  std::optional<T> value_;
};

using loaded_value = caf::expected<std::optional<stored_value>>;

/// What a durable owner does once the backend answered a write (no error:
/// it is durable), inside a new step.
using after_persist = std::function<void(step&, const caf::error&)>;

struct owner_state {
  static inline const char* name = "ctxstore.owner";

  owner_config cfg;
  std::shared_ptr<context> ctx;

  // The parked requests, by seq; the context's queue points to them.
  std::unordered_map<uint64_t, std::unique_ptr<parked_request>> parked;
  uint64_t next_seq = 0;

  // Monitor reference counts: one actor may wait several times and hold.
  std::unordered_map<caf::actor_addr, size_t> watched;
  caf::actor_addr watched_holder; // the holder we monitor as such

  uint64_t handled = 0;           // messages handled (see enter)
  uint64_t handled_at_retire = 0; // `handled` when we asked to retire

  // A durable context: its backend, the number of the backend call in
  // flight (its answer must match), and what to do when a write is durable.
  std::shared_ptr<ctxstore::backend> backend;
  uint64_t backend_seq = 0;
  std::shared_ptr<handoff<caf::error>> written;  // the write's outcome
  std::shared_ptr<handoff<loaded_value>> loaded; // the load's outcome
  after_persist on_persisted;
  std::function<void(const caf::error&)> fail_in_flight; // we stop first
  caf::error load_error; // the context could not be read: every request gets it

  ~owner_state();
};

using owner_ptr = caf::stateful_actor<owner_state>*;

inline caf::actor_addr sender_of(owner_ptr self) {
  return caf::actor_cast<caf::actor_addr>(self->current_sender());
}

/// Timers are messages to ourselves; nobody else may fire them.
inline bool from_self(owner_ptr self) {
  return self->current_sender() == self->ctrl();
}

/// One message's work on the context: locks it (a direct session that ended
/// while requests were parked lets them go first, in order, before anything
/// new), and when the message is done carries out the effects of its
/// transitions: threads and actors are woken under the lock, the rest after
/// unlocking.
class step {
public:
  explicit step(owner_ptr self);

  step(const step&) = delete;
  step& operator=(const step&) = delete;

  ~step();

  context& ctx() noexcept {
    return *self_->state.ctx;
  }

  effects fx;

private:
  owner_ptr self_;
  std::unique_lock<std::mutex> guard_;
};

/// The owner's answer to a message it does not know (its default handler).
caf::result<caf::message> refuse_unexpected(caf::scheduled_actor*,
                                            caf::message_view&);

// -- a durable context (owner_durable.cpp) ------------------------------------

/// Reads the context from the backend; every other message waits meanwhile.
void load(owner_ptr self);

/// The store or erase at the head of the queue (effects::persist_next): made
/// durable, applied and answered.
void persist_head(owner_ptr self);

/// A store (or the holder's commit, with `end`: release) of `value` on a
/// durable context: answered once it is durable.
caf::result<uint64_t> persist_store(owner_ptr self, messages::payload value,
                                    bool commit, bool end);

/// An erase of a durable context (free, or by its holder).
caf::result<bool> persist_erase(owner_ptr self);

/// A request reached the owner of a context that left memory (before the
/// registry let the owner go): read the context again first, then handle the
/// request (the caller returns `caf::skip`: it stays in the mailbox).
bool reactivate(owner_ptr self);

/// The context leaves memory if nothing involves it (the backend has it);
/// the step's end asks the registry to retire us. True if the caller is to
/// give the storage's free memory back once out of the step (memory_trim.hpp).
bool passivate(owner_ptr self, context& ctx);

/// Spawned for a store (owner_config::first_store) of a context still
/// `loading`: its first message, if that store, is made durable in one
/// backend step (backend::store); any other first message makes the owner
/// read the context first (load), as always.
void await_first_store(owner_ptr self);

} // namespace ctxstore::actors::owner_detail
