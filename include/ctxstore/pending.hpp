#pragma once

#include <functional>
#include <type_traits>
#include <utility>

#include <caf/error.hpp>

namespace ctxstore {

namespace detail {

/// The declared type of the first parameter of a callable with one
/// non-template call operator (a lambda, a `std::function`), else void.
template <class M>
struct first_parameter_of_member {
  using type = void;
};

template <class C, class Ret, class A, class... As>
struct first_parameter_of_member<Ret (C::*)(A, As...)> {
  using type = A;
};

template <class C, class Ret, class A, class... As>
struct first_parameter_of_member<Ret (C::*)(A, As...) const> {
  using type = A;
};

template <class F, class = void>
struct first_parameter {
  using type = void;
};

template <class F>
struct first_parameter<F, std::void_t<decltype(&F::operator())>> {
  using type =
    typename first_parameter_of_member<decltype(&F::operator())>::type;
};

template <class Ret, class A>
struct first_parameter<Ret (*)(A), void> {
  using type = A;
};

template <class F>
using first_parameter_t = typename first_parameter<std::decay_t<F>>::type;

/// An answer on its way to a `then` handler. Owned: the handler may take it
/// over (it gets it moved). Borrowed: it lives only during the call (e.g. a
/// committed value shared with the storage); a handler that takes `const R&`
/// reads it in place, one that takes `R` by value gets a copy.
template <class R>
class answer {
public:
  /// An answer the handler may take over.
  answer(R&& x) noexcept : owned_(&x) { // NOLINT: implicit on purpose
    // nop
  }

  /// An answer the handler may only read (copying it if it wants its own).
  answer(const R& x) noexcept : borrowed_(&x) { // NOLINT: implicit on purpose
    // nop
  }

  /// Calls `f` with the answer as an rvalue (as `std::function<void(R)>`
  /// would), copying a borrowed one; a handler whose parameter is declared
  /// `const R&` reads a borrowed answer in place instead.
  template <class F>
  void deliver(F& f) const {
    if (owned_ != nullptr) {
      f(std::move(*owned_));
    } else if constexpr (std::is_same_v<first_parameter_t<F>, const R&>) {
      f(*borrowed_);
    } else {
      R copy{*borrowed_};
      f(std::move(copy));
    }
  }

private:
  R* owned_ = nullptr;
  const R* borrowed_ = nullptr;
};

template <class R>
struct value_callback {
  using type = std::function<void(answer<R>)>;

  template <class F>
  static type wrap(F&& f) {
    if constexpr (std::is_same_v<std::decay_t<F>, type>)
      return std::forward<F>(f); // a handler of another pending: as it is
    else
      return [f = std::forward<F>(f)](answer<R> x) mutable { x.deliver(f); };
  }
};

template <>
struct value_callback<void> {
  using type = std::function<void()>;

  template <class F>
  static type wrap(F&& f) {
    return type{std::forward<F>(f)};
  }
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
  /// What `then` hands the answer to: `std::function<void(answer<R>)>`
  /// (the handler given to `then` gets an `R`, moved or copied, or a
  /// `const R&` if it takes one), or `std::function<void()>` for
  /// `pending<void>`.
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
  /// `on_value` may take the answer by value or as `const R&`; the latter
  /// avoids a copy where the answer is shared (a snapshot reads the stored
  /// value in place; the reference is valid during the call).
  template <class OnValue, class OnError>
  void then(OnValue on_value, OnError on_error) {
    auto start = std::move(start_);
    start_ = nullptr;
    start(detail::value_callback<R>::wrap(std::move(on_value)),
          detail::error_callback{std::move(on_error)});
  }

private:
  starter start_;
};

} // namespace ctxstore
