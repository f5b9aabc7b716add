#pragma once

#include <caf/message.hpp>
#include <caf/meta/type_name.hpp>

namespace ctxstore::messages {

/// A type-erased context value. A `caf::message` put straight into another
/// message is flattened by CAF, so values travel inside this box.
struct payload {
  /// One element of a registered context type, or empty.
  caf::message value;
};

/// Lets CAF serialize a `payload`.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, payload& x) {
  return f(caf::meta::type_name("ctxstore.payload"), x.value);
}

} // namespace ctxstore::messages
