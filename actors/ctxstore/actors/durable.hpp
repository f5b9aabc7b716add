#pragma once

#include <cstdint>
#include <optional>
#include <utility>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "ctxstore/actors/context.hpp"
#include "ctxstore/backend.hpp"
#include "ctxstore/messages/context_key.hpp"
#include "ctxstore/messages/payload.hpp"

// What the owner of a durable context hands its backend and gets back: a
// context's value in its type's wire form (the codec that add_context_type
// registered), and a change as a `backend_write`.

namespace ctxstore::actors {

/// The write that makes `value` version `version` of `key`, replacing
/// `replaces` (0: the backend holds none); or an error (`bad_request`) if the
/// value does not encode.
caf::expected<backend_write> write_of(const messages::context_key& key,
                                      uint64_t version, uint64_t replaces,
                                      const messages::payload& value);

/// What a failed write tells its requester: `conflict`, `backend_failure`
/// and `bad_request` (a value that does not encode) as they are, anything
/// else as `backend_failure`.
caf::error backend_error(const caf::error& err);

/// The write that erases version `version` of `key`.
backend_write erase_of(const messages::context_key& key, uint64_t version);

/// The value of `key` that a backend returned: (version, value), or an error
/// (`backend_failure`) naming the context if the bytes do not decode as its
/// type.
caf::expected<std::pair<uint64_t, messages::payload>>
value_of(const messages::context_key& key, const stored_value& x);

/// A `loading` context whose store the backend made in one step
/// (backend::store, backend::store_and_wait) at `version`: loaded as the
/// version before it, whose value was replaced unread, then `value` stored
/// as `version`, which it returns. (The caller holds its lock; nothing
/// waits on it.)
uint64_t apply_unread_store(context& ctx, uint64_t version,
                            messages::payload value, effects& fx);

} // namespace ctxstore::actors
