#include "guarded_port.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include <caf/all.hpp>
#include <caf/io/basp/header.hpp>
#include <caf/io/basp_broker.hpp>
#include <caf/io/doorman.hpp>
#include <caf/io/middleman.hpp>
#include <caf/io/network/acceptor.hpp>
#include <caf/io/network/default_multiplexer.hpp>
#include <caf/io/network/native_socket.hpp>
#include <caf/io/network/stream_impl.hpp>
#include <caf/openssl/publish.hpp>
#include <caf/openssl/remote_actor.hpp>
#include <caf/openssl/session.hpp>
#include <caf/policy/tcp.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tls_socket.hpp"

namespace ctxstore::detail {

namespace {

namespace net = caf::io::network;
using clock_type = std::chrono::steady_clock;

/// How long a doorman that ran out of descriptors (and of its spare) stops
/// accepting.
constexpr auto accept_pause = std::chrono::milliseconds{100};

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

int open_spare() {
  return ::open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/// The connections of one publication (or one outgoing connection) and
/// their handshake deadlines. Shared by the doorman, its scribes (on the
/// multiplexer's thread) and the watchdog (any thread), hence the mutex. A
/// scribe leaves the census in its destructor, before its socket is closed:
/// a socket found here is still open, and shutting it down is safe.
class census {
public:
  explicit census(const port_limits& limits) : limits(limits) {
    // Every later lock (on the middleman's or the watchdog's thread) sees
    // `limits` (ThreadSanitizer: CAF's mailboxes are no edge it sees).
    std::lock_guard<std::mutex> guard{mtx_};
  }

  ~census() {
    if (spare_ >= 0)
      ::close(spare_);
  }

  const port_limits limits;

  bool full() {
    std::lock_guard<std::mutex> guard{mtx_};
    return limits.max_connections > 0
           && live_.size() >= limits.max_connections;
  }

  void enter(const void* who, net::native_socket fd) {
    std::lock_guard<std::mutex> guard{mtx_};
    live_.emplace(who, entry{fd, clock_type::now() + limits.handshake_timeout,
                             true});
  }

  void leave(const void* who) {
    std::lock_guard<std::mutex> guard{mtx_};
    live_.erase(who);
  }

  void handshake_done(const void* who) {
    std::lock_guard<std::mutex> guard{mtx_};
    if (auto i = live_.find(who); i != live_.end())
      i->second.pending = false;
  }

  /// Shuts down the connections whose handshake is overdue (`all`: every
  /// connection still in its handshake). CAF then sees them fail and closes
  /// them.
  void sweep(bool all) {
    std::lock_guard<std::mutex> guard{mtx_};
    auto now = clock_type::now();
    for (auto& [who, e] : live_)
      if (e.pending && (all || e.deadline <= now)) {
        ::shutdown(e.fd, SHUT_RDWR);
        e.pending = false;
      }
  }

  /// Out of descriptors: accepts the next connection of `listener` with
  /// the spare descriptor and closes it, so that the listening socket does
  /// not stay readable. False if there is no spare to use.
  bool refuse_with_spare(net::native_socket listener) {
    // Only on the multiplexer's thread: no lock for the spare.
    keep_spare();
    if (spare_ < 0)
      return false;
    ::close(spare_);
    auto fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    auto accept_errno = errno;
    if (fd >= 0)
      ::close(fd);
    spare_ = open_spare();
    return fd >= 0 || accept_errno == EAGAIN || accept_errno == EWOULDBLOCK;
  }

  /// Keeps a spare descriptor for `refuse_with_spare` (a publication's).
  void keep_spare() {
    if (spare_ < 0)
      spare_ = open_spare();
  }

  /// A doorman that stopped accepting, to resume after `accept_pause`.
  void pause(caf::io::doorman_ptr who) {
    std::lock_guard<std::mutex> guard{mtx_};
    paused_ = std::move(who);
    resume_at_ = clock_type::now() + accept_pause;
  }

  /// The paused doorman if its pause is over.
  caf::io::doorman_ptr due_to_resume() {
    std::lock_guard<std::mutex> guard{mtx_};
    if (paused_ == nullptr || clock_type::now() < resume_at_)
      return nullptr;
    return std::move(paused_);
  }

  /// Drops the paused doorman (it holds this census: a cycle).
  void forget_paused() {
    std::lock_guard<std::mutex> guard{mtx_};
    paused_ = nullptr;
  }

private:
  struct entry {
    net::native_socket fd;
    clock_type::time_point deadline;
    bool pending; // still in its handshake
  };

  std::mutex mtx_;
  std::unordered_map<const void*, entry> live_;
  caf::io::doorman_ptr paused_;
  clock_type::time_point resume_at_;
  int spare_ = -1;
};

using census_ptr = std::shared_ptr<census>;

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
/// - CAF's session blocks SIGPIPE around every SSL call (three system calls:
///   about 0.45 us per call, 3.6 us per remote round trip with both ends on
///   one core, a third of what TLS adds to it). Once the handshake is done,
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
      return transfer(result, len, [&](int n) { return SSL_read(ssl_, buf, n); });
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

class guarded_doorman;

/// CAF's TCP acceptor, minus its busy loop when accept() fails.
class guarded_acceptor : public net::acceptor {
public:
  guarded_acceptor(net::default_multiplexer& mx, net::native_socket fd,
                   guarded_doorman* owner)
      : acceptor(mx, fd), owner_(owner) {
    // nop
  }

  void handle_event(net::operation op) override;

private:
  guarded_doorman* owner_;
};

/// CAF's doorman (caf/io/network/doorman_impl.hpp) with a census.
class guarded_doorman : public caf::io::doorman {
public:
  guarded_doorman(net::default_multiplexer& mx, net::native_socket fd,
                  census_ptr peers, bool tls)
      : doorman(net::accept_hdl_from_socket(fd)),
        acceptor_(mx, fd, this),
        census_(std::move(peers)),
        tls_(tls) {
    // nop
  }

  bool new_connection() override {
    auto fd = acceptor_.accepted_socket();
    acceptor_.accepted_socket() = net::invalid_native_socket;
    if (detached()) {
      net::close_socket(fd);
      return false;
    }
    if (census_->full()) {
      net::close_socket(fd); // over the cap: refused at once
      return true;
    }
    auto& mx = acceptor_.backend();
    caf::io::scribe_ptr ptr;
    if (tls_) {
      // As caf::openssl's doorman: the TLS handshake starts at once.
      net::nonblocking(fd, true);
      auto session = tls_session(parent()->system(), fd, true);
      if (session == nullptr) {
        net::close_socket(fd);
        return true;
      }
      ptr.reset(new tls_scribe(mx, fd, census_, std::move(session)), false);
    } else {
      net::keepalive(fd, true); // as CAF's default_multiplexer::new_scribe
      ptr.reset(new plain_scribe(mx, fd, census_), false);
    }
    auto hdl = ptr->hdl();
    parent()->add_scribe(std::move(ptr));
    return doorman::new_connection(&mx, hdl);
  }

  /// accept() failed with no descriptor left.
  void out_of_descriptors() {
    if (census_->refuse_with_spare(acceptor_.fd()))
      return;
    remove_from_loop(); // the watchdog resumes it (census::pause)
    census_->pause(caf::io::doorman_ptr{this});
  }

  void graceful_shutdown() override {
    acceptor_.graceful_shutdown();
    detach(&acceptor_.backend(), false);
  }

  void launch() override {
    acceptor_.start(this);
  }

  std::string addr() const override {
    auto x = net::local_addr_of_fd(acceptor_.fd());
    return x ? std::move(*x) : std::string{};
  }

  uint16_t port() const override {
    auto x = net::local_port_of_fd(acceptor_.fd());
    return x ? *x : uint16_t{0};
  }

  void add_to_loop() override {
    acceptor_.activate(this);
  }

  void remove_from_loop() override {
    acceptor_.passivate();
  }

private:
  guarded_acceptor acceptor_;
  census_ptr census_;
  bool tls_;
};

void guarded_acceptor::handle_event(net::operation op) {
  if (op != net::operation::read)
    return;
  auto fd = ::accept4(this->fd(), nullptr, nullptr, SOCK_CLOEXEC);
  if (fd >= 0) {
    accepted_socket() = fd;
    owner_->new_connection();
    return;
  }
  if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS
      || errno == ENOMEM)
    owner_->out_of_descriptors();
  // Anything else (EAGAIN, a connection reset while queued) has nothing to
  // do with the listening socket.
}

/// Times out handshakes and resumes a paused doorman, until `gateway`
/// stops.
caf::behavior watchdog(caf::event_based_actor* self, census_ptr peers,
                       caf::actor gateway) {
  using namespace std::chrono;
  auto period = std::clamp(duration_cast<milliseconds>(
                             peers->limits.handshake_timeout / 4),
                           milliseconds{10}, milliseconds{100});
  self->set_down_handler([self, peers](caf::down_msg&) {
    peers->forget_paused();
    self->quit();
  });
  self->monitor(gateway);
  self->delayed_send(self, period, caf::tick_atom_v);
  return {
    [self, peers, period](caf::tick_atom) {
      peers->sweep(false);
      if (auto paused = peers->due_to_resume())
        self->system().middleman().backend().dispatch([paused] {
          if (!paused->detached())
            paused->add_to_loop();
        });
      self->delayed_send(self, period, caf::tick_atom_v);
    },
  };
}

caf::actor basp_broker_of(caf::actor_system& sys) {
  return sys.middleman().named_broker<caf::io::basp_broker>(caf::atom("BASP"));
}

/// BASP's answer to a connect, handed from the middleman's thread to the
/// caller under a mutex: a CAF mailbox is no edge ThreadSanitizer sees.
struct connect_handoff {
  std::mutex mtx;
  std::condition_variable cv;
  bool done = false;
  caf::strong_actor_ptr remote;
  caf::error failure;

