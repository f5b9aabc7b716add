#pragma once

#include <type_traits>
#include <utility>

#include <caf/message.hpp>

#include "ctxstore/snapshot_view.hpp"

namespace ctxstore {

/// An immutable value held by reference count. Storing it (`store(id,
/// shared)`) costs no copy of `T`: the contexts it is stored under share it
/// with each other and with this handle, as the Python reference stores a
/// reference to one object. Nobody can change it through the storage: a
/// session's first write copies it (copy-on-write), a store replaces it.
template <class T>
class shared_value {
public:
  static_assert(!std::is_reference_v<T> && !std::is_const_v<T>,
                "shared_value<T> holds a plain value type");

  /// Takes `value` (move it in to avoid a copy).
  explicit shared_value(T value) : value_(caf::make_message(std::move(value))) {
    // nop
  }

  /// Shares what `view` shows: storing it copies nothing.
  explicit shared_value(const snapshot_view<T>& view) : value_(view.message()) {
    // nop
  }

  /// The value.
  const T& operator*() const noexcept {
    return value_.get_as<T>(0);
  }

  /// Member access to the value.
  const T* operator->() const noexcept {
    return &value_.get_as<T>(0);
  }

  /// @private: the message of one T that a store shares.
  const caf::message& message() const noexcept {
    return value_;
  }

private:
  caf::message value_; // holds one T; never written through
};

/// `shared_value<T>{std::forward<T>(value)}` with `T` deduced.
template <class T>
shared_value<std::decay_t<T>> share(T&& value) {
  return shared_value<std::decay_t<T>>{std::forward<T>(value)};
}

} // namespace ctxstore
