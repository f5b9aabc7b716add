#include "ctxstore/actors/feed.hpp"

#include <algorithm>
#include <random>
#include <utility>

namespace ctxstore::actors {

// -- feed_sink
// ------------------------------------------------------------------

feed_sink::feed_sink(std::string type, std::optional<context_id> id,
                     size_t buffer)
    : type(std::move(type)), id(id), buffer_(buffer == 0 ? 1 : buffer) {
  // nop
}

void feed_sink::set_buffer(size_t n) {
  std::lock_guard<std::mutex> guard{mtx_};
  buffer_ = n == 0 ? 1 : n;
}

void feed_sink::resume_after(uint64_t version, uint64_t incarnation) {
  std::lock_guard<std::mutex> guard{mtx_};
  after_ = version;
  after_incarnation_ = incarnation;
}

feed_sink::~feed_sink() {
  // nop
}

bool feed_sink::ready() noexcept {
  return true;
}

std::optional<feed_change> feed_sink::next(std::chrono::milliseconds wait) {
  std::unique_lock<std::mutex> guard{mtx_};
  auto have = [this] { return !queue_.empty() || failure_ || closed_; };
  if (!have())
    cv_.wait_for(guard, wait, have);
  if (queue_.empty())
    return std::nullopt;
  auto result = std::move(queue_.front());
  queue_.pop_front();
  return result;
}

std::deque<feed_change> feed_sink::take_all() {
  std::lock_guard<std::mutex> guard{mtx_};
  return std::exchange(queue_, {});
}

void feed_sink::arm_locked() noexcept {
  if (closed_)
    return;
  if (queue_.empty() && !failure_) {
    armed_ = true;
    return;
  }
  if (!ready())
    gone_ = true;
}

caf::error feed_sink::failure() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return failure_;
}

void feed_sink::close() noexcept {
  std::lock_guard<std::mutex> guard{mtx_};
  closed_ = true;
  queue_.clear();
  cv_.notify_all();
  if (armed_) {
    armed_ = false;
    ready();
  }
}

bool feed_sink::closed() const noexcept {
  std::lock_guard<std::mutex> guard{mtx_};
  return closed_;
}

void feed_sink::append(feed_change x) {
  auto skipped_now = x.skipped; // missed before it came (a replay's gap)
  if (queue_.size() >= buffer_) {
    // Fallen behind: the context's queued changes give way to its newest,
    // which says how many the watcher will not see.
    auto stale = [&x](const feed_change& y) { return y.key == x.key; };
    for (auto& y : queue_)
      if (stale(y)) {
        x.skipped += 1 + y.skipped;
        skipped_now += 1;
      }
    queue_.erase(std::remove_if(queue_.begin(), queue_.end(), stale),
                 queue_.end());
  }
  if (skipped_now > 0 && skipped_total)
    skipped_total->fetch_add(skipped_now, std::memory_order_relaxed);
  queue_.push_back(std::move(x));
  cv_.notify_all();
  if (armed_) {
    armed_ = false;
    if (!ready())
      gone_ = true;
  }
}

// The first change of a watch that resumes: what the watcher missed since
// its version is counted in `skipped`, whichever way the change came (the
// replay, the current value, or a commit that overtook that). False: the
// watcher has it already.
bool feed_sink::place_first(feed_change& x) {
  if (settled_ || after_ == 0)
    return true;
  uint64_t missed = 0;
  if (x.incarnation != 0 && x.incarnation == after_incarnation_) {
    if (x.version <= after_)
      return false;
    missed = x.version - after_ - 1;
  } else if (x.incarnation != 0 && after_incarnation_ != 0) {
    // Another life: at least the erase of the watcher's, and this one's
    // versions before `x`.
    missed = std::max<uint64_t>(x.version, 1);
  } else {
    // A version alone cannot tell one life of the context from another:
    // never say that nothing was missed.
    missed
      = std::max<uint64_t>(x.version > after_ ? x.version - after_ - 1 : 0, 1);
  }
  x.skipped = std::max(x.skipped, missed);
  return true;
}

bool feed_sink::push(feed_change x) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (closed_ || gone_ || failure_)
    return false;
  if (!place_first(x))
    return true;
  settled_ = true;
  append(std::move(x));
  return !gone_;
}

void feed_sink::offer(feed_change x) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (closed_ || gone_ || failure_ || settled_ || !place_first(x))
    return;
  settled_ = true;
  append(std::move(x));
}

void feed_sink::fail(caf::error reason) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (closed_ || failure_)
    return;
  failure_ = std::move(reason);
  cv_.notify_all();
  if (armed_) {
    armed_ = false;
    ready();
  }
}

// -- feed
// -----------------------------------------------------------------------

namespace {

messages::context_key key_of(const feed_sink& sink) {
  return messages::context_key{sink.type, *sink.id};
}

uint64_t random_incarnation_base() {
  std::random_device dev;
  return (uint64_t{dev()} << 32) ^ dev();
}

} // namespace

feed::feed(size_t buffer)
    : buffer_(buffer == 0 ? 1 : buffer),
      next_incarnation_(random_incarnation_base()) {
  // nop
}

