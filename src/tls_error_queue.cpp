// Works around a flaw of CAF 0.17.6's OpenSSL module that lets any peer that
// fails a TLS handshake disconnect every other TLS connection of the node.
//
// OpenSSL keeps an error queue per thread, and SSL_get_error() reports
// SSL_ERROR_SSL whenever that queue is not empty, whatever the last call did
// ("the current thread's error queue must be empty before the TLS/SSL I/O
// operation is attempted", SSL_get_error(3)). CAF's caf::openssl::session
// drains the queue only when it logs (and Debian's CAF logs nothing), so
// after one failed handshake on the middleman's I/O thread, the next SSL_read
// of any other connection that merely has no data yet (WANT_READ) looks like
// a failure and CAF closes that connection: measured, every legitimate
// client lost its connection after a client without a certificate tried.
//
// The fix: these definitions of SSL_read, SSL_write, SSL_accept and
// SSL_connect in the program take precedence over libssl's for every library
// (ELF symbol interposition; the program exports them because
// libcaf_openssl, which it links, refers to them). Each empties the calling
// thread's error queue, then calls libssl's own function (dlsym RTLD_NEXT).
// Emptying looks first: ERR_clear_error() walks and frees all 16 slots of
// the queue every time (a tenth of OpenSSL's time per TLS round trip), and
// SSL_get_error() tests the queue with ERR_peek_error() too.
// libctxstore is a static library: remote.cpp refers to
// tls_error_queue_guard() so that the linker keeps this file.

#include <dlfcn.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <atomic>

namespace ctxstore::detail {

/// Referenced by remote.cpp so that a static link keeps the wrappers below.
int tls_error_queue_guard() {
  return 1;
}

} // namespace ctxstore::detail

namespace {

/// What SSL_get_error() needs before an I/O call: an empty queue.
void empty_error_queue() {
  if (ERR_peek_error() != 0)
    ERR_clear_error();
}

template <class F>
F next_definition(std::atomic<F>& cache, const char* name) {
  auto fn = cache.load(std::memory_order_acquire);
  if (fn == nullptr) {
    fn = reinterpret_cast<F>(dlsym(RTLD_NEXT, name));
    cache.store(fn, std::memory_order_release);
  }
  return fn;
}

using io_fn = int (*)(SSL*, void*, int);
using wr_fn = int (*)(SSL*, const void*, int);
using hs_fn = int (*)(SSL*);

std::atomic<io_fn> real_read{nullptr};
std::atomic<wr_fn> real_write{nullptr};
std::atomic<hs_fn> real_accept{nullptr};
std::atomic<hs_fn> real_connect{nullptr};

} // namespace

extern "C" {

int SSL_read(SSL* ssl, void* buf, int num) {
  empty_error_queue();
  return next_definition(real_read, "SSL_read")(ssl, buf, num);
}

int SSL_write(SSL* ssl, const void* buf, int num) {
  empty_error_queue();
  return next_definition(real_write, "SSL_write")(ssl, buf, num);
}

int SSL_accept(SSL* ssl) {
  empty_error_queue();
  return next_definition(real_accept, "SSL_accept")(ssl);
}

int SSL_connect(SSL* ssl) {
  empty_error_queue();
  return next_definition(real_connect, "SSL_connect")(ssl);
}

} // extern "C"
