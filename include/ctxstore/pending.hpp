#pragma once

#include <functional>
#include <utility>

#include <caf/error.hpp>

namespace ctxstore {

namespace detail {

template <class R>
struct value_callback {
  using type = std::function<void(R)>;
};

template <>
struct value_callback<void> {
  using type = std::function<void()>;
};

using error_callback = std::function<void(caf::error&)>;

} // namespace detail

/// A request of the `async_client`, answered later inside the calling actor.
/// `then(on_value, on_error)` says what happens with the answer; `on_error`
/// gets a `caf::error` whose code is a `ctxstore::errc` (use
/// `ctxstore::to_errc`). A request whose `then` is never called is sent all
/// the same when this object is destroyed, and its answer is dropped.
template <class R>
class pending {
public:
  /// What `then` hands the answer to: `std::function<void(R)>`, or
  /// `std::function<void()>` for `pending<void>`.
  using value_handler = typename detail::value_callback<R>::type;

  /// Sends the request and routes its answer to the two handlers.
  using starter = std::function<void(value_handler, detail::error_callback)>;

  /// A request that `start` sends once `then` is called (or at destruction).
  explicit pending(starter start) : start_(std::move(start)) {
    // nop
  }

  /// Takes over the unsent request of `other`, which then sends nothing.
  pending(pending&& other) noexcept : start_(std::move(other.start_)) {
    other.start_ = nullptr;
  }

  pending(const pending&) = delete;
  pending& operator=(const pending&) = delete;
  pending& operator=(pending&&) = delete;

  ~pending() {
    if (start_)
      start_([](auto&&...) {}, [](caf::error&) {});
  }

  /// Sends the request; `on_value` gets the answer, `on_error` the failure.
  template <class OnValue, class OnError>
  void then(OnValue on_value, OnError on_error) {
    auto start = std::move(start_);
    start_ = nullptr;
    start(value_handler{std::move(on_value)},
          detail::error_callback{std::move(on_error)});
  }

private:
  starter start_;
};

} // namespace ctxstore
