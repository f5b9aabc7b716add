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

volatile sig_atomic_t sigpipe_raised = 0;

void on_sigpipe(int) {
  sigpipe_raised = 1;
}

/// Counts SIGPIPE in `sigpipe_raised` while it lives.
struct sigpipe_counter {
  struct sigaction before {};

  sigpipe_counter() {
    sigpipe_raised = 0;
    struct sigaction count {};
    count.sa_handler = on_sigpipe;
    sigemptyset(&count.sa_mask);
    REQUIRE(::sigaction(SIGPIPE, &count, &before) == 0);
  }

  ~sigpipe_counter() {
    ::sigaction(SIGPIPE, &before, nullptr);
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
    sigpipe_counter counter;
    orphaned_tls_client client;
    WHEN("it writes through ctxstore's socket BIO") {
      REQUIRE(ctxstore::detail::use_socket_without_sigpipe(client.ssl,
                                                           client.fds[0]));
      auto ret = client.say_hello();
      THEN("the write fails, and no SIGPIPE is raised") {
        CHECK(ret <= 0);
        CHECK(SSL_get_error(client.ssl, ret) == SSL_ERROR_SYSCALL);
        CHECK(sigpipe_raised == 0);
      }
    }
    WHEN("it writes through OpenSSL's own socket BIO") {
      REQUIRE(SSL_set_fd(client.ssl, client.fds[0]) == 1);
      auto ret = client.say_hello();
      THEN("SIGPIPE is raised (what the BIO above prevents)") {
        CHECK(ret <= 0);
        CHECK(sigpipe_raised == 1);
      }
    }
  }
}
