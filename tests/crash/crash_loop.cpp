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
#include <fstream>
#include <functional>
#include <future>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
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
/// here, its stderr is ours (or the file `stderr_path`, if not empty). The destructor kills and reaps it. It also gets
/// SIGKILL if this process dies first (PR_SET_PDEATHSIG, tied to the forking
/// thread: start children from the test's main thread only).
class child_process {
public:
  explicit child_process(std::vector<std::string> args,
                         const std::string& stderr_path = {}) {
    args.insert(args.begin(), CTXSTORE_CRASH_CHILD_BINARY);
    std::vector<char*> argv;
    for (auto& arg : args)
      argv.push_back(arg.data());
    argv.push_back(nullptr);
    int fds[2];
    REQUIRE(pipe2(fds, O_CLOEXEC) == 0);
    int err = -1;
    if (!stderr_path.empty()) {
      err = open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                 0600);
      REQUIRE(err >= 0);
    }
    auto parent = getpid();
    pid_ = fork();
    if (pid_ == 0) {
      // Only async-signal-safe calls between fork and exec.
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent)
        _exit(127);
      dup2(fds[1], STDOUT_FILENO); // clears O_CLOEXEC on the copy
      if (err >= 0)
        dup2(err, STDERR_FILENO);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(fds[1]);
    if (err >= 0)
      close(err);
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

