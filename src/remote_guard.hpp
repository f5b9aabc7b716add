#pragma once

#include <memory>

#include <caf/actor.hpp>
#include <caf/message_id.hpp>

namespace ctxstore::detail {

/// Turns the loss of a remote destination into an answer. CAF 0.17 does not
/// fail a request whose remote receiver becomes unreachable: it simply never
/// answers. While a guard lives, the death of the destination's proxy (node
/// crashed, connection lost) answers request `mid` of `requester` with
/// `errc::storage_down`. For a local destination it does nothing.
class remote_guard {
public:
  remote_guard(const caf::actor& dest, const caf::strong_actor_ptr& requester,
               caf::message_id mid);

  ~remote_guard();

  remote_guard(const remote_guard&) = delete;
  remote_guard& operator=(const remote_guard&) = delete;

  /// A guard for `dest`, or nullptr if `dest` is local.
  static std::shared_ptr<remote_guard>
  make(const caf::actor& dest, const caf::strong_actor_ptr& requester,
       caf::message_id mid);

private:
  caf::actor dest_;
  const void* watch_ = nullptr; // the attachable, owned by the proxy
};

} // namespace ctxstore::detail
