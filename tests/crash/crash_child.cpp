// The child of the crash loop (crash_loop.cpp): commits counters through a
// durable storage as fast as it can until it is killed, and reports every
// acknowledged change on stdout.
//
//   ctxstore_crash_child URI SEED THREADS ID...
//
// URI is what open_backend takes ("sqlite:PATH", "redis://HOST:PORT/PREFIX");
// thread t of THREADS owns the ids whose position p has p % THREADS == t, so
// nobody else changes them. Every change adds one to the counter's value and
// (being one commit) one to its version; a context starts as value 1 at
// version 1. So value == version for every context, in memory and in the
// backend; a half-applied commit would break it.
//
// Once a change was acknowledged (the call returned), the thread writes
// "<id> <version> <value>\n" with one write(2): shorter than PIPE_BUF, so
// lines of different threads never interleave, and a line is either in the
// pipe whole or not at all when the SIGKILL comes. Exit status 2: bad
// arguments or the backend did not open; 3: a change failed (no backend
// failure is expected while nothing but this process is killed; the fencing
// spec expects a conflict), after "crash_child: change failed (CODE): TEXT"
// on stderr.

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <boost/uuid/string_generator.hpp>
#include <boost/uuid/uuid_io.hpp>
#include <caf/all.hpp>

#include "ctxstore/ctxstore.hpp"

namespace {

/// The context type of the crash loop; registered as "counter", like the
/// specifications' (tests/fixture.hpp).
struct counter {
  int64_t value = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, counter& x) {
  return f(caf::meta::type_name("counter"), x.value);
}

struct child_config : caf::actor_system_config {
  child_config() {
    ctxstore::add_context_type<counter>(*this, "counter");
    set("scheduler.max-threads", 2);
    set("logger.console", caf::atom("none"));
  }
};

/// Writes one report line whole, or ends the process: a parent that stopped
/// reading cannot check anything anymore.
void report(const ctxstore::context_id& id, uint64_t version, int64_t value) {
  auto line = boost::uuids::to_string(id) + ' ' + std::to_string(version) + ' '
              + std::to_string(value) + '\n';
  auto n = write(STDOUT_FILENO, line.data(), line.size());
  if (n != static_cast<ssize_t>(line.size()))
    std::_Exit(4);
}

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "crash_child: %s\n", what.c_str());
  std::_Exit(3);
}

/// One thread's endless loop over the ids it owns.
void run(ctxstore::blocking_client client,
         std::vector<ctxstore::context_id> ids, uint64_t seed) {
  std::mt19937_64 rng{seed};
  for (;;) {
    auto& id = ids[rng() % ids.size()];
    try {
      if (rng() % 4 == 0) {
        // A session with two commits: a commit that keeps the session, then
        // the committing release.
        auto s = client.acquire<counter>(id);
        s->value += 1;
        s.commit();
        report(id, s.version(), s->value);
        s->value += 1;
        s.release();
      } else {
        client.update<counter>(id, [](counter& c) { ++c.value; });
      }
    } catch (const ctxstore::error& e) {
      if (e.code() != ctxstore::errc::no_such_context)
        fail("change failed (" + ctxstore::to_string(e.code())
             + "): " + e.what());
      // Only this thread creates it: nobody can be first in between.
      client.store(id, counter{1});
    } catch (const std::exception& e) {
      fail(std::string{"change failed: "} + e.what());
    }
    // Nobody else changes the context: this is what the change left.
    auto now = client.snapshot_versioned<counter>(id);
    report(id, now.version, now.value.value);
  }
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr,
                 "usage: ctxstore_crash_child URI SEED THREADS ID...\n");
    return 2;
  }
  std::string uri = argv[1];
  auto seed = std::strtoull(argv[2], nullptr, 10);
  auto threads = static_cast<size_t>(std::strtoul(argv[3], nullptr, 10));
  std::vector<ctxstore::context_id> ids;
  try {
    boost::uuids::string_generator parse;
    for (int i = 4; i < argc; ++i)
      ids.push_back(parse(std::string{argv[i]}));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "crash_child: bad id: %s\n", e.what());
    return 2;
  }
  if (threads == 0 || threads > ids.size()) {
    std::fprintf(stderr, "crash_child: THREADS must be 1..%zu\n", ids.size());
    return 2;
  }
  auto backend = ctxstore::open_backend(uri);
  if (!backend) {
    std::fprintf(stderr, "crash_child: cannot open %s: %s\n", uri.c_str(),
                 ctxstore::describe(backend.error()).c_str());
    return 2;
  }
  child_config cfg;
  caf::actor_system sys{cfg};
  ctxstore::storage_options opts;
  opts.backend = std::move(*backend);
  ctxstore::blocking_client client{
    sys, ctxstore::spawn_storage(sys, std::move(opts))};
  std::vector<std::thread> workers;
  for (size_t t = 0; t < threads; ++t) {
    std::vector<ctxstore::context_id> own;
    for (size_t p = t; p < ids.size(); p += threads)
      own.push_back(ids[p]);
    workers.emplace_back(run, client, std::move(own), seed + t);
  }
  // Runs until killed: the loops never end.
  for (auto& w : workers)
    w.join();
  return 0;
}
