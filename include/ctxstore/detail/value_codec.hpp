#pragma once

// The wire form of context values. CAF 0.17's binary serializer costs a
// virtual call and a `caf::error` per field: the benchmark's 1,063 B value
// took 4.1 us to write and 6.2 us to read, on each side of a ~105 us remote
// round trip (and the client's middleman thread reads every answer).
// `value_writer` and `value_reader` walk the same `inspect` functions inline
// (1.4 us and 2.1 us). Fields they do not know (CAF builtins such as atoms,
// durations, `caf::optional`) are handed to CAF's own binary serializer in
// place, so any type that CAF can send works.

#include <array>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/detail/type_traits.hpp>
#include <caf/error.hpp>
#include <caf/message.hpp>
#include <caf/meta/annotation.hpp>
#include <caf/meta/load_callback.hpp>
#include <caf/meta/save_callback.hpp>
#include <caf/sec.hpp>

namespace ctxstore::detail {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "the value codec writes numbers in the host's byte order");

/// What the codec's inspectors answer for each field: failed or not. A
/// `caf::error` would cost an out-of-line destructor call per field.
class codec_status {
public:
  codec_status() = default;

  codec_status(caf::none_t) {
    // nop
  }

  /// From a callback (meta::save_callback, meta::load_callback) or CAF's
  /// serializer.
  codec_status(const caf::error& err) : failed_(static_cast<bool>(err)) {
    // nop
  }

  static codec_status failure() noexcept {
    codec_status result;
    result.failed_ = true;
    return result;
  }

  /// True if it failed (like `caf::error`).
  explicit operator bool() const noexcept {
    return failed_;
  }

private:
  bool failed_ = false;
};

/// True if `inspect(I&, T&)` exists (found by ADL).
template <class I, class T, class = void>
struct has_inspect : std::false_type {};

template <class I, class T>
struct has_inspect<
  I, T, std::void_t<decltype(inspect(std::declval<I&>(), std::declval<T&>()))>>
    : std::true_type {};

template <class T>
struct is_std_array : std::false_type {};

template <class T, size_t N>
struct is_std_array<std::array<T, N>> : std::true_type {};

/// Fixed-size arrays: their elements only, as CAF writes them.
template <class T>
constexpr bool is_fixed_array = std::is_array_v<T> || is_std_array<T>::value;

/// Numbers and strings this codec writes itself; anything else is a
/// container, has an `inspect`, or goes to CAF.
template <class T>
constexpr bool is_plain_number
  = std::is_arithmetic_v<T> && !std::is_same_v<T, long double>;

/// What both inspectors do with the fields an `inspect` hands them: each in
/// turn, up to the first failure. `IsCallback` picks CAF's save or load
/// callbacks (run in place); annotations and unsafe message types are
/// skipped; every other field goes to `Derived::step`.
template <class Derived, template <class> class IsCallback>
class field_walker {
public:
  using result_type = codec_status;

  codec_status operator()() {
    return {};
  }

  template <class T, class... Ts>
  codec_status operator()(T&& x0, Ts&&... xs) {
    codec_status result;
    auto one = [&](auto&& x) {
      using type = std::remove_cv_t<std::remove_reference_t<decltype(x)>>;
      if constexpr (IsCallback<type>::value)
        result = x.fun();
      else if constexpr (!caf::meta::is_annotation<type>::value
                         && !caf::is_allowed_unsafe_message_type<type>::value)
        result = static_cast<Derived&>(*this).step(const_cast<type&>(x));
      return !result;
    };
    static_cast<void>(one(std::forward<T>(x0))
                      && (one(std::forward<Ts>(xs)) && ...));
    return result;
  }
};

