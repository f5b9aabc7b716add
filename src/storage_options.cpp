#include "ctxstore/storage_options.hpp"

#include "ctxstore/backend.hpp"
#include "ctxstore/error.hpp"

#include "caf_internals.hpp"

#include <stdexcept>
#include <string>

#include <caf/actor_system_config.hpp>
#include <caf/config_option_adder.hpp>
#include <caf/config_option_set.hpp>
#include <caf/timespan.hpp>

namespace ctxstore {

namespace {

constexpr const char* group = "ctxstore";

} // namespace

void add_storage_options(caf::actor_system_config& cfg) {
  auto& options = detail::custom_options(cfg);
  if (options.qualified_name_lookup(group, "lease") != nullptr)
    return;
  caf::config_option_adder{options, group}
    .add<caf::timespan>("lease",
                        "longest time a session may be held (0s: no limit)")
    .add<int64_t>("max-waiters",
                  "most requests queued per context (0: no limit)")
    .add<bool>("local-fast-path",
               "local blocking clients take free contexts without a message")
    .add<std::string>("backend", "where contexts are kept durable: "
                                 "sqlite:PATH or redis://HOST:PORT/PREFIX")
    .add<caf::timespan>("idle-timeout", "with a backend: idle contexts leave "
                                        "memory after this long (0s: never)")
    .add<int64_t>("max-resident", "with a backend: about how many contexts "
                                  "stay in memory (0: no bound)")
    .add<int64_t>("max-pending-bytes",
                  "a published storage's node cuts off a peer that leaves "
                  "more than this many bytes unread (0: no bound)")
    .add<int64_t>("max-value-bytes", "most bytes a value from another node "
                                     "may take (0: no limit)")
    .add<int64_t>("watch-buffer", "changes a watcher may fall behind before "
                                  "it gets the newest with `skipped`")
    .add<bool>("require-tls", "publish and connect refuse to work without "
                              "TLS (openssl.* options)")
    .add<bool>("allow-plain-remote", "allow a plain (not TLS) publication "
                                     "on an address other than loopback")
    .add<caf::timespan>("handshake-timeout",
                        "a plain port closes a connection that has not "
                        "finished its handshake after this long (10s)")
    .add<int64_t>("max-connections", "most connections of a plain "
                                     "publication at a time (256; 0: no "
                                     "bound)");
}

storage_options storage_options_from(const caf::actor_system_config& cfg) {
  storage_options result;
  auto lease = caf::get_or(cfg, "ctxstore.lease", caf::timespan{0});
  auto max_waiters = caf::get_or(cfg, "ctxstore.max-waiters", int64_t{0});
  if (lease.count() < 0)
    throw std::invalid_argument{"ctxstore.lease must not be negative"};
  if (max_waiters < 0)
    throw std::invalid_argument{"ctxstore.max-waiters must not be negative"};
  result.lease = std::chrono::duration_cast<std::chrono::milliseconds>(lease);
  if (lease.count() > 0 && result.lease.count() == 0)
    result.lease = std::chrono::milliseconds{1}; // never round down to "none"
  result.max_waiters = static_cast<std::size_t>(max_waiters);
  result.local_fast_path = caf::get_or(cfg, "ctxstore.local-fast-path", true);
  auto idle = caf::get_or(cfg, "ctxstore.idle-timeout", caf::timespan{0});
  if (idle.count() < 0)
    throw std::invalid_argument{"ctxstore.idle-timeout must not be negative"};
  result.idle_timeout
    = std::chrono::duration_cast<std::chrono::milliseconds>(idle);
  if (idle.count() > 0 && result.idle_timeout.count() == 0)
    result.idle_timeout = std::chrono::milliseconds{1};
  auto max_resident = caf::get_or(cfg, "ctxstore.max-resident", int64_t{0});
  if (max_resident < 0)
    throw std::invalid_argument{"ctxstore.max-resident must not be negative"};
  result.max_resident = static_cast<std::size_t>(max_resident);
  auto max_value = caf::get_or(cfg, "ctxstore.max-value-bytes", int64_t{0});
  if (max_value < 0)
    throw std::invalid_argument{
      "ctxstore.max-value-bytes must not be negative"};
  result.max_value_bytes = static_cast<std::size_t>(max_value);
  auto watch_buffer = caf::get_or(cfg, "ctxstore.watch-buffer", int64_t{1024});
  if (watch_buffer < 0)
    throw std::invalid_argument{"ctxstore.watch-buffer must not be negative"};
  result.watch_buffer = static_cast<std::size_t>(watch_buffer);
  auto uri = caf::get_or(cfg, "ctxstore.backend", std::string{});
  if (!uri.empty()) {
    auto opened = open_backend(uri);
    if (!opened)
      throw_error(opened.error());
    result.backend = std::move(*opened);
  }
  return result;
}

} // namespace ctxstore
