#pragma once

// The registry of context types of this process: which C++ type is bound to
// which name, and the codec that writes its values for other nodes. It
// depends on nothing else of ctxstore, so that the protocol (payload's wire
// form, key validation) and add_context_type can both use it.

#include <cstddef>
#include <string>
#include <typeinfo>
#include <utility>
#include <vector>

#include <caf/fwd.hpp>

namespace ctxstore::detail {

/// The codec of one context type, type-erased.
struct codec_functions {
  caf::error (*save)(const caf::message& value, std::vector<char>& buf);
  caf::error (*load)(const char* data, size_t size, caf::message& value);
  /// True if the value holds more than `limit` bytes (an estimate).
  bool (*larger_than)(const caf::message& value, size_t limit);
};

/// Records that `type` is the context type called `name` in this process,
/// written and read for other nodes by `codec`. Throws `std::logic_error` if
/// either is already bound to something else.
void bind_context_type(const std::type_info& type, const std::string& name,
                       codec_functions codec);

/// The name and codec bound to `type`, or nullptr. Lives forever.
const std::pair<std::string, codec_functions>*
context_codec_of(const std::type_info& type);

/// The codec bound to `name`, or nullptr. Lives forever.
const codec_functions* context_codec_of(const std::string& name);

/// True if `value` (a message of one value) holds more than `limit` bytes:
/// measured by its type's codec if it is a context type, else never. Cheap
/// on repeated calls with the same type on one thread (no lock).
bool value_larger_than(const caf::message& value, size_t limit);

/// The name bound to `type`, or nullptr. The string lives forever.
const std::string* context_type_name(const std::type_info& type);

/// The type bound to `name`, or nullptr.
const std::type_info* context_type_of(const std::string& name);

} // namespace ctxstore::detail