/// Writes a value into `buf` through its `inspect` (the saving inspector).
class value_writer
  : public field_walker<value_writer, caf::meta::is_save_callback> {
public:
  static constexpr bool reads_state = true;
  static constexpr bool writes_state = false;
  using is_saving = std::true_type;
  using is_loading = std::false_type;

  explicit value_writer(std::vector<char>& buf) : buf_(buf) {
    // nop
  }

private:
  friend field_walker;

  template <class T>
  codec_status step(T& x) {
    return put(x);
  }

  void put_size(size_t n) {
    // The same variable-length form as CAF's sequences.
    uint8_t tmp[16];
    auto i = tmp;
    auto x = static_cast<uint32_t>(n);
    while (x > 0x7f) {
      *i++ = (static_cast<uint8_t>(x) & 0x7f) | 0x80;
      x >>= 7;
    }
    *i++ = static_cast<uint8_t>(x) & 0x7f;
    raw(tmp, static_cast<size_t>(i - tmp));
  }

  void raw(const void* data, size_t n) {
    auto bytes = static_cast<const char*>(data);
    buf_.insert(buf_.end(), bytes, bytes + n);
  }

  template <class T>
  codec_status put(T& x) {
    if constexpr (std::is_same_v<T, bool>) {
      uint8_t b = x ? 1 : 0;
      raw(&b, 1);
    } else if constexpr (is_plain_number<T>) {
      raw(&x, sizeof(T));
    } else if constexpr (std::is_enum_v<T>) {
      auto u = static_cast<std::underlying_type_t<T>>(x);
      return put(u);
    } else if constexpr (std::is_same_v<T, std::string>) {
      put_size(x.size());
      raw(x.data(), x.size());
    } else if constexpr (has_inspect<value_writer, T>::value) {
      return inspect(*this, x);
    } else if constexpr (is_fixed_array<T>) {
      for (auto& y : x)
        if (auto err = put(y))
          return err;
    } else if constexpr (caf::detail::is_map_like<T>::value) {
      put_size(x.size());
      for (auto& kv : x) {
        if (auto err = put(const_cast<typename T::key_type&>(kv.first)))
          return err;
        if (auto err = put(kv.second))
          return err;
      }
    } else if constexpr (caf::detail::is_list_like<T>::value
                         && !std::is_same_v<T, std::vector<bool>>) {
      put_size(x.size());
      for (auto& y : x)
        if (auto err = put(const_cast<typename T::value_type&>(y)))
          return err;
    } else {
      caf::binary_serializer sink{nullptr, buf_};
      return sink(x);
    }
    return caf::none;
  }

  std::vector<char>& buf_;
};

/// Reads what `value_writer` wrote (the loading inspector).
class value_reader
  : public field_walker<value_reader, caf::meta::is_load_callback> {
public:
  static constexpr bool reads_state = false;
  static constexpr bool writes_state = true;
  using is_saving = std::false_type;
  using is_loading = std::true_type;

  value_reader(const char* data, size_t size) : pos_(data), end_(data + size) {
    // nop
  }

  /// True once every byte was read.
  bool at_end() const noexcept {
    return pos_ == end_;
  }

private:
  friend field_walker;

  template <class T>
  codec_status step(T& x) {
    return get(x);
  }

  codec_status get_size(size_t& n) {
    uint32_t x = 0;
    int shift = 0;
    uint8_t low7;
    do {
      if (pos_ == end_ || shift > 28)
        return codec_status::failure();
      low7 = static_cast<uint8_t>(*pos_++);
      x |= static_cast<uint32_t>(low7 & 0x7f) << shift;
      shift += 7;
    } while (low7 & 0x80);
    n = x;
    return caf::none;
  }

  codec_status raw(void* data, size_t n) {
    if (static_cast<size_t>(end_ - pos_) < n)
      return codec_status::failure();
    memcpy(data, pos_, n);
    pos_ += n;
    return caf::none;
  }

  template <class T>
  codec_status get(T& x) {
    if constexpr (std::is_same_v<T, bool>) {
      uint8_t b = 0;
      auto err = raw(&b, 1);
      x = b != 0;
      return err;
    } else if constexpr (is_plain_number<T>) {
      return raw(&x, sizeof(T));
    } else if constexpr (std::is_enum_v<T>) {
      std::underlying_type_t<T> u{};
      auto err = get(u);
      x = static_cast<T>(u);
      return err;
    } else if constexpr (std::is_same_v<T, std::string>) {
      size_t n = 0;
      if (auto err = get_size(n))
        return err;
      if (static_cast<size_t>(end_ - pos_) < n)
        return codec_status::failure();
      x.assign(pos_, n);
      pos_ += n;
      return caf::none;
    } else if constexpr (has_inspect<value_reader, T>::value) {
      return inspect(*this, x);
    } else if constexpr (is_fixed_array<T>) {
      for (auto& y : x)
        if (auto err = get(y))
          return err;
      return caf::none;
    } else if constexpr (caf::detail::is_map_like<T>::value) {
      size_t n = 0;
      if (auto err = get_size(n))
        return err;
      x.clear();
      for (size_t i = 0; i < n; ++i) {
        typename T::key_type k{};
        typename T::mapped_type v{};
        if (auto err = get(k))
          return err;
        if (auto err = get(v))
          return err;
        x.emplace(std::move(k), std::move(v));
      }
      return caf::none;
    } else if constexpr (caf::detail::is_list_like<T>::value
                         && !std::is_same_v<T, std::vector<bool>>) {
      size_t n = 0;
      if (auto err = get_size(n))
        return err;
      x.clear();
      if constexpr (std::is_same_v<T, std::vector<typename T::value_type>>)
        x.reserve(std::min<size_t>(n, end_ - pos_)); // a lie costs no memory
      for (size_t i = 0; i < n; ++i) {
        typename T::value_type y{};
        if (auto err = get(y))
          return err;
        x.insert(x.end(), std::move(y));
      }
      return caf::none;
    } else {
      caf::binary_deserializer source{nullptr, pos_,
                                      static_cast<size_t>(end_ - pos_)};
      if (auto err = source(x))
        return codec_status::failure();
      pos_ = end_ - source.remaining();
      return caf::none;
    }
  }

  const char* pos_;
  const char* end_;
};

