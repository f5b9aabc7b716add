#pragma once

#include <atomic>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include <caf/actor_system_config.hpp>
#include <caf/type_nr.hpp>

#include "ctxstore/detail/type_table.hpp"
#include "ctxstore/detail/value_codec.hpp"
#include "ctxstore/error.hpp"
#include "ctxstore/messages/protocol.hpp"
#include "ctxstore/storage_options.hpp"

namespace ctxstore {

namespace detail {

/// The registered name of `T`; throws `ctxstore::error{unknown_type}` if `T`
/// was never registered with `add_context_type`.
template <class T>
const std::string& type_name_of() {
  static std::atomic<const std::string*> cached{nullptr};
  auto ptr = cached.load(std::memory_order_acquire);
  if (ptr == nullptr) {
    ptr = context_type_name(typeid(T));
    if (ptr == nullptr)
      throw error{errc::unknown_type,
                  std::string{"context type not registered: "}
                    + typeid(T).name()};
    cached.store(ptr, std::memory_order_release);
  }
  return *ptr;
}

} // namespace detail

/// Registers `T` as a context type called `name` (as in the reference's
/// `ctx_type.__name__`, it appears in error texts). Call it on the config
/// before the `caf::actor_system` is constructed, on every node that uses `T`.
/// `T` needs `inspect()`, a default constructor and copy; it must be a type of
/// your own (not a CAF builtin such as `int` or `std::string`).
/// Also declares the `ctxstore` option group (see `storage_options`).
/// Throws `std::logic_error` if `name` or `T` is already bound differently.
template <class T>
void add_context_type(caf::actor_system_config& cfg, const std::string& name) {
  static_assert(caf::type_nr<T>::value == 0,
                "context types must be user-defined types, not CAF builtins");
  static_assert(std::is_default_constructible<T>::value
                  && std::is_copy_constructible<T>::value,
                "context types must be default- and copy-constructible");
  detail::bind_context_type(typeid(T), name,
                            {&detail::value_codec<T>::save,
                             &detail::value_codec<T>::load,
                             &detail::value_codec<T>::larger_than});
  cfg.add_message_type<T>(name);
  messages::add_protocol_types(cfg);
  add_storage_options(cfg);
}

} // namespace ctxstore
