#pragma once

// The node program (examples/node.cpp) as a child process of the
// multi-process specifications (multiprocess.cpp, stalled_peer.cpp), over
// mutual TLS when the run repeats them so (tls_certs.hpp). Needs
// CTXSTORE_NODE_BINARY.

#include <chrono>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "child_process.hpp"
#include "tls_certs.hpp"

namespace {

using namespace child_processes;

/// A running node program and the port it listens on; `options` (CAF
/// options) go before the port.
struct node_process {
  child_process proc;
  uint16_t port = 0;

  explicit node_process(std::vector<std::string> options = {})
      : proc(CTXSTORE_NODE_BINARY, arguments(std::move(options))) {
    std::string prefix = "node: listening on 127.0.0.1:";
    auto line = proc.read_line(prefix, std::chrono::seconds{10});
    INFO("node output: " << proc.output());
    REQUIRE(line);
    port = static_cast<uint16_t>(std::stoi(line->substr(prefix.size())));
    REQUIRE(port != 0);
  }

  /// The options of mutual TLS when this run repeats the remote
  /// specifications over TLS (tls_certs.hpp), `options`, the port.
  static std::vector<std::string> arguments(std::vector<std::string> options) {
    std::vector<std::string> args;
    if (tls_certs::remote_over_tls())
      args = tls_certs::options("server");
    args.insert(args.end(), options.begin(), options.end());
    args.insert(args.end(), {"--port", "0"});
    return args;
  }
};

} // namespace
