#pragma once

#include <cstdint>
#include <string>

#include <caf/actor_system.hpp>
#include <caf/expected.hpp>

#include "ctxstore/storage.hpp"

namespace ctxstore {

/// Makes `st` reachable from other CAF nodes on `address`:`port` through
/// CAF's middleman (load `caf::io::middleman` into the config). Port 0 picks
/// a free port. Returns the port, or an `errc::storage_down` error.
caf::expected<uint16_t> publish(caf::actor_system& sys, const storage& st,
                                uint16_t port,
                                const std::string& address = "127.0.0.1");

/// Connects to a storage that another node published on `host`:`port`. The
/// handle works with `blocking_client` and `async_client` like a local one.
/// Nothing listening, or a lost connection later, is `errc::storage_down`.
caf::expected<storage> connect(caf::actor_system& sys, const std::string& host,
                               uint16_t port);

} // namespace ctxstore
