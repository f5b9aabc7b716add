#pragma once

#include <openssl/ssl.h>

// The socket under a TLS connection, without SIGPIPE. OpenSSL's socket BIO
// writes with write(2): a peer that closed its end raises SIGPIPE, which
// ends the process unless every call is guarded. CAF's caf::openssl::session
// guards each SSL call with three system calls (pthread_sigmask,
// sigtimedwait, pthread_sigmask), about 0.45 us each time and a third of
// what TLS adds to a remote round trip. A BIO that sends with MSG_NOSIGNAL
// needs no guard.

namespace ctxstore::detail {

/// Makes `ssl` read from and write to `fd` through OpenSSL's socket BIO with
/// send(..., MSG_NOSIGNAL) as its write (the BIO it had is freed; `fd` stays
/// open). False if OpenSSL could not make the BIO.
bool use_socket_without_sigpipe(SSL* ssl, int fd);

} // namespace ctxstore::detail