  void set(caf::strong_actor_ptr x, caf::error err) {
    std::lock_guard<std::mutex> guard{mtx};
    remote = std::move(x);
    failure = std::move(err);
    done = true;
    cv.notify_all();
  }
};

/// Asks BASP for the handshake over `scribe`, as CAF's middleman actor does
/// for a remote_actor; a broker, so that the answer is read on the
/// middleman's thread, where BASP made it.
caf::behavior connect_asker(caf::io::broker* self, caf::io::scribe_ptr scribe,
                            uint16_t port, caf::timespan timeout,
                            std::shared_ptr<connect_handoff> handoff) {
  self
    ->request(basp_broker_of(self->system()), timeout, caf::connect_atom_v,
              std::move(scribe), port)
    .then(
      [self, handoff, port](caf::node_id&, caf::strong_actor_ptr& ptr,
                            std::set<std::string>&) {
        caf::error err;
        if (!ptr)
          err = caf::make_error(caf::sec::no_actor_published_at_port, port);
        handoff->set(std::move(ptr), std::move(err));
        self->quit();
      },
      [self, handoff](caf::error& err) {
        handoff->set(nullptr, std::move(err));
        self->quit();
      });
  return {[](caf::unit_t) {}};
}

} // namespace

port_limits port_limits_from(const caf::actor_system& sys,
                             size_t max_value_bytes) {
  port_limits result;
  auto& cfg = sys.config();
  result.handshake_timeout = caf::get_or(cfg, "ctxstore.handshake-timeout",
                                         result.handshake_timeout);
  auto max_connections = caf::get_or(cfg, "ctxstore.max-connections",
                                     int64_t{256});
  result.max_connections
    = max_connections > 0 ? static_cast<size_t>(max_connections) : 0;
  if (max_value_bytes > 0)
    result.max_message_bytes = max_value_bytes + message_overhead_bytes;
  return result;
}

caf::expected<uint16_t> publish_guarded(caf::actor_system& sys,
                                        const caf::actor& whom, uint16_t port,
                                        const std::string& address,
                                        const port_limits& limits, bool tls) {
  auto mx = dynamic_cast<net::default_multiplexer*>(&sys.middleman().backend());
  if (mx == nullptr) // a test multiplexer: no sockets to guard
    return tls ? caf::openssl::publish(whom, port, address.c_str(), true)
               : sys.middleman().publish(whom, port, address.c_str(), true);
  auto fd = net::new_tcp_acceptor_impl(
    port, address.empty() ? nullptr : address.c_str(), true);
  if (!fd)
    return std::move(fd.error());
  auto peers = std::make_shared<census>(limits);
  peers->keep_spare();
  caf::io::doorman_ptr doorman{new guarded_doorman(*mx, *fd, peers, tls),
                               false};
  auto actual_port = doorman->port();
  // What CAF's middleman actor sends the broker for a publish, from the
  // middleman's thread (the hand-over through its pipe is an edge
  // ThreadSanitizer sees; a CAF mailbox is not).
  sys.middleman().backend().dispatch(
    [basp = basp_broker_of(sys), doorman = std::move(doorman), actual_port,
     who = caf::actor_cast<caf::strong_actor_ptr>(whom)]() mutable {
      caf::anon_send(basp, caf::publish_atom_v, std::move(doorman),
                     actual_port, std::move(who), std::set<std::string>{});
    });
  sys.spawn<caf::hidden>(watchdog, peers, whom);
  return actual_port;
}

caf::expected<caf::actor> connect_guarded(caf::actor_system& sys,
                                          const std::string& host,
                                          uint16_t port,
                                          const port_limits& limits, bool tls) {
  auto mx = dynamic_cast<net::default_multiplexer*>(&sys.middleman().backend());
  if (mx == nullptr)
    return tls ? caf::openssl::remote_actor(sys, host, port)
               : sys.middleman().remote_actor(host, port);
  auto fd = net::new_tcp_connection(host, port);
  if (!fd)
    return std::move(fd.error());
  auto peers = std::make_shared<census>(limits);
  caf::io::scribe_ptr scribe;
  if (tls) {
    // As caf::openssl's middleman actor.
    net::nonblocking(*fd, true);
    auto session = tls_session(sys, *fd, false);
    if (session == nullptr) {
      net::close_socket(*fd);
      return caf::make_error(caf::sec::cannot_connect_to_node);
    }
    scribe.reset(new tls_scribe(*mx, *fd, peers, std::move(session)), false);
  } else {
    net::keepalive(*fd, true);
    scribe.reset(new plain_scribe(*mx, *fd, peers), false);
  }
  auto handoff = std::make_shared<connect_handoff>();
  sys.middleman().spawn_broker<caf::hidden>(connect_asker, std::move(scribe),
                                            port, limits.handshake_timeout,
                                            handoff);
  caf::expected<caf::actor> result{caf::sec::request_timeout};
  {
    std::unique_lock<std::mutex> lock{handoff->mtx};
    // The broker answers within the timeout; a second more against a
    // middleman that stopped.
    if (handoff->cv.wait_for(lock,
                             limits.handshake_timeout + std::chrono::seconds{1},
                             [&] { return handoff->done; })) {
      if (handoff->remote)
        result = caf::actor_cast<caf::actor>(std::move(handoff->remote));
      else
        result = std::move(handoff->failure);
    }
  }
  if (!result)
    peers->sweep(true); // no handshake in time: give up the connection
  return result;
}

bool is_loopback(const std::string& address) {
  if (address == "localhost")
    return true;
  in_addr v4{};
  if (::inet_pton(AF_INET, address.c_str(), &v4) == 1)
    return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (::inet_pton(AF_INET6, address.c_str(), &v6) == 1)
    return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

} // namespace ctxstore::detail
