// The crash loop of durable contexts: a child process (crash_child.cpp)
// commits bursts of counter increments through a storage with a backend and
// reports every acknowledged change through a pipe; it is SIGKILLed at a
// random moment and started again, round after round. After each kill a
// backend opened here checks every context: every acknowledged change is
// there, and nothing is half applied (value == version, see crash_child.cpp).
//
// Its own executable (ctxstore_crash_loop), run by ctest in Release builds
// only: it measures crashes, not code under a sanitizer. Environment:
// CTXSTORE_CRASH_ROUNDS (default 50) lowers the rounds for a quick local run,
// CTXSTORE_CRASH_SEED repeats a run's random choices (kill moments, ids, the
// child's picks; the child's timing is never the same). A violation names the
// seed and the round.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <future>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <boost/uuid/random_generator.hpp>
#include <boost/uuid/string_generator.hpp>
#include <boost/uuid/uuid_io.hpp>
#include <catch2/catch.hpp>

#include "child_exit.hpp"
#include "ctxstore/backend.hpp"
#include "ctxstore/detail/value_codec.hpp"
#include "ctxstore/error.hpp"
#include "redis_server.hpp"

using namespace ctxstore;
using namespace std::chrono_literals;

namespace {

using clock_type = std::chrono::steady_clock;

/// The child's context type (crash_child.cpp), decoded here from the
/// backend's bytes with the same codec.
struct counter {
  int64_t value = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, counter& x) {
  return f(caf::meta::type_name("counter"), x.value);
}

/// Contexts per round, and the child's threads (each owns every third).
constexpr size_t context_count = 6;
constexpr size_t child_threads = 3;

/// How long a child may take to report its first change (start, open the
/// backend, read its contexts).
constexpr auto first_line_bound = 10s;

/// The child runs on for a random time in this range after its first line.
constexpr int min_run_ms = 20;
constexpr int max_run_ms = 150;

/// Any other single wait: a reap after SIGKILL, the rest of the pipe, a load.
constexpr auto step_bound = 5s;

/// A whole scenario; past it the rounds stop with a failure. The alarm (a bit
/// later) ends the process if a step hangs where no timed wait can help.
constexpr auto scenario_bound = 90s;
constexpr unsigned alarm_seconds = 120;

size_t rounds_from_env() {
  if (auto env = std::getenv("CTXSTORE_CRASH_ROUNDS"))
    return std::max<size_t>(1, std::strtoul(env, nullptr, 10));
  return 50;
}

uint64_t seed_from_env() {
  if (auto env = std::getenv("CTXSTORE_CRASH_SEED"))
    return std::strtoull(env, nullptr, 10);
  return std::random_device{}();
}

extern "C" void on_alarm(int) {
  static const char msg[] = "crash_loop: HANG: the scenario did not end "
                            "within its bound; ending the process (its "
                            "children die with it: PR_SET_PDEATHSIG)\n";
  [[maybe_unused]] auto n = write(STDERR_FILENO, msg, sizeof(msg) - 1);
  _exit(EXIT_FAILURE);
}

/// Ends the process after `alarm_seconds` unless destroyed first.
struct alarm_guard {
  alarm_guard() {
    signal(SIGALRM, on_alarm);
    alarm(alarm_seconds);
  }
  ~alarm_guard() {
    alarm(0);
  }
};

/// A fresh directory, removed with its files at the end.
struct temp_dir {
  temp_dir() {
    char tmpl[] = "/tmp/ctxstore-crash-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string path;
};

/// The child program, started with fork + execv; its stdout is a pipe read
/// here, its stderr is ours. The destructor kills and reaps it. It also gets
/// SIGKILL if this process dies first (PR_SET_PDEATHSIG, tied to the forking
/// thread: start children from the test's main thread only).
class child_process {
public:
  explicit child_process(std::vector<std::string> args) {
    args.insert(args.begin(), CTXSTORE_CRASH_CHILD_BINARY);
    std::vector<char*> argv;
    for (auto& arg : args)
      argv.push_back(arg.data());
    argv.push_back(nullptr);
    int fds[2];
    REQUIRE(pipe2(fds, O_CLOEXEC) == 0);
    auto parent = getpid();
    pid_ = fork();
    if (pid_ == 0) {
      // Only async-signal-safe calls between fork and exec.
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent)
        _exit(127);
      dup2(fds[1], STDOUT_FILENO); // clears O_CLOEXEC on the copy
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(fds[1]);
    out_ = fds[0];
    REQUIRE(pid_ > 0);
  }

  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  ~child_process() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      wait_child_exit(pid_, step_bound);
    }
    if (out_ >= 0)
      close(out_);
  }