  /// Sends `sig` to the child (SIGSTOP: it hangs, every thread; SIGCONT: it
  /// resumes).
  void signal(int sig) {
    if (pid_ > 0)
      ::kill(pid_, sig);
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

namespace {

/// Writes `value` as version `version` of the counter `id`, replacing
/// `replaces` (0: none), through `b`'s write API; the write's outcome.
caf::error write_counter(backend& b, const context_id& id, uint64_t version,
                         uint64_t replaces, int64_t value) {
  backend_write w;
  w.type = "counter";
  w.id = id;
  w.version = version;
  w.replaces = replaces;
  auto msg = caf::make_message(counter{value});
  if (auto err = detail::value_codec<counter>::save(msg, w.bytes))
    FAIL("counter " << value << " does not encode");
  auto done = std::make_shared<std::promise<caf::error>>();
  auto fut = done->get_future();
  b.write(std::move(w),
          [done](const caf::error& err) { done->set_value(err); });
  if (fut.wait_for(step_bound) != std::future_status::ready)
    FAIL("the write of " << id << " was not answered within "
                         << step_bound.count() << " s");
  return fut.get();
}

/// How long the fencing spec lets the child run before the SIGSTOP.
constexpr auto fencing_run = 300ms;

/// How long the lease of the stopped child may take to run out: the lease
/// is 3 s from its last renewal, plus slack for a busy machine.
constexpr auto lease_gone_bound = 6s;

/// How long the SIGCONTed child may take to notice that it was fenced (its
/// next write, or its next renewal about a second later) and exit.
constexpr auto fenced_exit_bound = 10s;

} // namespace

// The durable-backend issue: "a storage SIGSTOPped past its lease, a second
// one takes over, the first is SIGCONTed and none of its writes land".
//
// The second storage (backend B, opened here once the stopped child's lease
// ran out) changes only every other context. A context B changed would
// refuse the child's next write by its version alone (the child replaces the
// version it knows, B moved it on); a context B left alone still has the
// version the child knows, so only the lease (the epoch in the write script)
// stands between the child and an overwrite. Both kinds must end exactly as
// B left them.
SCENARIO("a storage stopped past its Redis lease is fenced: none of its "
         "writes land after another storage took over",
         "[crash][fencing]") {
  alarm_guard guard;
  redis_server server;
  temp_dir dir;
  const std::string prefix = "fence";
  const std::string lease_key = prefix + ":lease";
  auto seed = seed_from_env();
  INFO("seed " << seed << " (CTXSTORE_CRASH_SEED repeats it)");
  std::mt19937_64 rng{seed};
  std::vector<context_id> ids;
  {
    std::mt19937 id_engine{static_cast<uint32_t>(rng())};
    boost::uuids::basic_random_generator<std::mt19937> gen{id_engine};
    for (size_t i = 0; i < context_count; ++i)
      ids.push_back(gen());
  }
  std::vector<std::string> args{
    "redis://127.0.0.1:" + std::to_string(server.port()) + "/" + prefix,
    std::to_string(rng()), std::to_string(child_threads)};
  for (auto& id : ids)
    args.push_back(boost::uuids::to_string(id));
  auto err_path = dir.path + "/child.stderr";
  auto child_stderr = [&] {
    std::ifstream in{err_path};
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  };
  boost::uuids::string_generator parse_id;
  // The highest version the child reported (acknowledged) per context.
  std::map<context_id, uint64_t> acked;
  auto parse = [&](const std::string& line) {
    std::istringstream in{line};
    std::string id_text;
    uint64_t version = 0;
    int64_t value = 0;
    in >> id_text >> version >> value;
    INFO("the child reported: " << line);
    REQUIRE(in);
    auto id = parse_id(id_text);
    REQUIRE(std::find(ids.begin(), ids.end(), id) != ids.end());
    return std::make_pair(id, version);
  };
  child_process child{args, err_path};
  GIVEN("a child committing to redis://.../fence, SIGSTOPped after a while") {
    std::vector<std::string> before;
    auto alive = child.read_lines(clock_type::now() + first_line_bound, before,
                                  1);
    if (alive && !before.empty())
      alive = child.read_lines(clock_type::now() + fencing_run, before);
    if (!alive) {
      auto status = child.wait_exit(step_bound);
      FAIL("the child ended by itself before the SIGSTOP ("
           << (status ? describe_status(*status) : "not reaped")
           << "); its stderr: " << child_stderr());
    }
    REQUIRE(!before.empty());
    child.signal(SIGSTOP);
    // Lines it wrote before the stop took hold.
    child.read_lines(clock_type::now() + 200ms, before);
    for (auto& line : before) {
      auto [id, version] = parse(line);
      acked[id] = std::max(acked[id], version);
    }
    WHEN("its lease runs out and a second storage (B) takes the prefix and "
         "changes every other context") {
      // The server expires the lease by itself: poll the key, bounded.
      auto conn = server.connect();
      REQUIRE(conn);
      auto t_stop = clock_type::now();
      bool gone = false;
      while (clock_type::now() - t_stop < lease_gone_bound) {
        redis_server::reply r{static_cast<redisReply*>(
          redisCommand(conn.get(), "EXISTS %s", lease_key.c_str()))};
        REQUIRE(r);
        REQUIRE(r->type == REDIS_REPLY_INTEGER);
        if (r->integer == 0) {
          gone = true;
          break;
        }
        // Waiting for the server's expiry: nothing to await.
        std::this_thread::sleep_for(50ms);
      }
      INFO("the lease key ran out "
           << std::chrono::duration_cast<std::chrono::milliseconds>(
                clock_type::now() - t_stop)
                .count()
           << " ms after the SIGSTOP");
      REQUIRE(gone);
      auto opened = open_redis("127.0.0.1", server.port(), prefix);
      if (!opened)
        FAIL("open_redis (B) after the lease ran out: "
             << describe(opened.error()));
      auto b = std::move(*opened);
      // B's state: what it found, and its change to every other context.
      std::map<context_id, stored_counter> state;
      for (size_t i = 0; i < ids.size(); ++i) {
        auto& id = ids[i];
        auto found = load_counter(*b, id);
        auto base = found ? *found : stored_counter{};
        INFO("context " << i << " " << id << ": the child acknowledged "
                        << acked[id] << ", B found version " << base.version);
        // Every change the child acknowledged is there.
        REQUIRE(base.version >= acked[id]);
        if (i % 2 == 0) {
          stored_counter mine{base.version + 1,
                              1'000'000 + static_cast<int64_t>(i)};
          auto err
            = write_counter(*b, id, mine.version, base.version, mine.value);
          if (err)
            FAIL("B's write of context " << i << ": " << describe(err));
          state[id] = mine;
        } else {
          state[id] = base;
        }
      }
      AND_WHEN("the child is SIGCONTed") {
        child.signal(SIGCONT);
        std::vector<std::string> after;
        auto deadline = clock_type::now() + fenced_exit_bound;
        while (child.read_lines(deadline, after)
               && clock_type::now() < deadline) {
          // until the pipe closes (the child ended) or the bound
        }
        auto status = child.wait_exit(step_bound);
        bool killed = false;
        if (!status) {
          killed = true;
          REQUIRE(child.kill());
        }
        auto err_text = child_stderr();
        THEN("its next change fails with a conflict, it exits with status "
             "3, and every context holds exactly B's state") {
          INFO("the child's stderr: " << err_text);
          INFO("the child's lines after the SIGCONT: " << after.size());
          CHECK_FALSE(killed); // it did not end by itself within the bound
          if (status) {
            INFO("the child ended with " << describe_status(*status));
            CHECK(WIFEXITED(*status));
            CHECK(WEXITSTATUS(*status) == 3);
          }
          CHECK(err_text.find("change failed (conflict)") != std::string::npos);
          // Refused by the lease (the script checks it before the version).
          CHECK(err_text.find("lost the prefix to another storage")
                != std::string::npos);
          // Nothing it acknowledged after the SIGCONT went past what B found:
          // such a change would have been made durable after the takeover.
          for (auto& line : after) {
            auto [id, version] = parse(line);
            INFO("the child reported after the SIGCONT: " << line);
            auto i = std::find(ids.begin(), ids.end(), id) - ids.begin();
            auto found = i % 2 == 0 ? state[id].version - 1 : state[id].version;
            CHECK(version <= found);
          }
          // Every context as B left it.
          for (size_t i = 0; i < ids.size(); ++i) {
            auto& id = ids[i];
            auto& mine = state[id];
            auto now = load_counter(*b, id);
            INFO("context " << i << " " << id << " ("
                            << (i % 2 == 0 ? "changed by B" : "left by B")
                            << "): B left version " << mine.version
                            << " value " << mine.value);
            if (mine.version == 0) {
              CHECK_FALSE(now.has_value());
              continue;
            }
            REQUIRE(now.has_value());
            CHECK(now->version == mine.version);
            CHECK(now->value == mine.value);
          }
          // B still holds the prefix: its next write lands, on the version
          // it left (the script checks both).
          auto& id = ids[1];
          auto err = write_counter(*b, id, state[id].version + 1,
                                   state[id].version, 2'000'000);
          INFO("B's last write: " << describe(err));
          CHECK_FALSE(err);
        }
      }
    }
  }
}
