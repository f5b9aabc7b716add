#include "guarded_scribe.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <climits>
#include <exception>
#include <functional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/io/basp/header.hpp>
#include <caf/io/network/default_multiplexer.hpp>
#include <caf/io/network/native_socket.hpp>
#include <caf/io/network/stream_impl.hpp>
#include <caf/io/scribe.hpp>
#include <caf/openssl/session.hpp>
#include <caf/policy/tcp.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tls_socket.hpp"

namespace ctxstore::detail {

namespace {

namespace net = caf::io::network;

/// The SSL object of a caf::openssl::session, which keeps it private: an
/// explicit instantiation may name a private member ([temp.spec]), and the
/// friend it defines hands the member out. A CAF that renames it fails to
/// build here.
SSL* ssl_of(const caf::openssl::session& session);

template <SSL* caf::openssl::session::*Member>
struct session_ssl_access {
  friend SSL* ssl_of(const caf::openssl::session& session) {
    return session.*Member;
  }
};

template struct session_ssl_access<&caf::openssl::session::ssl_>;

/// A TLS session for `fd` (caf::openssl::make_session), or nullptr. CAF's
/// session loads the certificate files for every connection and throws when
/// it cannot (out of file descriptors: a flood of connections), which would
/// end the process from the middleman's thread.
caf::openssl::session_ptr tls_session(caf::actor_system& sys,
                                      net::native_socket fd, bool accepted) {
  try {
    // Its socket BIO, set by CAF, wrote the first handshake message at
    // most: nothing is buffered in it to lose.
    auto session = caf::openssl::make_session(sys, fd, accepted);
    if (session && use_socket_without_sigpipe(ssl_of(*session), fd))
      return session;
  } catch (const std::exception&) {
    // below
  }
  ERR_clear_error();
  return nullptr;
}

/// Whether a TLS connection finished its TLS handshake, and whether BASP
/// asked to send meanwhile.
struct tls_progress {
  bool established = false;
  bool flush_pending = false;
  std::function<void()> flush; // sends what BASP asked to send
};

/// The stream policy of a TLS connection: caf::openssl's (its
/// middleman_actor.cpp; its scribe and doorman are not in its headers), and
/// two fixes.
/// - CAF's session reports "success, 0 bytes" from a write while the TLS
///   handshake waits for the peer, so CAF keeps the connection in the write
///   set: the I/O thread spins until the peer answers or the connection
///   closes (a silent peer: a core). Here nothing is written (the scribe
///   holds BASP's flush back) before the handshake is done; reads drive it.
/// - CAF's session blocks SIGPIPE around every SSL call (three system calls,
///   about 0.45 us per SSL call: 3.6 us per remote round trip with both ends
///   on one core, 30 % of what TLS added to it). Once the handshake is done,
///   reads and writes call SSL_read and SSL_write directly: the socket's BIO
///   sends with MSG_NOSIGNAL (tls_socket.hpp), so there is no SIGPIPE to
///   block.
class tls_policy {
public:
  tls_policy(caf::openssl::session_ptr session, tls_progress* progress)
      : session_(std::move(session)),
        ssl_(ssl_of(*session_)),
        progress_(progress) {
    // nop
  }

  net::rw_state read_some(size_t& result, net::native_socket fd, void* buf,
                          size_t len) {
    if (progress_->established)
      return transfer(result, len,
                      [&](int n) { return SSL_read(ssl_, buf, n); });
    auto state = session_->read_some(result, fd, buf, len);
    if (!progress_->established && state != net::rw_state::failure) {
      // With nothing to read, CAF 0.17.6's session answers "indeterminate"
      // once the handshake is done, and "success" while it goes on.
      size_t none = 0;
      if (session_->read_some(none, fd, nullptr, 0)
          == net::rw_state::indeterminate) {
        progress_->established = true;
        if (progress_->flush_pending) {
          progress_->flush_pending = false;
          progress_->flush();
        }
      }
    }
    return state;
  }

  net::rw_state write_some(size_t& result, net::native_socket fd,
                           const void* buf, size_t len) {
    if (progress_->established)
      return transfer(result, len,
                      [&](int n) { return SSL_write(ssl_, buf, n); });
    return session_->write_some(result, fd, buf, len);
  }

  bool must_read_more(net::native_socket fd, size_t threshold) {
    return session_->must_read_more(fd, threshold);
  }

private:
  /// What caf::openssl::session::do_some makes of an SSL_read or SSL_write
  /// after the handshake, without the SIGPIPE mask.
  template <class Call>
  net::rw_state transfer(size_t& result, size_t len, Call call) {
    result = 0;
    if (len == 0)
      return net::rw_state::indeterminate;
    auto ret = call(static_cast<int>(std::min<size_t>(len, INT_MAX)));
    if (ret > 0) {
      result = static_cast<size_t>(ret);
      return net::rw_state::success;
    }
    switch (SSL_get_error(ssl_, ret)) {
      case SSL_ERROR_WANT_READ:
      case SSL_ERROR_WANT_WRITE:
        return net::rw_state::success; // 0 bytes: wait for the socket
      default:
        return net::rw_state::failure;
    }
  }

  caf::openssl::session_ptr session_;
  SSL* ssl_;
  tls_progress* progress_;
};

/// CAF's scribe (caf/io/network/scribe_impl.hpp; caf::openssl's for
/// `tls_policy`), reading the BASP framing that passes through it: BASP asks
/// for a header (32 bytes), then for its payload if it has one, then for a
/// header again.
template <class Policy>
class guarded_scribe : public caf::io::scribe {
public:
  guarded_scribe(net::default_multiplexer& mx, net::native_socket fd,
                 census_ptr peers)
      : scribe(net::conn_hdl_from_socket(fd)),
        stream_(mx, fd),
        census_(std::move(peers)) {
    census_->enter(this, fd);
  }

