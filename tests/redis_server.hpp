#pragma once

// A real redis-server for the Redis backend's specifications: started on
// 127.0.0.1 on a free port in its own temporary directory, with an AOF that
// is fsynced before every reply (so an acknowledged write survives a
// SIGKILL of the server), and stopped by the destructor. kill() and
// restart() simulate a server that dies and comes back on the same port and
// directory.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <hiredis/hiredis.h>

#include "child_exit.hpp"

class redis_server {
public:
  /// How long the server may take to answer PING after its start.
  static constexpr std::chrono::milliseconds start_bound{5000};

  /// How long the server may take to exit after SIGTERM before SIGKILL.
  static constexpr std::chrono::milliseconds stop_bound{5000};

  struct context_deleter {
    void operator()(redisContext* c) const {
      if (c != nullptr)
        redisFree(c);
    }
  };

  struct reply_deleter {
    void operator()(redisReply* r) const {
      if (r != nullptr)
        freeReplyObject(r);
    }
  };

  using connection = std::unique_ptr<redisContext, context_deleter>;
  using reply = std::unique_ptr<redisReply, reply_deleter>;

  /// Starts a server on a free port; throws std::runtime_error if none
  /// answers after a few ports were tried.
  redis_server() {
    char tmpl[] = "/tmp/ctxstore-redis-XXXXXX";
    if (mkdtemp(tmpl) == nullptr)
      throw std::runtime_error("redis_server: mkdtemp failed");
    dir_ = tmpl;
    // Another process may take the free port before the server binds it:
    // try again on another one.
    for (int attempt = 0; attempt < 5; ++attempt) {
      port_ = free_port();
      if (start())
        return;
    }
    std::filesystem::remove_all(dir_);
    throw std::runtime_error("redis_server: redis-server did not start");
  }

  redis_server(const redis_server&) = delete;
  redis_server& operator=(const redis_server&) = delete;

  ~redis_server() {
    stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  uint16_t port() const {
    return port_;
  }

  const std::string& dir() const {
    return dir_;
  }

  pid_t pid() const {
    return pid_;
  }

  /// The server dies at once (SIGKILL), as in a crash.
  void kill() {
    if (pid_ <= 0)
      return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  /// Starts the server again on the same port and directory (it reloads its
  /// AOF); throws std::runtime_error if it does not answer.
  void restart() {
    kill();
    // The port is ours by now; the kernel may still need a moment to free
    // it after the old process died: a few attempts.
    for (int attempt = 0; attempt < 5; ++attempt)
      if (start())
        return;
    throw std::runtime_error("redis_server: restart failed");
  }

  /// Sends `sig` to the server (SIGSTOP: it hangs; SIGCONT: it resumes).
  void stop_process(int sig) {
    if (pid_ > 0)
      ::kill(pid_, sig);
  }

  /// Stops the server (SIGTERM, SIGKILL after stop_bound).
  void stop() {
    if (pid_ <= 0)
      return;
    ::kill(pid_, SIGCONT); // a stopped server cannot handle SIGTERM
    ::kill(pid_, SIGTERM);
    if (!wait_child_exit(pid_, stop_bound)) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
    pid_ = -1;
  }

  /// A new connection of the test's own (null if none).
  connection connect(std::chrono::milliseconds timeout
                     = std::chrono::milliseconds{500}) const {
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
    connection c{redisConnectWithTimeout("127.0.0.1", port_, tv)};
    if (!c || c->err != 0)
      return nullptr;
    redisSetTimeout(c.get(), tv);
    return c;
  }

  /// Runs one command on a new connection: its reply, null if the server did
  /// not answer.
  reply command(const std::vector<std::string>& args) const {
    auto c = connect();
    if (!c)
      return nullptr;
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (auto& arg : args) {
      argv.push_back(arg.data());
      lens.push_back(arg.size());
    }
    return reply{static_cast<redisReply*>(redisCommandArgv(
      c.get(), static_cast<int>(args.size()), argv.data(), lens.data()))};
  }

  /// A port that was free a moment ago (the kernel's pick for port 0).
  static uint16_t free_port() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
      throw std::runtime_error("redis_server: socket failed");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof(addr);
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0
        || getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      close(fd);
      throw std::runtime_error("redis_server: no free port");
    }
    close(fd);
    return ntohs(addr.sin_port);
  }

private:
  /// Starts redis-server and waits until it answers PING; false (and no
  /// process left) if it does not within start_bound.
  bool start() {
    std::vector<std::string> args{"redis-server",
                                  "--port",
                                  std::to_string(port_),
                                  "--bind",
                                  "127.0.0.1",
                                  "--dir",
                                  dir_,
                                  "--appendonly",
                                  "yes",
                                  "--appendfsync",
                                  "always",
                                  "--save",
                                  "",
                                  "--daemonize",
                                  "no",
                                  "--logfile",
                                  dir_ + "/redis.log"};
    std::vector<char*> argv;
    for (auto& arg : args)
      argv.push_back(arg.data());
    argv.push_back(nullptr);
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    auto parent = getpid();
    auto pid = fork();
    if (pid < 0) {
      if (devnull >= 0)
        close(devnull);
      return false;
    }
    if (pid == 0) {
      // The child: only async-signal-safe calls until exec. It dies with
      // the test (crashed, or killed mid-run) instead of staying behind;
      // the signal comes when the forking thread ends, the main thread here.
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent)
        _exit(127);
      if (devnull >= 0) {
        dup2(devnull, STDIN_FILENO);
        dup2(devnull, STDOUT_FILENO);
      }
      execvp("redis-server", argv.data());
      _exit(127);
    }
    if (devnull >= 0)
      close(devnull);
    pid_ = pid;
    auto deadline = std::chrono::steady_clock::now() + start_bound;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1; // it exited: the port was taken, or no redis-server
        return false;
      }
      if (auto c = connect(std::chrono::milliseconds{200})) {
        reply r{static_cast<redisReply*>(redisCommand(c.get(), "PING"))};
        if (r && r->type == REDIS_REPLY_STATUS && std::string{r->str} == "PONG")
          return answers_as_ours(c.get());
      }
      // Polling a starting process: nothing to await.
      std::this_thread::sleep_for(std::chrono::milliseconds{10});
    }
    kill();
    return false;
  }

  /// True if the server that answers is our child, not another process that
  /// had the port (ours then fails to bind and exits).
  bool answers_as_ours(redisContext* c) {
    reply r{static_cast<redisReply*>(redisCommand(c, "INFO server"))};
    auto ours = r && r->type == REDIS_REPLY_STRING
                && std::string{r->str, r->len}.find(
                     "process_id:" + std::to_string(pid_) + "\r\n")
                     != std::string::npos;
    if (!ours)
      kill();
    return ours;
  }

  std::string dir_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
};
