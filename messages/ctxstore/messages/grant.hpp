#pragma once

#include <cstdint>

#include <caf/actor.hpp>
#include <caf/meta/type_name.hpp>

#include "ctxstore/messages/payload.hpp"

namespace ctxstore::messages {

/// The answer to an acquire: the session's fencing token and the holder's
/// starting working copy (the last committed value).
struct grant {
  uint64_t token = 0;   ///< The fencing token of this session.
  uint64_t version = 0; ///< The version of `value`.
  payload value;        ///< The last committed value.
  /// Where commit, release and abort go; empty for remote holders (they send
  /// them to the storage).
  caf::actor owner;
};

/// Lets CAF serialize a `grant`.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, grant& x) {
  return f(caf::meta::type_name("ctxstore.grant"), x.token, x.version, x.value,
           x.owner);
}

} // namespace ctxstore::messages
