#include "temp_dir.hpp"
#include "async_fixture.hpp"
#include "fixture.hpp"
#include "forwarding_backend.hpp"
#include "waiting.hpp"

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <regex>
#include <sstream>
#include <thread>

#include "ctxstore/actors/feed.hpp"
#include "ctxstore/actors/metrics.hpp"

// blocking_client::metrics: the Prometheus text format 0.0.4, labelled by
// context type only.

using namespace ctxstore;
using namespace waiting;

namespace {

/// A type whose registered name needs every escape a label value has.
struct oddity {
  int64_t n = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, oddity& x) {
  return f(caf::meta::type_name("oddity"), x.n);
}

const std::string odd_name = "we\"ird\\type\nname";

struct odd_config : test_config {
  odd_config() {
    add_context_type<oddity>(*this, odd_name);
  }
};

/// The value of the sample line that starts with `series` (name and
/// labels), or -1.
double sample(const std::string& text, const std::string& series) {
  std::istringstream in{text};
  for (std::string line; std::getline(in, line);)
    if (line.rfind(series + " ", 0) == 0)
      return std::stod(line.substr(series.size() + 1));
  return -1;
}

/// True if every line is a comment (# HELP / # TYPE) or a sample whose label
/// values are properly quoted and escaped.
bool well_formed(const std::string& text, std::string& bad) {
  static const std::regex comment{R"(# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .*)"};
  static const std::regex line{
    R"([a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*")"
    R"((,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*")*\})? [-+0-9.eInf]+)"};
  std::istringstream in{text};
  for (std::string l; std::getline(in, l);) {
    if (!std::regex_match(l, l[0] == '#' ? comment : line)) {
      bad = l;
      return false;
    }
  }
  return !text.empty() && text.back() == '\n';
}

ctxstore::storage fast_path_storage(caf::actor_system& sys) {
  storage_options opts;
  opts.local_fast_path = true;
  return spawn_storage(sys, opts);
}

/// A real backend whose writes fail as `mode` says: with a conflict (the
/// real backend refuses a write that replaces a version it does not hold),
/// or with backend_failure (answered on the backend's thread, nothing
/// written).
class faulty_backend final : public forwarding_backend {
public:
  enum mode_t { pass, conflict, failure };

  explicit faulty_backend(std::shared_ptr<backend> real)
      : forwarding_backend(std::move(real), "faulty") {
    // nop
  }

  void write(backend_write w, write_done done) override {
    switch (mode.load()) {
    case conflict:
      w.replaces = 1'000'000;
      break;
    case failure:
      real().load(w.type, w.id, [done = std::move(done)](auto&&) {
        done(make_error(errc::backend_failure, "disk full (test)"));
      });
      return;
    default:
      break;
    }
    forwarding_backend::write(std::move(w), std::move(done));
  }

  std::atomic<mode_t> mode{pass};
};

const std::string counter_ops = R"(ctxstore_operations_total{type="counter",)";

} // namespace

SCENARIO("metrics count operations by type, kind and result", "[metrics]") {
  fixture f;
  auto& c = *f.client;
  auto id = new_id();
  c.store<counter>(id, counter{0});
  c.update<counter>(id, [](counter& x) { x.value += 1; });
  c.update<counter>(id, [](counter& x) { x.value += 1; });
  auto other = new_id();
  c.store<cart>(other, cart{});
  c.erase<cart>(other);
  auto text = c.metrics();
  std::string bad;
  CHECK(well_formed(text, bad));
  INFO(bad);
  const std::string counter_acquire
    = R"(ctxstore_operations_total{type="counter",kind="acquire",result="ok"})";
  CHECK(sample(text, counter_acquire) == 2);
  CHECK(sample(text, R"(ctxstore_operations_total{type="counter",kind="write",result="ok"})")
        == 3);
  CHECK(sample(text, R"(ctxstore_operations_total{type="cart",kind="erase",result="ok"})")
        == 1);
  CHECK(sample(text, R"(ctxstore_sessions{type="counter"})") == 0);
  CHECK(sample(text, R"(ctxstore_session_hold_seconds_count{type="counter"})")
        == 2);
  CHECK(sample(text,
               R"(ctxstore_session_hold_seconds_bucket{type="counter",le="+Inf"})")
        == 2);
  CHECK(text.find("# TYPE ctxstore_acquire_wait_seconds histogram")
        != std::string::npos);
  CHECK(sample(text, "ctxstore_resident_contexts") == 1);
  CHECK(text.find("id=") == std::string::npos); // never labelled by id
}

