#pragma once

#include <cstddef>
#include <type_traits>

#include <caf/deserializer.hpp>
#include <caf/error.hpp>
#include <caf/message.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/serializer.hpp>

namespace ctxstore::messages {

/// A type-erased context value. A `caf::message` put straight into another
/// message is flattened by CAF, so values travel inside this box.
struct payload {
  /// One element of a registered context type, or empty.
  caf::message value;
  /// The bytes the value took on the wire when it came from another node
  /// (set by load_payload; not sent); zero for a value made in this process.
  size_t wire_bytes = 0;
};

/// Writes `x` for another node: a value of a registered context type in the
/// compact form of detail::value_writer (its type's name, then its bytes),
/// anything else as CAF writes a message.
caf::error save_payload(caf::serializer& sink, const payload& x);

/// Reads what save_payload wrote.
caf::error load_payload(caf::deserializer& source, payload& x);

/// Lets CAF serialize a `payload`.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, payload& x) {
  if constexpr (std::is_base_of_v<caf::serializer, Inspector>)
    return save_payload(f, x);
  else if constexpr (std::is_base_of_v<caf::deserializer, Inspector>)
    return load_payload(f, x);
  else
    return f(caf::meta::type_name("ctxstore.payload"), x.value);
}

} // namespace ctxstore::messages
