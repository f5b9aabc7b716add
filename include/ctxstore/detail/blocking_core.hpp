#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <typeinfo>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/message.hpp>

#include "ctxstore/context_info.hpp"
#include "ctxstore/detail/watch_core.hpp"
#include "ctxstore/error.hpp"
#include "ctxstore/messages/context_key.hpp"
#include "ctxstore/messages/grant.hpp"
#include "ctxstore/messages/versioned_value.hpp"
#include "ctxstore/storage.hpp"
#include "ctxstore/storage_stats.hpp"

namespace ctxstore::actors {
class context;
} // namespace ctxstore::actors

namespace ctxstore::detail {

class blocking_core;

/// A scoped_actor that sends requests for one thread at a time (see
/// src/requester.hpp); pooled, because spawning one per call costs microseconds.
class requester;

struct requester_deleter {
  void operator()(requester* ptr) const noexcept;
};

using requester_ptr = std::unique_ptr<requester, requester_deleter>;

/// One open session of a thread, shared by its nested levels.
struct held_session : std::enable_shared_from_this<held_session> {
  std::shared_ptr<blocking_core> core;
  messages::context_key key;
  uint64_t token = 0;
  uint64_t version = 0; // of the last value committed by this session
  caf::actor owner;
  requester_ptr via; // the holder: the owner monitors this actor
  // Instead of `via`: a direct session, taken and ended without messages.
  std::shared_ptr<actors::context> cell;
  caf::message working; // one T; detached from the committed value on
                        // first write (copy-on-write)
  caf::message replaced; // the commit our last commit or release replaced
                         // (direct sessions), for detail::recycle
  int depth = 1;        // open levels
  bool open = true;     // false once released, aborted or erased

  ~held_session();
};

/// The thread's open session on `key` of storage `core`, or nullptr.
held_session* find_held(const blocking_core& core,
                        const messages::context_key& key);

/// Type-erased half of `blocking_client`, compiled once in the library
/// (src/blocking_core.cpp).
class blocking_core : public std::enable_shared_from_this<blocking_core> {
public:
  blocking_core(caf::actor_system& sys, storage st);
  ~blocking_core();

  messages::versioned_value snapshot(const messages::context_key& key);
  uint64_t store(const messages::context_key& key, caf::message value);
  bool erase(const messages::context_key& key);
  storage_stats stats();
  context_info info(const messages::context_key& key);
  std::string metrics();

  /// Opens a session and registers it as this thread's.
  std::shared_ptr<held_session> acquire(const messages::context_key& key,
                                        int64_t wait_ms);

  uint64_t commit(held_session& held, caf::message value);
  uint64_t release(held_session& held, caf::message value);
  void abort(held_session& held);
  bool erase_held(held_session& held);

  /// Starts watching `key` (`all`: every context of `key.type`) for values
  /// of `type`, after version `after` of life `incarnation` (0: unknown;
  /// src/feed_clients.cpp).
  std::unique_ptr<watch_core> watch(const messages::context_key& key, bool all,
                                    uint64_t after, uint64_t incarnation,
                                    const std::type_info& type);

  requester_ptr take_requester();
  void give_back(requester* ptr) noexcept;

  const storage& target() const noexcept {
    return storage_;
  }

private:
  caf::actor_system& sys_;
  storage storage_;
  std::mutex pool_mtx_;
  std::vector<requester*> pool_;
};

/// Throws unless `x` holds a T.
template <class T>
void unpack_check(const messages::payload& x) {
  if (!x.value.match_elements<T>())
    throw error{errc::type_mismatch,
                "the stored value does not have the requested type"};
}

/// Extracts a T from a value that travelled as a payload.
template <class T>
T unpack(const messages::payload& x) {
  unpack_check<T>(x);
  return x.value.get_as<T>(0);
}

} // namespace ctxstore::detail
