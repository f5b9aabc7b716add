#pragma once

// A raw TCP connection to a port on 127.0.0.1, for the specifications that
// speak to a published port as an intruder would (intruders.cpp,
// plain_port.cpp): bytes out, and whether the node closed the connection.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <vector>

#include <catch2/catch.hpp>

namespace raw_tcp {

/// A raw TCP connection to 127.0.0.1:`port`.
struct raw_socket {
  explicit raw_socket(uint16_t port) {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr))
            == 0);
  }

  raw_socket(const raw_socket&) = delete;
  raw_socket& operator=(const raw_socket&) = delete;

  ~raw_socket() {
    if (fd >= 0)
      ::close(fd);
  }

  void send_bytes(const std::vector<uint8_t>& bytes) {
    auto sent = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    REQUIRE(sent == static_cast<ssize_t>(bytes.size()));
  }

  /// True once the node closed the connection (EOF or reset) within `wait`,
  /// whatever it sent before.
  bool closed_by_peer(std::chrono::milliseconds wait) {
    using clock = std::chrono::steady_clock;
    auto deadline = clock::now() + wait;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - clock::now());
      if (left.count() <= 0)
        return false;
      pollfd pfd{fd, POLLIN, 0};
      auto n = ::poll(&pfd, 1, static_cast<int>(left.count()));
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return false;
      char buf[4096];
      auto got = ::recv(fd, buf, sizeof(buf), 0);
      if (got == 0 || (got < 0 && errno == ECONNRESET))
        return true;
    }
  }

  int fd = -1;
};

} // namespace raw_tcp
