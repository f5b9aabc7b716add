#pragma once

// Two actor systems in one process, connected over 127.0.0.1 by CAF's
// middleman: a storage on the first, a client of it on the second. Plain TCP,
// or mutual TLS when CTXSTORE_TEST_TLS_DIR is set (ctest remote_over_tls; see
// tls_certs.hpp). Shared by the remote specifications (remote.cpp,
// feed_remote.cpp, info.cpp).

#include <memory>
#include <string>

#include <caf/io/middleman.hpp>

#include "fixture.hpp"
#include "tls_certs.hpp"

namespace remote_fixture {

/// A test configuration with the middleman (and TLS when asked for).
struct node_config : test_config {
  explicit node_config(const char* role = "client") {
    load<caf::io::middleman>();
    if (tls_certs::remote_over_tls())
      tls_certs::use(*this, role);
  }
};

/// A storage node and a client node, connected.
struct two_nodes {
  explicit two_nodes(ctxstore::storage_options opts = {},
                     ctxstore::publish_options popts = {})
      : server_sys(server_cfg), client_sys(client_cfg) {
    local = ctxstore::spawn_storage(server_sys, opts);
    auto port = ctxstore::publish(server_sys, local, 0, popts);
    INFO((port ? std::string{} : ctxstore::describe(port.error())));
    REQUIRE(port);
    REQUIRE(*port != 0);
    auto handle = ctxstore::connect(client_sys, "127.0.0.1", *port);
    INFO((handle ? std::string{} : ctxstore::describe(handle.error())));
    REQUIRE(handle);
    remote = *handle;
    local_client
      = std::make_unique<ctxstore::blocking_client>(server_sys, local);
    remote_client
      = std::make_unique<ctxstore::blocking_client>(client_sys, remote);
  }

  explicit two_nodes(ctxstore::publish_options popts)
      : two_nodes(ctxstore::storage_options{}, std::move(popts)) {
    // nop
  }

  ~two_nodes() {
    local_client.reset();
    remote_client.reset();
    local = ctxstore::storage{};
    remote = ctxstore::storage{};
  }

  node_config server_cfg{"server"};
  node_config client_cfg{"client"};
  caf::actor_system server_sys;
  caf::actor_system client_sys;
  ctxstore::storage local;
  ctxstore::storage remote;
  std::unique_ptr<ctxstore::blocking_client> local_client;
  std::unique_ptr<ctxstore::blocking_client> remote_client;
};

} // namespace remote_fixture