  /// Appends the complete lines that arrive until `deadline` (or until
  /// `enough` of them were read, if not 0) to `lines`; false once the pipe
  /// is closed (the child ended).
  bool read_lines(clock_type::time_point deadline,
                  std::vector<std::string>& lines, size_t enough = 0) {
    auto before = lines.size();
    for (;;) {
      for (auto nl = pending_.find('\n'); nl != std::string::npos;
           nl = pending_.find('\n')) {
        lines.push_back(pending_.substr(0, nl));
        pending_.erase(0, nl + 1);
      }
      if (out_ < 0)
        return false;
      if (enough != 0 && lines.size() - before >= enough)
        return true;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - clock_type::now());
      if (left.count() <= 0)
        return true;
      pollfd pfd{out_, POLLIN, 0};
      auto n = poll(&pfd, 1, static_cast<int>(left.count()));
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return true;
      char buf[4096];
      auto got = read(out_, buf, sizeof(buf));
      if (got < 0 && errno == EINTR)
        continue;
      if (got <= 0) {
        close(out_);
        out_ = -1;
        continue; // a last line without newline is dropped
      }
      pending_.append(buf, static_cast<size_t>(got));
    }
  }

  /// Kills the child (SIGKILL) and reaps it; false if it did not end
  /// within step_bound.
  bool kill() {
    if (pid_ <= 0)
      return true;
    ::kill(pid_, SIGKILL);
    if (!wait_child_exit(pid_, step_bound))
      return false;
    pid_ = -1;
    return true;
  }

  /// The wait status of a child that ended by itself (reaped), if it did
  /// within `bound`.
  std::optional<int> wait_exit(std::chrono::milliseconds bound) {
    auto status = wait_child_exit(pid_, bound);
    if (status)
      pid_ = -1;
    return status;
  }

  /// The bytes after the last complete line (empty: every line was whole).
  const std::string& partial() const {
    return pending_;
  }

private:
  pid_t pid_ = -1;
  int out_ = -1;
  std::string pending_;
};

std::string describe_status(int status) {
  if (WIFEXITED(status))
    return "exit status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return "signal " + std::to_string(WTERMSIG(status));
  return "wait status " + std::to_string(status);
}

/// The backend's copy of a context, decoded; nothing if it has none.
struct stored_counter {
  uint64_t version = 0;
  int64_t value = 0;
};

std::optional<stored_counter> load_counter(backend& b, const context_id& id) {
  using result = caf::expected<std::optional<stored_value>>;
  auto done = std::make_shared<std::promise<result>>();
  auto fut = done->get_future();
  b.load("counter", id,
         [done](result res) { done->set_value(std::move(res)); });
  if (fut.wait_for(step_bound) != std::future_status::ready)
    FAIL("the load of " << id << " was not answered within "
                        << step_bound.count() << " s");
  auto res = fut.get();
  if (!res)
    FAIL("the load of " << id << " failed: " << describe(res.error()));
  if (!res->has_value())
    return std::nullopt;
  auto& raw = **res;
  caf::message msg;
  if (auto err = detail::value_codec<counter>::load(raw.bytes.data(),
                                                    raw.bytes.size(), msg))
    FAIL("the stored value of " << id << " (version " << raw.version << ", "
                                << raw.bytes.size()
                                << " bytes) does not decode");
  return stored_counter{raw.version, msg.get_as<counter>(0).value};
}

/// Where the loop runs: the child's backend URI and how this process opens
/// the same backend for its checks (after the child was killed).
struct loop_target {
  std::string name;
  std::string uri;
  std::function<std::shared_ptr<backend>()> open_checker;
};

