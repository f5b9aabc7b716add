#pragma once

// The context types of the distributed examples, shared by the node
// (node.cpp) and its clients (remote_client.cpp): every node that stores or
// reads a context must register its type under the same name, with the same
// fields in the same order (that is what travels on the wire).

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <caf/actor_system_config.hpp>
#include <caf/meta/type_name.hpp>

#include "ctxstore/context_types.hpp"

// In a namespace of their own, so that a program (or a test) that has other
// `cart` types can include this header too. Note that the *names* registered
// with `add_context_type` are process-wide: a process may bind "cart" to one
// C++ type only.
namespace examples {

/// One line of a cart.
struct item {
  std::string sku;
  int qty = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, item& x) {
  return f(caf::meta::type_name("item"), x.sku, x.qty);
}

/// A shopping cart: the context the examples store, share and update.
struct cart {
  std::string owner;
  std::vector<item> items;
  std::map<std::string, std::string> tags;
  int64_t total = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cart& x) {
  return f(caf::meta::type_name("cart"), x.owner, x.items, x.tags, x.total);
}

/// Registers the example context types; call it on the config of every node
/// before its `caf::actor_system` is constructed.
inline void add_example_types(caf::actor_system_config& cfg) {
  ctxstore::add_context_type<cart>(cfg, "cart");
}

} // namespace examples