SCENARIO("metrics show sessions, waiters, waits, timeouts and deadlocks",
         "[metrics]") {
  fixture f{{}, fast_path_storage};
  auto& c = *f.client;
  auto id = new_id();
  c.store<counter>(id, counter{0});
  auto s = c.acquire<counter>(id);
  CHECK(code_of([&] {
          within(f, [&] { return c.acquire<counter>(id, std::chrono::milliseconds{0}); },
                 "a try");
        })
        == errc::timeout);
  blocking_client other = c;
  task<int64_t> waiter{f, [other, id]() mutable {
                         auto s2 = other.acquire<counter>(id);
                         s2.release();
                         return int64_t{1};
                       }};
  wait_for_waiters(f, 1);
  auto during = c.metrics();
  CHECK(sample(during, R"(ctxstore_sessions{type="counter"})") == 1);
  CHECK(sample(during, R"(ctxstore_waiters{type="counter"})") == 1);
  CHECK(sample(during, R"(ctxstore_timeouts_total{type="counter"})") == 1);
  s.release();
  CHECK(waiter.get("the waiting thread") == 1);
  auto after = c.metrics();
  CHECK(sample(after, R"(ctxstore_waiters{type="counter"})") == 0);
  CHECK(sample(after, R"(ctxstore_acquire_wait_seconds_count{type="counter"})")
        == 1);
  CHECK(sample(after, R"(ctxstore_acquire_wait_seconds_sum{type="counter"})")
        > 0);
}

SCENARIO("type names are escaped as Prometheus label values require",
         "[metrics]") {
  odd_config cfg;
  caf::actor_system sys{cfg};
  auto st = spawn_storage(sys, with_test_fast_path({}));
  {
    blocking_client c{sys, st};
    auto id = new_id();
    c.store<oddity>(id, oddity{1});
    c.update<oddity>(id, [](oddity& x) { x.n += 1; });
    auto text = c.metrics();
    std::string bad;
    CHECK(well_formed(text, bad));
    INFO(bad);
    CHECK(sample(text, R"(ctxstore_operations_total{type="we\"ird\\type\nname",kind="acquire",result="ok"})")
          == 1);
    CHECK(text.find(odd_name) == std::string::npos); // never raw
  }
  st = storage{};
}

SCENARIO("with a backend, metrics time the durable commits", "[metrics]") {
  char tmpl[] = "/tmp/ctxstore-metrics-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  std::string dir = tmpl;
  {
    auto db = open_sqlite(dir + "/contexts.db");
    REQUIRE(db);
    storage_options opts;
    opts.backend = *db;
    fixture f{opts};
    auto id = new_id();
    f.client->store<counter>(id, counter{1});
    f.client->update<counter>(id, [](counter& x) { x.value += 1; });
    auto text = f.client->metrics();
    std::string bad;
    CHECK(well_formed(text, bad));
    INFO(bad);
    CHECK(sample(text,
                 R"(ctxstore_durable_commit_seconds_count{type="counter"})")
          == 2);
    CHECK(sample(text, R"(ctxstore_durable_commit_seconds_sum{type="counter"})")
          > 0);
    // group commits: each blocking write waited alone, one write per batch
    CHECK(text.find("# TYPE ctxstore_durable_batch_writes histogram")
          != std::string::npos);
    CHECK(sample(text, "ctxstore_durable_batch_writes_sum") == 2);
    CHECK(sample(text, "ctxstore_durable_batch_writes_count") == 2);
    CHECK(sample(text, R"(ctxstore_durable_batch_writes_bucket{le="1"})") == 2);
    CHECK(sample(text, R"(ctxstore_durable_batch_writes_bucket{le="+Inf"})")
          == 2);
  }
  std::string cmd = "rm -rf '" + dir + "'";
  CHECK(std::system(cmd.c_str()) == 0);
}

SCENARIO("metrics count lease revocations and the refused late holder",
         "[metrics][lease]") {
  storage_options opts;
  opts.lease = std::chrono::milliseconds{50};
  fixture f{opts};
  auto& c = *f.client;
  auto id = new_id();
  c.store<counter>(id, counter{0});
  {
    auto s = c.acquire<counter>(id);
    poll_stats(
      f, [](const storage_stats& x) { return x.sessions == 0; },
      "the lease revoked the session");
    CHECK(code_of([&] { s.commit(); }) == errc::session_expired);
  }
  auto text = c.metrics();
  CHECK(sample(text, R"(ctxstore_lease_revocations_total{type="counter"})")
        == 1);
  CHECK(sample(text, R"(ctxstore_fencing_refusals_total{type="counter"})")
        >= 1);
}

