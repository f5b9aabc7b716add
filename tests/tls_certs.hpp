#pragma once

// Mutual TLS for the specifications, with certificates made at test time by
// tests/tls/make-certs.sh (the openssl command): a CA, a server and a client
// certificate, a certificate of another CA and an expired one.
//
// The remote and multiprocess specifications run plain by default; with
// CTXSTORE_TEST_TLS_DIR naming such a directory (ctest remote_over_tls, via
// tests/tls/run-with-certs.sh) every node of theirs uses TLS instead. The
// intruder specifications always use TLS, with that directory or one made
// once per process.

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <caf/actor_system_config.hpp>
#include <catch2/catch.hpp>

#include "ctxstore/remote.hpp"

namespace tls_certs {

/// True if the remote specifications repeat over TLS in this run.
inline bool remote_over_tls() {
  return std::getenv("CTXSTORE_TEST_TLS_DIR") != nullptr;
}

/// The directory of test certificates: CTXSTORE_TEST_TLS_DIR, or one made
/// on first use (removed when the process ends).
inline const std::string& dir() {
  struct made {
    std::string path;
    made() {
      if (auto env = std::getenv("CTXSTORE_TEST_TLS_DIR")) {
        path = env;
        owned = false;
        return;
      }
      std::string tmpl = std::filesystem::temp_directory_path().string()
                         + "/ctxstore-tls.XXXXXX";
      if (::mkdtemp(tmpl.data()) == nullptr)
        throw std::runtime_error{"mkdtemp failed"};
      path = tmpl;
      auto cmd = std::string{"sh '"} + CTXSTORE_MAKE_CERTS_SCRIPT + "' '" + path
                 + "' >/dev/null";
      if (std::system(cmd.c_str()) != 0)
        throw std::runtime_error{
          "make-certs.sh failed (is openssl installed?)"};
    }
    ~made() {
      std::error_code ignored;
      if (owned)
        std::filesystem::remove_all(path, ignored);
    }
    bool owned = true;
  };
  static made certs;
  return certs.path;
}

/// Sets the `openssl.*` options of `cfg` to peer `who` ("server", "client",
/// "stranger" of another CA, "expired") trusting `ca` ("ca" or "other-ca"),
/// and loads CAF's OpenSSL module (the middleman must be loaded already).
inline void use(caf::actor_system_config& cfg, const std::string& who,
                const std::string& ca = "ca") {
  auto& d = dir();
  cfg.set("openssl.certificate", d + "/" + who + ".pem");
  cfg.set("openssl.key", d + "/" + who + ".key");
  cfg.set("openssl.cafile", d + "/" + ca + ".pem");
  ctxstore::load_tls(cfg);
}

/// The same as CAF command-line options, for a child process.
inline std::vector<std::string> options(const std::string& who,
                                        const std::string& ca = "ca") {
  auto& d = dir();
  return {"--openssl.certificate=" + d + "/" + who + ".pem",
          "--openssl.key=" + d + "/" + who + ".key",
          "--openssl.cafile=" + d + "/" + ca + ".pem"};
}

} // namespace tls_certs
