#include "ctxstore/actors/context.hpp"

#include <string>
#include <utility>

#include "ctxstore/error.hpp"
#include "ctxstore/messages/protocol.hpp"

namespace ctxstore::actors {

// -- waiters ------------------------------------------------------------------

waiter::~waiter() {
  if (graph != nullptr) // gone without leaving the queue (a stopped owner)
    graph->forget(*this);
}

void waiter::wake() noexcept {
  // Parked requests are answered by the owner after unlocking.
}

void thread_waiter::wake() noexcept {
  cv.notify_one();
}

void effects::push_woken(waiter& w) noexcept {
  w.next_ = nullptr;
  if (woken_tail != nullptr)
    woken_tail->next_ = &w;
  else
    woken = &w;
  woken_tail = &w;
}

// -- context ------------------------------------------------------------------

context::context(messages::context_key key, const std::type_info* type,
                 messages::payload initial, const context_defaults& defaults)
    : key(std::move(key)), type(type), lease(defaults.lease),
      max_waiters(defaults.max_waiters), fast_path(defaults.fast_path),
      thread_fast_path(defaults.thread_fast_path),
      stats(defaults.stats), changes(defaults.changes),
      durable(defaults.backend != nullptr), waits(defaults.waits),
      metrics(defaults.metrics, defaults.metrics->of(this->key.type)),
      committed_(std::move(initial)) {
  // Every token issued so far belongs to a session of an earlier context of
  // this key (or another key): stale here.
  last_token_ = stats->last_token.load();
  if (!committed_.value.empty()) { // created by a store
    incarnation_ = changes->new_incarnation();
    metrics->written.fetch_add(1, std::memory_order_relaxed);
  }
}

context::context(messages::context_key key, const std::type_info* type,
                 const context_defaults& defaults)
    : context(std::move(key), type, messages::payload{}, defaults) {
  present_ = false;
  loading_ = true;
  version_ = 0;
}

void context::loaded(
  std::optional<std::pair<uint64_t, messages::payload>> value, effects& fx) {
  loading_ = false;
  auto was_unreadable = static_cast<bool>(std::exchange(unreadable_, {}));
  if (value) {
    version_ = value->first;
    committed_ = std::move(value->second);
    set_present(true);
  } else if (present_) { // read again: it is not there any more
    drop_value();
  } else if (was_unreadable) { // its row is gone
    version_ = 0;
  }
  run_queue(fx, true);
}

void context::loaded_unreadable(uint64_t version, caf::error why,
                                effects& fx) {
  loading_ = false;
  if (present_)
    drop_value(); // read again (it changed under us): not readable now
  version_ = version;
  unreadable_ = std::move(why);
  run_queue(fx, true);
}

bool context::fits(const messages::payload& x) const noexcept {
  if (x.value.size() != 1)
    return false;
  auto rtti = x.value.type(0);
  return rtti.second != nullptr && *rtti.second == *type;
}

void context::evict() noexcept {
  unreadable_ = caf::error{}; // read again when it comes back
  committed_ = messages::payload{};
  set_present(false);
  evicted_ = true;
}

void context::drop_value() {
  if (present_ && changes->active()) // nobody watches: one relaxed load
    changes->publish(key, version_ + 1, caf::message{}, incarnation_);
  // Created again, it starts at version 1, whether or not its owner retired
  // in between (and whether or not a backend kept it).
  committed_ = messages::payload{};
  unreadable_ = caf::error{};
  version_ = 0;
  set_present(false);
}

void context::set_present(bool value) noexcept {
  if (present_ != value)
    stats->contexts += value ? 1 : -1;
  if (value && !present_) // a new life: its versions start again
    incarnation_ = changes->new_incarnation();
  present_ = value;
}

uint64_t context::open_session(bool direct, const caf::actor_addr& who,
                               party by, effects& fx) {
  // Tokens are unique in the whole storage: a context erased and created
  // again is a new context, and a holder of the old one must not mistake the
  // new session for its own.
  token_ = stats->last_token.fetch_add(1) + 1;
  last_token_ = token_;
  direct_ = direct;
  holder_ = direct ? caf::actor_addr{} : who;
  holder_party_.store(by, std::memory_order_relaxed);
  holder_id_ = 0;
  granted_at_ = steady_ns();
  stats->sessions += 1;
  metrics->acquired.fetch_add(1, std::memory_order_relaxed);
  metrics->sessions.fetch_add(1, std::memory_order_relaxed);
  if (lease.count() > 0)
    fx.lease = token_;
  return token_;
}

void context::close_session() noexcept {
  if (token_ == 0)
    return;
  token_ = 0;
  direct_ = false;
  holder_ = caf::actor_addr{};
  holder_party_.store(0, std::memory_order_relaxed);
  stats->sessions -= 1;
  metrics->sessions.fetch_sub(1, std::memory_order_relaxed);
  metrics->session_hold.observe(steady_ns() - granted_at_);
}

void context::grant(waiter& w, effects& fx) {
  auto parked = w.how == waiter::kind::parked;
  w.token = open_session(!parked, w.client,
                         parked ? actor_party(w.client.get()) : w.requester, fx);
  holder_id_ = w.requester_id;
  if (w.since != 0) // it waited in the queue
    metrics->acquire_wait.observe(granted_at_ - w.since);
  w.version = version_;
  w.value = committed_.value;
  w.result = waiter::outcome::granted;
}

void context::acquire_direct(waiter& w, effects& fx) {
  grant(w, fx);
}

void context::acquire_by(const caf::actor_addr& who, waiter& w, effects& fx) {
  // Free: a new session; else the re-entry of `who`'s own session.
  w.token = token_ == 0 ? open_session(false, who, actor_party(who.get()), fx)
                         : token_;
  w.client = who;
  w.version = version_;
  w.value = committed_.value;
  w.result = waiter::outcome::granted;
}

bool context::enqueue(waiter& w) {
  if (queue_full())
    return false;
  w.next_ = nullptr;
  w.result = waiter::outcome::waiting;
  if (tail_ != nullptr)
    tail_->next_ = &w;
  else
    head_ = &w;
  tail_ = &w;
  ++length_;
  stats->waiters += 1;
  metrics->waiters.fetch_add(1, std::memory_order_relaxed);
  w.since = steady_ns();
  return true;
}

bool context::remove(waiter& w) noexcept {
  waiter* prev = nullptr;
  for (auto i = head_; i != nullptr; prev = i, i = i->next_) {
    if (i != &w)
      continue;
    (prev != nullptr ? prev->next_ : head_) = w.next_;
    if (tail_ == &w)
      tail_ = prev;
    w.next_ = nullptr;
    --length_;
    stats->waiters -= 1;
    metrics->waiters.fetch_sub(1, std::memory_order_relaxed);
    if (w.graph != nullptr)
      w.graph->forget(w);
    return true;
  }
  return false;
}

waiter* context::pop() noexcept {
  auto w = head_;
  if (w != nullptr)
    remove(*w);
  return w;
}

uint64_t context::store(messages::payload value, effects& fx) {
  fx.replaced = std::move(committed_.value);
  committed_ = std::move(value);
  unreadable_ = caf::error{}; // replaced: its version continues
  set_present(true);
  metrics->written.fetch_add(1, std::memory_order_relaxed);
  ++version_;
  if (changes->active()) // nobody watches: one relaxed load
    changes->publish(key, version_, committed_.value, incarnation_);
  return version_;
}

void context::end_session(effects& fx, bool by_owner) {
  close_session();
  run_queue(fx, by_owner);
}

bool context::erase(effects& fx, bool by_owner) {
  auto existed = stored();
  metrics->erased.fetch_add(1, std::memory_order_relaxed);
  drop_value();
  close_session();
  run_queue(fx, by_owner);
  return existed;
}

void context::lease_expired(uint64_t token, effects& fx) {
  if (token != 0 && token_ == token && persisting_ && direct_) {
    lease_due_ = token; // revoked once its holder's write is answered
    return;
  }
  if (token != 0 && token_ == token) {
    metrics->lease_revocations.fetch_add(1, std::memory_order_relaxed);
    end_session(fx, true);
  }
}

void context::holder_gone(const caf::actor_addr& who, effects& fx) {
  if (token_ != 0 && !direct_ && holder_ == who)
    end_session(fx, true);
}

void context::run_queue(effects& fx, bool by_owner) {
  if (loading_ || persisting_)
    return; // the owner runs it when the backend answered
  while (token_ == 0 && head_ != nullptr) {
    if (head_->how == waiter::kind::parked && !by_owner) {
      fx.handover = true;
      return;
    }
    if (durable && head_->what != waiter::request::acquire) {
      fx.persist_next = true; // durable first (the owner pops it)
      return;
    }
    auto& w = *pop();
    switch (w.what) {
      case waiter::request::acquire:
        if (present_) {
          grant(w, fx);
        } else {
          w.error = unreadable_ ? unreadable_ : messages::missing_context(key);
          w.result = waiter::outcome::failed;
        }
        break;
      case waiter::request::store:
        w.version = store(std::move(w.input), fx);
        w.result = waiter::outcome::done;
        break;
      case waiter::request::erase:
        w.existed = stored();
        metrics->erased.fetch_add(1, std::memory_order_relaxed);
        drop_value();
        w.result = waiter::outcome::done;
        break;
    }
    fx.push_woken(w);
  }
  if (idle_erased())
    fx.erased_idle = true;
}

void context::stop(const caf::error& reason, effects& fx, bool by_owner) {
  for (auto w = head_; w != nullptr;) {
    auto& x = *w;
    w = w->next_;
    if (x.how == waiter::kind::parked && !by_owner)
      continue; // the owner answers its own when it stops
    remove(x);
    x.error = reason;
    x.result = waiter::outcome::failed;
    fx.push_woken(x);
  }
  if (by_owner) {
    close_session();
    set_present(false);
    loading_ = false;
    persisting_ = false;
  }
  stopped_ = true; // a direct holder's release: storage_down
}

context_info context::info(int64_t now) const {
  context_info result;
  result.version = version_;
  result.held = token_ != 0;
  if (result.held) {
    auto by = holder_party();
    if (!direct_) {
      // A blocking client's requester is named as the thread it acts for.
      auto name = waits ? waits->stand_in_name(by) : std::string{};
      result.holder = name.empty() ? actor_name(holder_) : std::move(name);
    } else if (by % 2 == 1) {
      result.holder = "thread " + std::to_string(by / 2);
    } else {
      result.holder = "actor " + std::to_string(holder_id_);
    }
    result.held_for = std::chrono::nanoseconds{now - granted_at_};
  }
  result.waiters = length_;
  if (head_ != nullptr)
    result.oldest_wait = std::chrono::nanoseconds{now - head_->since};
  return result;
}

void context::wake(effects& fx) noexcept {
  waiter* parked = nullptr;
  waiter* parked_tail = nullptr;
  for (auto w = fx.woken; w != nullptr;) {
    auto next = w->next_; // `w` may be gone once woken
    if (w->how == waiter::kind::parked) {
      w->next_ = nullptr;
      (parked_tail != nullptr ? parked_tail->next_ : parked) = w;
      parked_tail = w;
    } else {
      w->wake();
    }
    w = next;
  }
  fx.woken = parked;
  fx.woken_tail = parked_tail;
}

} // namespace ctxstore::actors
