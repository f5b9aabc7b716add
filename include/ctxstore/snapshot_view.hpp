#pragma once

#include <cstdint>
#include <utility>

#include <caf/message.hpp>

namespace ctxstore {

/// A read-only snapshot that shares the committed value instead of copying
/// it: the storage never changes a committed value in place (a commit
/// replaces it), so the view stays valid and unchanged however long it is
/// kept, and costs a reference count instead of a copy of `T`.
template <class T>
class snapshot_view {
public:
  /// @private: made by `blocking_client::view`.
  snapshot_view(caf::message value, uint64_t version)
      : value_(std::move(value)), version_(version) {
    // nop
  }

  /// The committed value.
  const T& operator*() const noexcept {
    return value_.get_as<T>(0);
  }

  /// Member access to the committed value.
  const T* operator->() const noexcept {
    return &value_.get_as<T>(0);
  }

  /// Its version: each store or commit adds 1.
  uint64_t version() const noexcept {
    return version_;
  }

  /// @private: the message of one T that the view shares.
  const caf::message& message() const noexcept {
    return value_;
  }

private:
  caf::message value_; // holds one T; never written through
  uint64_t version_ = 0;
};

} // namespace ctxstore