uint64_t feed::new_incarnation() noexcept {
  // Random start: a watcher that resumes at a storage started again (a
  // backend, another process) does not meet its old numbers.
  auto x = next_incarnation_.fetch_add(1, std::memory_order_relaxed);
  return x != 0 ? x : next_incarnation_.fetch_add(1, std::memory_order_relaxed);
}

void feed::publish(const messages::context_key& key, uint64_t version,
                   const caf::message& value, uint64_t incarnation) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = topics_.find(key);
  auto all = all_.find(key.type);
  if (i == topics_.end()) {
    if (all == all_.end())
      return; // nobody watches this context
    i = topics_.emplace(key, topic{}).first;
  }
  auto& t = i->second;
  t.history.push_back(retained{version, value, incarnation});
  if (t.history.size() > history_window())
    t.history.pop_front();
  auto deliver = [&](std::vector<feed_sink_ptr>& sinks) {
    for (auto j = sinks.begin(); j != sinks.end();) {
      if ((*j)->push(feed_change{key, version, value, 0, incarnation})) {
        ++j;
      } else { // its watcher is gone: nothing kept for it
        j = sinks.erase(j);
        watchers_ -= 1;
      }
    }
  };
  deliver(t.sinks);
  auto keyless = t.sinks.empty();
  if (all != all_.end()) {
    deliver(all->second);
    if (all->second.empty()) {
      all_.erase(all);
      forget_unwatched(key.type); // `t` too if keyless
    }
  } else if (keyless) {
    topics_.erase(i);
  }
}

void feed::replay(const topic& t, const messages::context_key& key,
                  feed_sink& sink, uint64_t after, uint64_t incarnation) {
  auto& h = t.history;
  auto change_at = [&](size_t i) {
    return feed_change{key, h[i].version, h[i].value, 0, h[i].incarnation};
  };
  if (after == 0) { // from the current value on
    if (!h.back().value.empty())
      sink.offer(change_at(h.size() - 1));
    return;
  }
  // The watcher's version, if retained (the same version of another life
  // does not count): everything after it, an erase and a new life included.
  auto i = h.size();
  while (i > 0
         && (incarnation == 0 || h[i - 1].version != after
             || h[i - 1].incarnation != incarnation))
    --i;
  if (i > 0) {
    for (; i < h.size(); ++i)
      sink.push(change_at(i));
    return;
  }
  // Gone, or unknown: the newest; the sink counts what was missed.
  sink.offer(change_at(h.size() - 1));
}

bool feed::add(const feed_sink_ptr& sink, uint64_t after,
               uint64_t incarnation) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (closed_) {
    sink->fail(closed_reason_);
    return true;
  }
  watchers_ += 1;
  sink->skipped_total = skipped_;
  if (sink->id) {
    auto key = key_of(*sink);
    auto& t = topics_[key];
    t.sinks.push_back(sink);
    sink->resume_after(after, incarnation);
    if (t.history.empty())
      return false;
    replay(t, key, *sink, after, incarnation);
    return true;
  }
  all_[sink->type].push_back(sink);
  if (after > 0)
    for (auto& [key, t] : topics_)
      if (key.type == sink->type)
        for (auto& x : t.history)
          if (x.version > after)
            sink->push(feed_change{key, x.version, x.value, 0, x.incarnation});
  return true;
}

void feed::remove(const feed_sink* sink) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto drop = [&](std::vector<feed_sink_ptr>& sinks) {
    auto i
      = std::find_if(sinks.begin(), sinks.end(),
                     [&](const feed_sink_ptr& x) { return x.get() == sink; });
    if (i == sinks.end())
      return false;
    sinks.erase(i);
    watchers_ -= 1;
    return true;
  };
  if (sink->id) {
    auto i = topics_.find(key_of(*sink));
    if (i == topics_.end() || !drop(i->second.sinks))
      return;
    if (i->second.sinks.empty() && all_.count(sink->type) == 0)
      topics_.erase(i);
    return;
  }
  auto i = all_.find(sink->type);
  if (i == all_.end() || !drop(i->second))
    return;
  if (i->second.empty()) {
    all_.erase(i);
    forget_unwatched(sink->type);
  }
}

void feed::forget_unwatched(const std::string& type) {
  for (auto i = topics_.begin(); i != topics_.end();) {
    if (i->first.type == type && i->second.sinks.empty())
      i = topics_.erase(i);
    else
      ++i;
  }
}

bool feed::watched(const messages::context_key& key) const {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = topics_.find(key);
  return i != topics_.end() && !i->second.sinks.empty();
}

void feed::close(const caf::error& reason) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (closed_)
    return;
  closed_ = true;
  closed_reason_ = reason;
  for (auto& [key, t] : topics_)
    for (auto& sink : t.sinks)
      sink->fail(reason);
  for (auto& [type, sinks] : all_)
    for (auto& sink : sinks)
      sink->fail(reason);
  topics_.clear();
  all_.clear();
  watchers_ = 0;
}

} // namespace ctxstore::actors