/// Estimates the memory a value holds (its own size, string and vector
/// capacities, a node per map entry), through its `inspect` like the codec;
/// stops counting once past `limit`. Used on every commit to decide whether
/// a spare value is small enough to keep (recycled_value.hpp), so it does
/// not visit every element of a container: it counts a container as its
/// size times what its first and last elements hold (a value whose size
/// lies in elements unlike those two is underestimated). Visiting them all
/// cost 16-21 % of a cycle's instructions with the bench's value.
class value_meter
  : public field_walker<value_meter, caf::meta::is_save_callback> {
public:
  static constexpr bool reads_state = true;
  static constexpr bool writes_state = false;
  using is_saving = std::true_type;
  using is_loading = std::false_type;

  explicit value_meter(size_t limit) : limit_(limit) {
    // nop
  }

  /// Bytes counted so far (past the limit: some value above it).
  size_t bytes() const noexcept {
    return bytes_;
  }

private:
  friend field_walker;

  template <class T>
  codec_status step(T& x) {
    return add(x);
  }

  codec_status count(size_t n) {
    bytes_ += n;
    return bytes_ > limit_ ? codec_status::failure() : codec_status{};
  }

  template <class T>
  codec_status add(T& x) {
    if constexpr (std::is_same_v<
                    T, bool> || is_plain_number<T> || std::is_enum_v<T>) {
      return count(sizeof(T));
    } else if constexpr (std::is_same_v<T, std::string>) {
      return count(sizeof(T) + x.capacity());
    } else if constexpr (has_inspect<value_meter, T>::value) {
      return inspect(*this, x);
    } else if constexpr (is_fixed_array<T>) {
      for (auto& y : x)
        if (auto err = add(y))
          return err;
      return caf::none;
    } else if constexpr (caf::detail::is_map_like<T>::value) {
      constexpr size_t node_overhead = 4 * sizeof(void*);
      if (auto err = count(sizeof(T)))
        return err;
      return add_sampled(x, [this](auto& kv) {
        if (auto err = count(node_overhead))
          return err;
        if (auto err = add(const_cast<typename T::key_type&>(kv.first)))
          return err;
        return add(kv.second);
      });
    } else if constexpr (caf::detail::is_list_like<T>::value
                         && !std::is_same_v<T, std::vector<bool>>) {
      using value_type = typename T::value_type;
      if constexpr (
        std::is_same_v<
          T,
          std::vector<
            value_type>> && (is_plain_number<value_type> || std::is_enum_v<value_type>)) {
        return count(sizeof(T) + x.capacity() * sizeof(value_type));
      } else {
        if (auto err = count(sizeof(T)))
          return err;
        return add_sampled(x, [this](auto& y) {
          return add(const_cast<value_type&>(y));
        });
      }
    } else {
      return count(sizeof(T)); // a CAF type: its own size only
    }
  }

  /// Adds `x.size()` times the mean of what `one` counts for the first and
  /// the last element of `x`.
  template <class T, class F>
  codec_status add_sampled(T& x, F one) {
    auto n = static_cast<size_t>(x.size());
    if (n == 0)
      return caf::none;
    auto before = bytes_;
    auto first = one(*x.begin());
    if (first || n == 1)
      return first;
    if (auto err = one(*std::prev(x.end())))
      return err;
    auto sampled = bytes_ - before; // two elements
    bytes_ = before;
    return count(sampled / 2 * n);
  }

  size_t limit_;
  size_t bytes_ = 0;
};

/// Writes and reads one context type `T` (see add_context_type).
template <class T>
struct value_codec {
  static caf::error save(const caf::message& value, std::vector<char>& buf) {
    value_writer sink{buf};
    if (sink(const_cast<T&>(value.template get_as<T>(0))))
      return caf::sec::invalid_argument;
    return caf::none;
  }

  static caf::error load(const char* data, size_t size, caf::message& value) {
    T decoded{};
    value_reader source{data, size};
    if (source(decoded) || !source.at_end())
      return caf::sec::invalid_argument;
    // Copied, not moved, into the message: the value reaches readers on other
    // threads through CAF's uninstrumented mailbox and snapshot hand-offs,
    // which ThreadSanitizer follows only for storage CAF itself wrote
    // (tests/tsan.supp). One copy per value read from a backend.
    value = caf::make_message(static_cast<const T&>(decoded));
    return caf::none;
  }

  /// True if the T in `value` holds more than `limit` bytes (value_meter).
  static bool larger_than(const caf::message& value, size_t limit) {
    value_meter meter{limit};
    static_cast<void>(meter(const_cast<T&>(value.template get_as<T>(0))));
    return meter.bytes() > limit;
  }
};

} // namespace ctxstore::detail
