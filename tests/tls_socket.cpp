#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tls_socket.hpp"

// The socket under ctxstore's TLS connections sends with MSG_NOSIGNAL
// (src/tls_socket.hpp): a write to a peer that is gone fails with EPIPE and
// raises no SIGPIPE, which would end the process (the TLS policy calls
// SSL_write without CAF's SIGPIPE mask).

namespace {

/// Holds SIGPIPE back on this thread while it lives, so that a raised one
/// stays pending (and is seen by `raised`) instead of ending the process
/// (deterministic, with or without a sanitizer's signal handling).
struct sigpipe_catcher {
  sigset_t pipe;
  sigset_t before;

  sigpipe_catcher() {
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    REQUIRE(::pthread_sigmask(SIG_BLOCK, &pipe, &before) == 0);
  }

  ~sigpipe_catcher() {
    timespec none{};
    while (::sigtimedwait(&pipe, nullptr, &none) == SIGPIPE) {
      // consumed
    }
    ::pthread_sigmask(SIG_SETMASK, &before, nullptr);
  }

  bool raised() {
    sigset_t pending;
    sigemptyset(&pending);
    REQUIRE(::sigpending(&pending) == 0);
    return sigismember(&pending, SIGPIPE) == 1;
  }
};

/// A TLS client over a socket whose other end is closed.
struct orphaned_tls_client {
  int fds[2] = {-1, -1};
  SSL_CTX* ctx = nullptr;
  SSL* ssl = nullptr;

  orphaned_tls_client() {
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    ::close(fds[1]);
    ctx = SSL_CTX_new(TLS_client_method());
    REQUIRE(ctx != nullptr);
    ssl = SSL_new(ctx);
    REQUIRE(ssl != nullptr);
    SSL_set_connect_state(ssl);
  }

  ~orphaned_tls_client() {
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    ::close(fds[0]);
    ERR_clear_error();
  }

  /// Starts the handshake: writes the ClientHello.
  int say_hello() {
    ERR_clear_error();
    return SSL_do_handshake(ssl);
  }
};

} // namespace

SCENARIO("a TLS write to a peer that is gone raises no SIGPIPE", "[tls]") {
  GIVEN("a TLS client whose socket's other end is closed") {
    sigpipe_catcher sigpipe;
    orphaned_tls_client client;
    WHEN("it writes through ctxstore's socket BIO") {
      REQUIRE(ctxstore::detail::use_socket_without_sigpipe(client.ssl,
                                                           client.fds[0]));
      auto ret = client.say_hello();
      THEN("the write fails, and no SIGPIPE is raised") {
        CHECK(ret <= 0);
        CHECK(SSL_get_error(client.ssl, ret) == SSL_ERROR_SYSCALL);
        CHECK_FALSE(sigpipe.raised());
      }
    }
    WHEN("it writes through OpenSSL's own socket BIO") {
      REQUIRE(SSL_set_fd(client.ssl, client.fds[0]) == 1);
      auto ret = client.say_hello();
      THEN("SIGPIPE is raised (what the BIO above prevents)") {
        CHECK(ret <= 0);
        CHECK(sigpipe.raised());
      }
    }
  }
}
