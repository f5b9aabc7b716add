#pragma once

// Child processes and bounded waits of the multi-process specifications
// (multiprocess.cpp, intruders.cpp).

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <future>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "child_exit.hpp"

namespace child_processes {

using clock_type = std::chrono::steady_clock;

// -- child processes ----------------------------------------------------------

/// A program started with fork + execv; its stdout is a pipe read here, its
/// stderr is ours. The destructor kills (SIGKILL) and reaps it. The child
/// also gets SIGKILL if this process dies first (PR_SET_PDEATHSIG: it fires
/// when the *thread* that forked exits, so start children from the test's
/// main thread only), so no run leaves orphans behind.
class child_process {
public:
  child_process(const std::string& path, std::vector<std::string> args) {
    args.insert(args.begin(), path);
    std::vector<char*> argv;
    for (auto& arg : args)
      argv.push_back(arg.data());
    argv.push_back(nullptr);
    int fds[2];
    REQUIRE(pipe2(fds, O_CLOEXEC) == 0);
    auto parent = getpid();
    pid_ = fork();
    if (pid_ == 0) {
      // Only async-signal-safe calls between fork and exec: we have threads.
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent)
        _exit(127);
      dup2(fds[1], STDOUT_FILENO);  // clears O_CLOEXEC on the copy
      closefrom(STDERR_FILENO + 1); // no sockets or pipes of ours leak
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(fds[1]);
    out_ = fds[0];
    REQUIRE(pid_ > 0);
  }

  ~child_process() {
    stop();
    if (out_ >= 0)
      close(out_);
  }

  /// Kills (SIGKILL) and reaps the child unless it was reaped already.
  void stop() noexcept {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }

  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  pid_t pid() const noexcept {
    return pid_;
  }

  /// The next line of the child's stdout that starts with `prefix` (lines
  /// before it are skipped); nothing if the child closed stdout or `bound`
  /// passed first.
  std::optional<std::string> read_line(const std::string& prefix,
                                       std::chrono::milliseconds bound) {
    auto deadline = clock_type::now() + bound;
    for (;;) {
      for (auto nl = pending_.find('\n'); nl != std::string::npos;
           nl = pending_.find('\n')) {
        auto line = pending_.substr(0, nl);
        pending_.erase(0, nl + 1);
        if (line.compare(0, prefix.size(), prefix) == 0)
          return line;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - clock_type::now());
      if (out_ < 0 || left.count() <= 0)
        return std::nullopt;
      pollfd pfd{out_, POLLIN, 0};
      auto n = poll(&pfd, 1, static_cast<int>(left.count()));
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return std::nullopt;
      char buf[512];
      auto got = read(out_, buf, sizeof(buf));
      if (got <= 0) {
        close(out_);
        out_ = -1;
        continue; // a last line without newline is dropped
      }
      pending_.append(buf, static_cast<size_t>(got));
      output_.append(buf, static_cast<size_t>(got));
    }
  }

  /// Everything the child wrote to stdout that was read so far.
  const std::string& output() const noexcept {
    return output_;
  }

  void signal(int sig) {
    REQUIRE(pid_ > 0);
    REQUIRE(kill(pid_, sig) == 0);
  }

  /// The child's wait status once it ended, or nothing after `bound`.
  std::optional<int> wait_exit(std::chrono::milliseconds bound) {
    auto status = wait_child_exit(pid_, bound);
    if (status)
      pid_ = -1;
    return status;
  }

private:
  pid_t pid_ = -1;
  int out_ = -1;
  std::string pending_;
  std::string output_;
};

// -- bounded waiting ----------------------------------------------------------

/// Ends the test process because `what` hangs: a thread blocked inside CAF
/// cannot be cancelled, and the actor system (and the destructor of the
/// thread's std::async future) would wait for it forever. Children die with
/// this process (see child_process).
[[noreturn]] inline void hang(const char* what,
                              std::chrono::milliseconds bound) {
  if (std::uncaught_exceptions() == 0)
    FAIL_CHECK("HANG: " << what << " did not finish within " << bound.count()
                        << " ms; ending the test process");
  std::cout << std::flush;
  std::cerr << "multiprocess: HANG: " << what << " did not finish within "
            << bound.count() << " ms" << std::endl;
  std::_Exit(EXIT_FAILURE);
}

/// The result of `task`, which must be ready within `bound` (else: `hang`).
template <class T>
T finish(std::future<T>& task, std::chrono::milliseconds bound,
         const char* what) {
  if (task.wait_for(bound) != std::future_status::ready)
    hang(what, bound);
  return task.get();
}

} // namespace child_processes
