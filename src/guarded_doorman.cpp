#include "guarded_doorman.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <string>
#include <utility>

#include <caf/io/abstract_broker.hpp>
#include <caf/io/doorman.hpp>
#include <caf/io/network/acceptor.hpp>
#include <caf/io/network/default_multiplexer.hpp>
#include <caf/io/network/native_socket.hpp>
#include <caf/io/scribe.hpp>

#include "guarded_scribe.hpp"

namespace ctxstore::detail {

namespace {

namespace net = caf::io::network;

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
    auto ptr = make_guarded_scribe(parent()->system(), mx, fd, census_, tls_,
                                   true);
    if (ptr == nullptr) {
      net::close_socket(fd);
      return true;
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
    census_->pause([paused = caf::io::doorman_ptr{this}] {
      if (!paused->detached())
        paused->add_to_loop();
    });
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

} // namespace

caf::io::doorman_ptr make_guarded_doorman(net::default_multiplexer& mx, int fd,
                                          census_ptr peers, bool tls) {
  return caf::io::doorman_ptr{new guarded_doorman(mx, fd, std::move(peers),
                                                  tls),
                              false};
}

} // namespace ctxstore::detail
