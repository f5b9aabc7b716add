#pragma once

#include <cstdint>

#include <caf/meta/type_name.hpp>

#include "ctxstore/messages/payload.hpp"

namespace ctxstore::messages {

/// The answer to a snapshot: the last committed value and its version.
struct versioned_value {
  uint64_t version = 0; ///< The version of `value`.
  payload value;        ///< The last committed value.
};

/// Lets CAF serialize a `versioned_value`.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, versioned_value& x) {
  return f(caf::meta::type_name("ctxstore.versioned"), x.version, x.value);
}

} // namespace ctxstore::messages
