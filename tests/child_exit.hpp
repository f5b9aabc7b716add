#pragma once

// Waiting for a child process's exit, shared by the multi-process
// specifications and the benchmark's serving child.

#include <poll.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <optional>
#include <thread>

/// Reaps child `pid` and returns its wait status once it exited, or nothing
/// if it still runs after `bound`. Waits on the child's pidfd, which becomes
/// readable exactly when it exits; kernels before 5.3 have none, and there
/// the exit is polled.
inline std::optional<int> wait_child_exit(pid_t pid,
                                          std::chrono::milliseconds bound) {
  auto reap = [pid]() -> std::optional<int> {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid)
      return status;
    return std::nullopt;
  };
  auto fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (fd >= 0) {
    pollfd p{fd, POLLIN, 0};
    while (poll(&p, 1, static_cast<int>(bound.count())) < 0 && errno == EINTR) {
      // interrupted by a signal: wait again
    }
    close(fd);
    return reap();
  }
  auto deadline = std::chrono::steady_clock::now() + bound;
  for (;;) {
    if (auto status = reap())
      return status;
    if (std::chrono::steady_clock::now() > deadline)
      return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds{1}); // no pidfd
  }
}
