#include "fixture.hpp"
#include "waiting.hpp"

#include <regex>
#include <sstream>

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