/// The rounds against `target`; fails at the first round with a violation.
void run_crash_loop(const loop_target& target) {
  alarm_guard guard;
  auto rounds = rounds_from_env();
  auto seed = seed_from_env();
  INFO(target.name << ": seed " << seed << " (CTXSTORE_CRASH_SEED repeats it)");
  std::mt19937_64 rng{seed};
  std::vector<context_id> ids;
  {
    std::mt19937 id_engine{static_cast<uint32_t>(rng())};
    boost::uuids::basic_random_generator<std::mt19937> gen{id_engine};
    for (size_t i = 0; i < context_count; ++i)
      ids.push_back(gen());
  }
  // The last version of each context known to be durable: the last one
  // acknowledged to the child, or what the backend held at the last check.
  // 0: none yet. Every change the child makes is exactly one past it.
  std::map<context_id, uint64_t> known;
  for (auto& id : ids)
    known[id] = 0;
  boost::uuids::string_generator parse_id;
  std::uniform_int_distribution<int> run_ms{min_run_ms, max_run_ms};
  size_t acknowledged = 0;
  // Contexts whose backend held one change more than the child reported:
  // the kill came while it was under way (or before its line was written).
  size_t in_flight = 0;
  auto t0 = clock_type::now();
  for (size_t round = 1; round <= rounds; ++round) {
    INFO("round " << round << " of " << rounds);
    REQUIRE(clock_type::now() - t0 < scenario_bound);
    std::vector<std::string> args{target.uri, std::to_string(rng()),
                                  std::to_string(child_threads)};
    for (auto& id : ids)
      args.push_back(boost::uuids::to_string(id));
    std::vector<std::string> lines;
    {
      child_process child{std::move(args)};
      // Its first change, then a random time of bursts, then the SIGKILL.
      auto alive
        = child.read_lines(clock_type::now() + first_line_bound, lines, 1);
      if (alive && !lines.empty()) {
        auto run = std::chrono::milliseconds{run_ms(rng)};
        alive = child.read_lines(clock_type::now() + run, lines);
      }
      if (!alive) {
        auto status = child.wait_exit(step_bound);
        FAIL("the child ended by itself ("
             << (status ? describe_status(*status) : "not reaped") << ")");
      }
      REQUIRE(!lines.empty()); // no change within first_line_bound
      REQUIRE(child.kill());
      // The lines it completed before the kill: the pipe ends at once.
      auto deadline = clock_type::now() + step_bound;
      while (child.read_lines(deadline, lines))
        REQUIRE(clock_type::now() < deadline);
      // One write(2) per line, shorter than PIPE_BUF: never a torn line.
      REQUIRE(child.partial().empty());
    }
    // Violations are collected for the whole round, then reported together
    // with the seed and the round.
    std::vector<std::string> violations;
    auto violated
      = [&](std::string what) { violations.push_back(std::move(what)); };
    // Each acknowledged change: one past the one before, value == version.
    for (auto& line : lines) {
      std::istringstream in{line};
      std::string id_text;
      uint64_t version = 0;
      int64_t value = 0;
      in >> id_text >> version >> value;
      INFO("the child reported: " << line);
      REQUIRE(in);
      auto id = parse_id(id_text);
      REQUIRE(known.count(id) == 1);
      if (version != known[id] + 1 || value != static_cast<int64_t>(version))
        violated("acknowledged \"" + line + "\" after version "
                 + std::to_string(known[id]));
      known[id] = version;
    }
    acknowledged += lines.size();
    // The backend after the crash, as the next child will find it.
    auto checker = target.open_checker();
    for (auto& id : ids) {
      auto stored = load_counter(*checker, id);
      if (known[id] == 0 && !stored)
        continue; // never created, or its creation was not acknowledged
      auto at = boost::uuids::to_string(id) + ": last acknowledged version "
                + std::to_string(known[id]) + ", stored ";
      if (!stored) {
        violated(at + "nothing");
        continue;
      }
      at += "version " + std::to_string(stored->version) + " value "
            + std::to_string(stored->value) + ": ";
      // Every acknowledged change is there ...
      if (stored->version < known[id])
        violated(at + "an acknowledged change is lost");
      // ... and nothing more than the one change that may have been under
      // way (or acknowledged but not yet reported) when the kill came: each
      // thread of the child makes one change at a time ...
      if (stored->version > known[id] + 1)
        violated(at + "more changes than the child made");
      // ... and none is half applied.
      if (stored->value != static_cast<int64_t>(stored->version))
        violated(at + "value != version: half applied");
      if (stored->version == known[id] + 1)
        ++in_flight;
      known[id] = stored->version;
    }
    if (!violations.empty()) {
      // The first ones: after a violation, later lines may all follow it.
      std::string all;
      for (size_t i = 0; i < violations.size() && i < 10; ++i)
        all += "\n  " + violations[i];
      if (violations.size() > 10)
        all += "\n  ... " + std::to_string(violations.size() - 10) + " more";
      FAIL(target.name << ": round " << round << " (seed " << seed
                       << ") violated:" << all);
    }
    checker.reset(); // the next child needs the backend to itself
  }
  auto secs = std::chrono::duration<double>(clock_type::now() - t0).count();
  std::cout << "crash_loop " << target.name << ": " << rounds << " rounds, "
            << acknowledged << " acknowledged changes, " << in_flight
            << " more found after a kill, " << secs << " s (seed " << seed
            << ")" << std::endl;
}

} // namespace

SCENARIO("every acknowledged change survives a SIGKILL of a process that "
         "commits to SQLite",
         "[crash][sqlite]") {
  temp_dir dir;
  auto file = dir.path + "/contexts.db";
  loop_target target{"sqlite", "sqlite:" + file, [&] {
                       auto b = open_sqlite(file);
                       if (!b)
                         FAIL("open_sqlite: " << describe(b.error()));
                       return std::move(*b);
                     }};
  run_crash_loop(target);
}

SCENARIO("every acknowledged change survives a SIGKILL of a process that "
         "commits to Redis",
         "[crash][redis]") {
  redis_server server;
  const std::string prefix = "crash";
  loop_target target{
    "redis",
    "redis://127.0.0.1:" + std::to_string(server.port()) + "/" + prefix, [&] {
      // The killed child's lease would hold the prefix for up to 3 s more:
      // deleting it stands for its expiry (nobody holds it: the child is
      // dead and reaped).
      auto del = server.command({"DEL", prefix + ":lease"});
      REQUIRE(del);
      REQUIRE(del->type == REDIS_REPLY_INTEGER);
      auto b = open_redis("127.0.0.1", server.port(), prefix);
      if (!b)
        FAIL("open_redis: " << describe(b.error()));
      return std::move(*b);
    }};
  run_crash_loop(target);
}
