#pragma once

// The JSON of the HTTP example (http_front_end.cpp), with nlohmann/json
// (Debian: nlohmann-json3-dev): request bodies read strictly, carts and
// errors written. A body is a JSON object with known fields only; a field
// meant to be an integer must be one and within its range (`1e3`, `1.5`,
// `"2"` and `1-2` are refused, not rounded or cut); strings are decoded
// (`"\u0000"` is a NUL character, `"\u00e9"` is "é"). Anything else throws
// `bad_body`, whose text tells the client what is wrong.

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <stdexcept>
#include <string>

#include <boost/uuid/uuid_io.hpp>
#include <nlohmann/json.hpp>

#include "context_types.hpp"
#include "ctxstore/context_id.hpp"
#include "ctxstore/versioned.hpp"

namespace examples {

/// Objects keep their fields in the order written: `{"type":..,"id":..}`.
using json = nlohmann::ordered_json;

/// A request body that is not what its route expects; `what()` says why.
struct bad_body : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Text of `x` as JSON; invalid UTF-8 (say, from a URL) becomes U+FFFD.
inline std::string dump(const json& x) {
  return x.dump(-1, ' ', false, json::error_handler_t::replace);
}

/// How a message shows a value it refuses: a scalar as written (at most 40
/// characters), an array or object by its type only (it could be nested a
/// million levels deep, too deep to write out).
inline std::string shown(const json& x) {
  if (x.is_structured())
    return std::string{"an "} + x.type_name();
  auto text = dump(x);
  return text.size() <= 40 ? text : text.substr(0, 37) + "...";
}

/// The body as a JSON object whose fields are all in `known`.
inline json parse_object(const std::string& body,
                         std::initializer_list<const char*> known) {
  json obj;
  try {
    obj = json::parse(body);
  } catch (const json::parse_error& e) { // "[json.exception...] parse error"
    std::string what = e.what();
    throw bad_body{"body is not valid JSON: "
                   + what.substr(what.find(']') + 2)};
  }
  if (!obj.is_object())
    throw bad_body{"body must be a JSON object, not " + shown(obj)};
  for (auto& [key, value] : obj.items()) {
    bool ok = false;
    for (auto name : known)
      ok = ok || key == name;
    if (!ok)
      throw bad_body{"unknown field " + shown(key)};
  }
  return obj;
}

/// The string in `obj[key]`, decoded; throws if it is missing or no string.
inline std::string string_field(const json& obj, const std::string& key) {
  auto i = obj.find(key);
  if (i == obj.end())
    throw bad_body{"field " + dump(key) + " is missing"};
  if (!i->is_string())
    throw bad_body{"field " + dump(key) + " must be a string, not "
                   + shown(*i)};
  return i->get<std::string>();
}

/// The integer in `obj[key]`, which must lie in [min, max] (0 <= max), or
/// `fallback` if the field is missing; throws if there is neither.
inline int64_t integer_field(const json& obj, const std::string& key,
                             int64_t min, int64_t max,
                             std::optional<int64_t> fallback = {}) {
  auto i = obj.find(key);
  if (i == obj.end()) {
    if (fallback)
      return *fallback;
    throw bad_body{"field " + dump(key) + " is missing"};
  }
  // nlohmann/json keeps a number as it was written: 1000 is an unsigned or
  // signed integer, 1e3 and 1000.0 are floats (so is an integer too large
  // for 64 bits).
  if (i->is_number_unsigned()) {
    auto x = i->get<uint64_t>();
    if (x <= static_cast<uint64_t>(max) && (min <= 0 || x >= uint64_t(min)))
      return static_cast<int64_t>(x);
  } else if (i->is_number_integer()) {
    auto x = i->get<int64_t>();
    if (x >= min && x <= max)
      return x;
  }
  throw bad_body{"field " + dump(key) + " must be an integer from "
                 + std::to_string(min) + " to " + std::to_string(max) + ", not "
                 + shown(*i)};
}

/// {"type":"cart","id":..,"version":..,"owner":..,"total":..,
/// "items":[{"sku":..,"qty":..}]}
inline std::string cart_json(const ctxstore::context_id& id,
                             const ctxstore::versioned<cart>& v) {
  json items = json::array();
  for (auto& x : v.value.items)
    items.push_back({{"sku", x.sku}, {"qty", x.qty}});
  return dump({{"type", "cart"},
               {"id", boost::uuids::to_string(id)},
               {"version", v.version},
               {"owner", v.value.owner},
               {"total", v.value.total},
               {"items", std::move(items)}});
}

/// {"error":"<code>","message":"<what is wrong>"}
inline std::string error_json(const std::string& code,
                              const std::string& message) {
  return dump({{"error", code}, {"message", message}});
}

} // namespace examples
