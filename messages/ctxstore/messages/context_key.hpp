#pragma once

#include <cstddef>
#include <functional>
#include <string>

#include <boost/uuid/uuid.hpp>
#include <boost/uuid/uuid_hash.hpp>
#include <caf/meta/type_name.hpp>

#include "ctxstore/context_id.hpp"

namespace boost::uuids {

// Found by ADL, so it must live in the uuid's own namespace.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, uuid& x) {
  return f(caf::meta::type_name("ctxstore.uuid"), x.data);
}

} // namespace boost::uuids

namespace ctxstore::messages {

/// Names one context: its registered type name and its id.
struct context_key {
  std::string type; ///< The name given to `add_context_type`.
  context_id id{};  ///< The context among those of its type.

  /// Equal if both name the same type and id.
  friend bool operator==(const context_key& x, const context_key& y) {
    return x.id == y.id && x.type == y.type;
  }
};

/// Lets CAF serialize a `context_key`.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, context_key& x) {
  return f(caf::meta::type_name("ctxstore.key"), x.type, x.id);
}

/// Hashes a `context_key` for unordered containers.
struct context_key_hash {
  /// Combines the hashes of the id and the type name. Deliberately not
  /// noexcept: libstdc++ then keeps each node's hash code, so lookups in a
  /// table of a million contexts compare codes before keys and rehashing
  /// does not hash every key again.
  std::size_t operator()(const context_key& x) const {
    auto h = boost::uuids::hash_value(x.id);
    return h
           ^ (std::hash<std::string>{}(x.type) + 0x9e3779b97f4a7c15ULL
              + (h << 6) + (h >> 2));
  }
};

} // namespace ctxstore::messages
