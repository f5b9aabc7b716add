#include "tls_socket.hpp"

#include <sys/socket.h>

#include <openssl/bio.h>

namespace ctxstore::detail {

namespace {

/// A socket BIO's write, with MSG_NOSIGNAL: a peer that closed its end
/// makes send() fail with EPIPE instead of raising SIGPIPE.
int send_without_sigpipe(BIO* bio, const char* data, int len) {
  int fd = -1;
  BIO_get_fd(bio, &fd);
  auto sent = ::send(fd, data, static_cast<size_t>(len), MSG_NOSIGNAL);
  BIO_clear_retry_flags(bio);
  if (sent <= 0 && BIO_sock_should_retry(static_cast<int>(sent)))
    BIO_set_retry_write(bio);
  return static_cast<int>(sent);
}

/// OpenSSL's socket BIO with `send_without_sigpipe` as its write (one for
/// the process, never freed).
const BIO_METHOD* socket_without_sigpipe() {
  static BIO_METHOD* method = [] {
    auto socket = BIO_s_socket();
    auto result = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK
                                 | BIO_TYPE_DESCRIPTOR,
                               "socket without SIGPIPE");
    if (result == nullptr)
      return result;
    BIO_meth_set_write(result, send_without_sigpipe);
    BIO_meth_set_read(result, BIO_meth_get_read(socket));
    BIO_meth_set_puts(result, BIO_meth_get_puts(socket));
    BIO_meth_set_ctrl(result, BIO_meth_get_ctrl(socket));
    BIO_meth_set_create(result, BIO_meth_get_create(socket));
    BIO_meth_set_destroy(result, BIO_meth_get_destroy(socket));
    return result;
  }();
  return method;
}

} // namespace

bool use_socket_without_sigpipe(SSL* ssl, int fd) {
  auto method = socket_without_sigpipe();
  auto bio = method != nullptr ? BIO_new(method) : nullptr;
  if (bio == nullptr)
    return false;
  BIO_set_fd(bio, fd, BIO_NOCLOSE);
  SSL_set_bio(ssl, bio, bio); // one reference for both directions
  return true;
}

} // namespace ctxstore::detail