  guarded_scribe(net::default_multiplexer& mx, net::native_socket fd,
                 census_ptr peers, caf::openssl::session_ptr session)
      : scribe(net::conn_hdl_from_socket(fd)),
        stream_(mx, fd, std::move(session), &tls_),
        census_(std::move(peers)) {
    tls_.flush = [this] { stream_.flush(this); };
    census_->enter(this, fd);
  }

  ~guarded_scribe() override {
    census_->leave(this); // before stream_ closes the socket
  }

  bool consume(caf::execution_unit* ctx, const void* buf,
               size_t num_bytes) override {
    if (!at_header_) {
      at_header_ = true;
      auto result = scribe::consume(ctx, buf, num_bytes);
      if (result && !handshaken_ && is_handshake(operation_)) {
        handshaken_ = true;
        census_->handshake_done(this);
      }
      return result;
    }
    if (num_bytes == caf::io::basp::header_size) {
      // `buf` is the read buffer (scribe::consume hands that to BASP).
      auto bytes = reinterpret_cast<unsigned char*>(rd_buf().data());
      operation_ = bytes[0];
      uint32_t payload = (uint32_t{bytes[4]} << 24) | (uint32_t{bytes[5]} << 16)
                         | (uint32_t{bytes[6]} << 8) | uint32_t{bytes[7]};
      if (!acceptable(payload))
        bytes[0] = invalid_operation; // BASP drops the connection
      else if (payload > 0)
        at_header_ = false;
    }
    return scribe::consume(ctx, buf, num_bytes);
  }

  void configure_read(caf::io::receive_policy::config config) override {
    // Never reached for BASP (its headers are checked above); a last line
    // against a buffer of any size.
    if (config.second > ceiling()) {
      ::shutdown(stream_.fd(), SHUT_RDWR);
      config = caf::io::receive_policy::at_most(1);
    }
    stream_.configure_read(config);
    if (!launched_)
      launch();
  }

  void ack_writes(bool enable) override {
    stream_.ack_writes(enable);
  }

  std::vector<char>& wr_buf() override {
    return stream_.wr_buf();
  }

  std::vector<char>& rd_buf() override {
    return stream_.rd_buf();
  }

  void graceful_shutdown() override {
    stream_.graceful_shutdown();
    detach(&stream_.backend(), false);
  }

  void flush() override {
    if constexpr (std::is_same_v<Policy, tls_policy>)
      if (!tls_.established) {
        tls_.flush_pending = true; // see tls_policy
        return;
      }
    stream_.flush(this);
  }

  std::string addr() const override {
    auto x = net::remote_addr_of_fd(stream_.fd());
    return x ? std::move(*x) : std::string{};
  }

  uint16_t port() const override {
    auto x = net::remote_port_of_fd(stream_.fd());
    return x ? *x : uint16_t{0};
  }

  void add_to_loop() override {
    stream_.activate(this);
  }

  void remove_from_loop() override {
    stream_.passivate();
  }

private:
  static constexpr unsigned char invalid_operation = 0xFF;

  void launch() {
    launched_ = true;
    // caf::openssl's scribe also forces an empty write here, to drive the
    // TLS handshake; that write would send BASP's handshake too, before
    // the TLS one is done: the busy loop of tls_policy. The session sent
    // its first handshake message when it was made; reads drive the rest.
    stream_.start(this);
  }

  // caf::io::basp::message_type: server_handshake 0, client_handshake 1.
  static bool is_handshake(unsigned char operation) {
    return operation <= 1;
  }

  uint64_t ceiling() const {
    auto& limits = census_->limits;
    if (!handshaken_)
      return limits.max_handshake_bytes;
    return limits.max_message_bytes > 0 ? limits.max_message_bytes
                                        : uint64_t{UINT32_MAX};
  }

  bool acceptable(uint32_t payload) const {
    // A handshake without payload makes CAF 0.17.6's BASP read a payload
    // that is not there (a null pointer).
    if (is_handshake(operation_) && payload == 0)
      return false;
    if (is_handshake(operation_) || !handshaken_)
      return payload <= census_->limits.max_handshake_bytes;
    return payload <= ceiling();
  }

  tls_progress tls_; // TLS only
  net::stream_impl<Policy> stream_;
  census_ptr census_;
  bool launched_ = false;
  bool at_header_ = true; // the next read is a BASP header
  unsigned char operation_ = 0;
  bool handshaken_ = false;
};

using plain_scribe = guarded_scribe<caf::policy::tcp>;
using tls_scribe = guarded_scribe<tls_policy>;

} // namespace

caf::io::scribe_ptr make_guarded_scribe(caf::actor_system& sys,
                                        net::default_multiplexer& mx, int fd,
                                        census_ptr peers, bool tls,
                                        bool accepted) {
  caf::io::scribe_ptr result;
  if (tls) {
    // As caf::openssl's doorman and middleman actor: the TLS handshake
    // starts at once.
    net::nonblocking(fd, true);
    auto session = tls_session(sys, fd, accepted);
    if (session == nullptr)
      return result;
    result.reset(new tls_scribe(mx, fd, std::move(peers), std::move(session)),
                 false);
  } else {
    net::keepalive(fd, true); // as CAF's default_multiplexer::new_scribe
    result.reset(new plain_scribe(mx, fd, std::move(peers)), false);
  }
  return result;
}

} // namespace ctxstore::detail