SCENARIO("metrics count failed operations by kind and error", "[metrics]") {
  GIVEN("a backend that fails writes") {
    temp_dir dir;
    auto db = open_sqlite(dir.path + "/contexts.db");
    REQUIRE(db);
    auto faulty = std::make_shared<faulty_backend>(*db);
    storage_options opts;
    opts.backend = faulty;
    fixture f{opts};
    auto& c = *f.client;
    auto id = new_id();
    c.store<counter>(id, counter{1});
    faulty->mode = faulty_backend::failure;
    CHECK(error_code_of([&] { c.store<counter>(id, counter{2}); })
          == errc::backend_failure);
    CHECK(error_code_of([&] { c.erase<counter>(id); })
          == errc::backend_failure);
    faulty->mode = faulty_backend::conflict;
    CHECK(error_code_of([&] { c.store<counter>(id, counter{3}); })
          == errc::conflict);
    faulty->mode = faulty_backend::pass;
    auto text = c.metrics();
    std::string bad;
    CHECK(well_formed(text, bad));
    INFO(bad);
    CHECK(sample(text, counter_ops + R"(kind="write",result="ok"})") == 1);
    CHECK(sample(text, counter_ops + R"(kind="write",result="backend_failure"})")
          == 1);
    CHECK(sample(text, counter_ops + R"(kind="erase",result="backend_failure"})")
          == 1);
    CHECK(sample(text, counter_ops + R"(kind="write",result="conflict"})")
          == 1);
  }
  GIVEN("an acquire of a context that does not exist") {
    fixture f;
    CHECK(error_code_of([&] { f.client->acquire<counter>(new_id()); })
          == errc::no_such_context);
    auto text = f.client->metrics();
    CHECK(sample(text, counter_ops + R"(kind="acquire",result="no_such_context"})")
          == 1);
    THEN("errors that never happened have no series") {
      CHECK(text.find(R"(result="type_mismatch")") == std::string::npos);
    }
  }
  GIVEN("every error a type's operations can count") {
    actors::metrics_registry r;
    auto& m = *r.of("counter");
    for (auto code : {errc::type_mismatch, errc::backend_failure,
                      errc::conflict, errc::timeout, errc::storage_down}) {
      m.count_failure(actors::op_kind::write, code);
      m.count_failure(actors::op_kind::erase, make_error(code, "test"));
    }
    m.count_failure(actors::op_kind::acquire, errc::timeout);
    m.acquire_timeout += 1;
    actors::counters totals;
    actors::feed changes{1};
    auto text = r.render(totals, changes);
    std::string bad;
    CHECK(well_formed(text, bad));
    INFO(bad);
    THEN("each is a result of its kind; fixed results add up") {
      for (std::string result :
           {"type_mismatch", "backend_failure", "conflict", "timeout",
            "storage_down"}) {
        INFO(result);
        CHECK(sample(text, counter_ops + R"(kind="write",result=")" + result
                             + "\"}")
              == 1);
        CHECK(sample(text, counter_ops + R"(kind="erase",result=")" + result
                             + "\"}")
              == 1);
      }
      CHECK(sample(text, counter_ops + R"(kind="acquire",result="timeout"})")
            == 2);
    }
  }
}

SCENARIO("metrics show the feed's watchers and the changes they skipped",
         "[metrics][feed]") {
  storage_options opts;
  opts.watch_buffer = 1;
  fixture f{opts};
  auto& c = *f.client;
  auto id = new_id();
  c.store<counter>(id, counter{1});
  auto w = c.watch<counter>(id);
  for (int64_t i = 2; i <= 4; ++i)
    c.store<counter>(id, counter{i}); // the watcher reads none of them yet
  uint64_t skipped = 0;
  for (uint64_t version = 0; version < 4;) {
    auto x = w.next(std::chrono::seconds{5});
    REQUIRE(x);
    version = x->version;
    skipped += x->skipped;
  }
  CHECK(skipped > 0);
  auto text = c.metrics();
  std::string bad;
  CHECK(well_formed(text, bad));
  INFO(bad);
  CHECK(sample(text, "ctxstore_watchers") == 1);
  CHECK(sample(text, "ctxstore_watch_skipped_changes_total")
        == static_cast<double>(skipped));
}

SCENARIO("metrics of a stopped storage fail with storage_down",
         "[metrics][lifetime]") {
  fixture f;
  auto& c = *f.client;
  c.store<counter>(new_id(), counter{1});
  CHECK(sample(c.metrics(), "ctxstore_resident_contexts") == 1);
  WHEN("the storage is stopped") {
    caf::anon_send_exit(f.store.registry(), caf::exit_reason::kill);
    // Stopped once the registry no longer answers (its state, which closes
    // the board, is gone before its mailbox bounces requests).
    auto stopped = [&] {
      try {
        c.stats();
        return false;
      } catch (const ctxstore::error& e) {
        return e.code() == errc::storage_down;
      }
    };
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{5};
    while (!stopped() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::yield();
    REQUIRE(stopped());
    THEN("blocking and async metrics() fail with storage_down") {
      CHECK(error_code_of([&] { c.metrics(); }) == errc::storage_down);
      auto from_actor = async_fixture::run_in_actor<std::string>(
        f, [](caf::event_based_actor*, async_fixture::client_ptr ac,
              auto done) {
          ac->metrics().then([done](std::string) { done("text"); },
                             [done](caf::error& e) {
                               done(to_string(to_errc(e)));
                             });
        });
      CHECK(from_actor == "storage_down");
    }
  }
}
