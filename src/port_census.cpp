#include "port_census.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

namespace ctxstore::detail {

namespace {

int open_spare() {
  return ::open("/dev/null", O_RDONLY | O_CLOEXEC);
}

} // namespace

census::census(const port_limits& limits) : limits(limits) {
  // Every later lock (on the middleman's or the watchdog's thread) sees
  // `limits` (ThreadSanitizer: CAF's mailboxes are no edge it sees).
  std::lock_guard<std::mutex> guard{mtx_};
}

census::~census() {
  if (spare_ >= 0)
    ::close(spare_);
}

bool census::full() {
  std::lock_guard<std::mutex> guard{mtx_};
  return limits.max_connections > 0 && live_.size() >= limits.max_connections;
}

void census::enter(const void* who, int fd) {
  std::lock_guard<std::mutex> guard{mtx_};
  live_.emplace(who,
                entry{fd, clock_type::now() + limits.handshake_timeout, true});
}

void census::leave(const void* who) {
  std::lock_guard<std::mutex> guard{mtx_};
  live_.erase(who);
}

void census::handshake_done(const void* who) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (auto i = live_.find(who); i != live_.end())
    i->second.pending = false;
}

void census::sweep(bool all) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto now = clock_type::now();
  for (auto& [who, e] : live_)
    if (e.pending && (all || e.deadline <= now)) {
      ::shutdown(e.fd, SHUT_RDWR);
      e.pending = false;
    }
}

bool census::refuse_with_spare(int listener) {
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

void census::keep_spare() {
  if (spare_ < 0)
    spare_ = open_spare();
}

void census::pause(std::function<void()> resume) {
  std::lock_guard<std::mutex> guard{mtx_};
  resume_ = std::move(resume);
  resume_at_ = clock_type::now() + accept_pause;
}

std::function<void()> census::due_to_resume() {
  std::lock_guard<std::mutex> guard{mtx_};
  if (!resume_ || clock_type::now() < resume_at_)
    return {};
  return std::exchange(resume_, nullptr);
}

void census::forget_paused() {
  std::function<void()> paused;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    paused = std::exchange(resume_, nullptr);
  }
  // `paused` (and the doorman it holds) goes here, outside the lock.
}

} // namespace ctxstore::detail
