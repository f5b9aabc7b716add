// Specifications of the Redis backend (open_redis) against a real
// redis-server of its own per scenario (tests/redis_server.hpp): what it
// keeps, that an acknowledged write survives a crash of the server, fencing
// by version and by lease, group commit, exclusivity of a prefix, and how it
// fails and recovers when the server goes away. Every wait is bounded.

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/uuid/random_generator.hpp>
#include <boost/uuid/uuid_io.hpp>

#include "ctxstore/backend.hpp"
#include "ctxstore/backends/redis_backend.hpp"
#include "ctxstore/error.hpp"
#include "redis_server.hpp"

using namespace ctxstore;
using backends::redis_backend;
using namespace std::chrono_literals;

namespace {

/// How long any one backend call may take before the test gives up.
constexpr auto patience = 5s;

context_id fresh_id() {
  static thread_local boost::uuids::random_generator gen;
  return gen();
}

std::vector<char> bytes_of(const std::string& text) {
  return std::vector<char>(text.begin(), text.end());
}

backend_write put(const context_id& id, uint64_t version, uint64_t replaces,
                  std::vector<char> bytes, std::string type = "cart") {
  backend_write w;
  w.type = std::move(type);
  w.id = id;
  w.version = version;
  w.replaces = replaces;
  w.bytes = std::move(bytes);
  return w;
}

backend_write erase(const context_id& id, uint64_t version,
                    std::string type = "cart") {
  backend_write w;
  w.type = std::move(type);
  w.id = id;
  w.version = version;
  w.replaces = version;
  w.erase = true;
  return w;
}

/// Writes and waits for the answer (at most `patience`).
caf::error write_now(backend& b, backend_write w) {
  auto done = std::make_shared<std::promise<caf::error>>();
  auto fut = done->get_future();
  b.write(std::move(w),
          [done](const caf::error& err) { done->set_value(err); });
  if (fut.wait_for(patience) != std::future_status::ready)
    FAIL("the write was not answered within 5 s");
  return fut.get();
}

/// Loads and waits for the answer (at most `patience`).
caf::expected<std::optional<stored_value>>
load_now(backend& b, const context_id& id, const std::string& type = "cart") {
  using result = caf::expected<std::optional<stored_value>>;
  auto done = std::make_shared<std::promise<result>>();
  auto fut = done->get_future();
  b.load(type, id, [done](result res) { done->set_value(std::move(res)); });
  if (fut.wait_for(patience) != std::future_status::ready)
    FAIL("the load was not answered within 5 s");
  return fut.get();
}

/// Checks that `b` holds `id` at `version` with `bytes`.
void check_row(backend& b, const context_id& id, uint64_t version,
               const std::vector<char>& bytes) {
  auto got = load_now(b, id);
  REQUIRE(got);
  REQUIRE(got->has_value());
  CHECK((*got)->version == version);
  CHECK((*got)->bytes == bytes);
}

std::shared_ptr<backend> open_on(const redis_server& server,
                                 const std::string& prefix = "ctxstore") {
  auto res = open_redis("127.0.0.1", server.port(), prefix);
  if (!res)
    FAIL("open_redis failed: " << describe(res.error()));
  return std::move(*res);
}

redis_backend& as_redis(backend& b) {
  return dynamic_cast<redis_backend&>(b);
}

} // namespace

SCENARIO("a Redis backend keeps what it was given, byte for byte",
         "[backend][redis]") {
  redis_server server;
  auto b = open_on(server, "shop");
  CHECK(b->name()
        == "redis://127.0.0.1:" + std::to_string(server.port()) + "/shop");
  GIVEN("a context written at version 1") {
    auto id = fresh_id();
    REQUIRE(!write_now(*b, put(id, 1, 0, bytes_of("first cart"))));
    THEN("a load gives its version and bytes back") {
      auto got = load_now(*b, id);
      REQUIRE(got);
      REQUIRE(got->has_value());
      CHECK((*got)->version == 1);
      CHECK((*got)->bytes == bytes_of("first cart"));
    }
    THEN("it is one hash under the prefix, named by type and uuid text") {
      auto r = server.command(
        {"HGET", "shop:c:cart:" + boost::uuids::to_string(id), "v"});
      REQUIRE(r);
      REQUIRE(r->type == REDIS_REPLY_STRING);
      CHECK(std::string{r->str, r->len} == "1");
    }
    THEN("the same id under another type is another context") {
      auto got = load_now(*b, id, "order");
      REQUIRE(got);
      CHECK(!got->has_value());
    }
  }
  GIVEN("an id that was never written") {
    THEN("a load finds nothing, without an error") {
      auto got = load_now(*b, fresh_id());
      REQUIRE(got);
      CHECK(!got->has_value());
    }
  }
  GIVEN("a value with zero bytes and every byte value in it") {
    std::vector<char> raw;
    for (int i = 0; i < 256; ++i)
      raw.push_back(static_cast<char>(i));
    raw.push_back('\0');
    raw.push_back('\0');
    auto id = fresh_id();
    REQUIRE(!write_now(*b, put(id, 7, 0, raw)));
    THEN("it loads back unchanged") {
      auto got = load_now(*b, id);
      REQUIRE(got);
      REQUIRE(got->has_value());
      CHECK((*got)->version == 7);
      CHECK((*got)->bytes == raw);
    }
  }
}

SCENARIO("an acknowledged write survives a crash of the Redis server",
         "[backend][redis]") {
  redis_server server;
  auto id = fresh_id();
  GIVEN("a write that was acknowledged") {
    auto b = open_on(server);
    REQUIRE(!write_now(*b, put(id, 3, 0, bytes_of("durable"))));
    WHEN("the server is killed (SIGKILL) and started again on its files") {
      server.kill();
      server.restart();
      // Closing gives the lease back over a new connection.
      b.reset();
      THEN("a new backend loads the write") {
        auto again = open_on(server);
        auto got = load_now(*again, id);
        REQUIRE(got);
        REQUIRE(got->has_value());
        CHECK((*got)->version == 3);
        CHECK((*got)->bytes == bytes_of("durable"));
      }
    }
  }
}

SCENARIO("a Redis write against another version than it replaces changes "
         "nothing",
         "[backend][redis]") {
  redis_server server;
  auto b = open_on(server);
  auto id = fresh_id();
  REQUIRE(!write_now(*b, put(id, 1, 0, bytes_of("v1"))));
  auto expect_v1 = [&] {
    auto got = load_now(*b, id);
    REQUIRE(got);
    REQUIRE(got->has_value());
    CHECK((*got)->version == 1);
    CHECK((*got)->bytes == bytes_of("v1"));
  };
  WHEN("a write replaces a version the backend does not hold") {
    auto err = write_now(*b, put(id, 6, 5, bytes_of("v6")));
    THEN("it fails with conflict and the context keeps version 1") {
      CHECK(to_errc(err) == errc::conflict);
      CHECK_THAT(describe(err), Catch::Contains("at version 1"));
      expect_v1();
    }
  }
  WHEN("a write creates a context that exists (replaces 0)") {
    auto err = write_now(*b, put(id, 2, 0, bytes_of("v2")));
    THEN("it fails with conflict") {
      CHECK(to_errc(err) == errc::conflict);
      expect_v1();
    }
  }
  WHEN("an erase names another version") {
    auto err = write_now(*b, erase(id, 4));
    THEN("it fails with conflict and the context stays") {
      CHECK(to_errc(err) == errc::conflict);
      expect_v1();
    }
  }
  WHEN("the next version is written and then erased") {
    REQUIRE(!write_now(*b, put(id, 2, 1, bytes_of("v2"))));
    REQUIRE(!write_now(*b, erase(id, 2)));
    THEN("a load finds nothing, and the id can be created again") {
      auto got = load_now(*b, id);
      REQUIRE(got);
      CHECK(!got->has_value());
      CHECK(!write_now(*b, put(id, 3, 0, bytes_of("v3"))));
    }
  }
}

SCENARIO("a Redis store writes the version after the one held, in one "
         "script",
         "[backend][redis]") {
  redis_server server;
  auto b = open_on(server);
  auto id = fresh_id();
  WHEN("a context the server does not have is stored") {
    auto left = b->store_and_wait(put(id, 0, 0, bytes_of("one")));
    THEN("it is version 1") {
      REQUIRE(left);
      CHECK(*left == 1);
      check_row(*b, id, 1, bytes_of("one"));
    }
  }
  WHEN("a context at version 5 is stored") {
    REQUIRE(!write_now(*b, put(id, 5, 0, bytes_of("five"))));
    auto left = b->store_and_wait(put(id, 0, 0, bytes_of("six")));
    THEN("it is version 6, with the new bytes, and later writes follow it") {
      REQUIRE(left);
      CHECK(*left == 6);
      check_row(*b, id, 6, bytes_of("six"));
      CHECK(!write_now(*b, put(id, 7, 6, bytes_of("seven"))));
    }
  }
  WHEN("the server holds a version that is not a number") {
    auto bad = server.command(
      {"HSET", "ctxstore:c:cart:" + boost::uuids::to_string(id), "v", "x",
       "d", "?"});
    REQUIRE(bad);
    auto left = b->store_and_wait(put(id, 0, 0, bytes_of("new")));
    THEN("the store fails with conflict and changes nothing") {
      REQUIRE(!left);
      CHECK(to_errc(left.error()) == errc::conflict);
      auto v = server.command(
        {"HGET", "ctxstore:c:cart:" + boost::uuids::to_string(id), "v"});
      REQUIRE(v);
      REQUIRE(v->type == REDIS_REPLY_STRING);
      CHECK(std::string{v->str, v->len} == "x");
    }
  }
}

SCENARIO("Redis writes that wait together go out in one pipeline",
         "[backend][redis]") {
  redis_server server;
  auto b = open_on(server);
  GIVEN("500 writes submitted from 8 threads without waiting") {
    constexpr int threads = 8;
    constexpr int total = 500;
    std::vector<context_id> ids(total);
    for (auto& id : ids)
      id = fresh_id();
    std::atomic<int> remaining{total};
    std::promise<void> all_done;
    auto all_done_fut = all_done.get_future();
    std::mutex mtx;
    std::vector<std::string> failures; // written by the worker
    std::vector<std::thread> writers;
    for (int t = 0; t < threads; ++t) {
      writers.emplace_back([&, t] {
        for (int i = t; i < total; i += threads) {
          auto text = "value " + std::to_string(i);
          b->write(put(ids[i], 1, 0, bytes_of(text)),
                   [&](const caf::error& err) {
                     if (err) {
                       std::lock_guard<std::mutex> guard{mtx};
                       failures.push_back(describe(err));
                     }
                     if (--remaining == 0)
                       all_done.set_value();
                   });
        }
      });
    }
    for (auto& th : writers)
      th.join();
    REQUIRE(all_done_fut.wait_for(10s) == std::future_status::ready);
    THEN("all succeed, in fewer batches than writes, and all load back") {
      CHECK(failures.empty());
      auto& rb = as_redis(*b);
      INFO(rb.batches() << " batches for " << rb.writes() << " writes");
      CHECK(rb.writes() == total);
      CHECK(rb.batches() < rb.writes());
      using result = caf::expected<std::optional<stored_value>>;
      std::vector<std::promise<result>> loaded(total);
      for (int i = 0; i < total; ++i)
        b->load("cart", ids[i], [&loaded, i](result res) {
          loaded[i].set_value(std::move(res));
        });
      for (int i = 0; i < total; ++i) {
        auto fut = loaded[i].get_future();
        REQUIRE(fut.wait_for(patience) == std::future_status::ready);
        auto got = fut.get();
        REQUIRE(got);
        REQUIRE(got->has_value());
        CHECK((*got)->version == 1);
        CHECK((*got)->bytes == bytes_of("value " + std::to_string(i)));
      }
    }
  }
}

SCENARIO("Redis loads that wait together each get their own context",
         "[backend][redis]") {
  redis_server server;
  auto b = open_on(server);
  auto kept = fresh_id();
  auto absent = fresh_id();
  REQUIRE_FALSE(write_now(*b, put(kept, 3, 0, bytes_of("kept"))));
  GIVEN("loads of a kept, an absent and a kept-but-other-type context, "
        "queued while the worker is busy (one pipeline)") {
    using result = caf::expected<std::optional<stored_value>>;
    std::promise<void> queued;
    auto go = queued.get_future().share();
    auto entered = std::make_shared<std::promise<void>>();
    auto in_answer = entered->get_future();
    b->write(put(fresh_id(), 1, 0, bytes_of("blocker")),
             [entered, go](const caf::error&) {
               entered->set_value();
               go.wait(); // the answer runs on the worker
             });
    REQUIRE(in_answer.wait_for(patience) == std::future_status::ready);
    std::vector<std::promise<result>> loaded(3);
    std::vector<std::future<result>> answers;
    for (auto& p : loaded)
      answers.push_back(p.get_future());
    b->load("cart", kept, [&loaded](result x) {
      loaded[0].set_value(std::move(x));
    });
    b->load("cart", absent, [&loaded](result x) {
      loaded[1].set_value(std::move(x));
    });
    b->load("other", kept, [&loaded](result x) {
      loaded[2].set_value(std::move(x));
    });
    queued.set_value();
    THEN("each answer is its own") {
      std::vector<result> got;
      for (auto& fut : answers) {
        REQUIRE(fut.wait_for(patience) == std::future_status::ready);
        got.push_back(fut.get());
      }
      REQUIRE(got[0]);
      REQUIRE(got[0]->has_value());
      CHECK((*got[0])->version == 3);
      CHECK((*got[0])->bytes == bytes_of("kept"));
      REQUIRE(got[1]);
      CHECK_FALSE(got[1]->has_value());
      REQUIRE(got[2]);
      CHECK_FALSE(got[2]->has_value());
    }
  }
}

SCENARIO("a Redis prefix is held by one backend at a time",
         "[backend][redis]") {
  redis_server server;
  auto first = open_on(server, "shop");
  WHEN("a second backend opens the same prefix") {
    auto second = open_redis("127.0.0.1", server.port(), "shop");
    THEN("it fails with backend_failure, naming the holder's epoch") {
      REQUIRE(!second);
      CHECK(to_errc(second.error()) == errc::backend_failure);
      auto text = describe(second.error());
      CHECK_THAT(text, Catch::Contains("held by another storage"));
      CHECK_THAT(text, Catch::Contains(
                         "epoch " + std::to_string(as_redis(*first).epoch())));
    }
  }
  WHEN("a second backend opens another prefix") {
    auto other = open_redis("127.0.0.1", server.port(), "stock");
    THEN("it succeeds") {
      CHECK(other);
    }
  }
  WHEN("the first backend is closed") {
    first.reset();
    THEN("the prefix opens again at once") {
      auto again = open_redis("127.0.0.1", server.port(), "shop");
      CHECK(again);
    }
  }
}

SCENARIO("a Redis backend that lost its lease can no longer write",
         "[backend][redis]") {
  redis_server server;
  auto a = open_on(server, "shop");
  auto id = fresh_id();
  REQUIRE(!write_now(*a, put(id, 1, 0, bytes_of("a1"))));
  GIVEN("A hangs (no renewals) until its lease ran out, and B took over") {
    as_redis(*a).suspend_renewals();
    // A load answered means the worker began a tick after the suspension:
    // no renewal of A can be on its way any more.
    REQUIRE(load_now(*a, id));
    // The lease running out, without waiting its 3 s.
    auto del = server.command({"DEL", "shop:lease"});
    REQUIRE(del);
    REQUIRE(del->type == REDIS_REPLY_INTEGER);
    REQUIRE(del->integer == 1);
    auto b = open_on(server, "shop");
    CHECK(as_redis(*b).epoch() > as_redis(*a).epoch());
    WHEN("A writes, to a context B has and to a new one, and stores") {
      auto other = fresh_id();
      auto err1 = write_now(*a, put(id, 2, 1, bytes_of("a2")));
      auto err2 = write_now(*a, put(other, 1, 0, bytes_of("a-new")));
      auto stored = a->store_and_wait(put(other, 0, 0, bytes_of("a-store")));
      THEN("all fail with conflict and nothing of them lands") {
        CHECK(to_errc(err1) == errc::conflict);
        CHECK(to_errc(err2) == errc::conflict);
        REQUIRE(!stored);
        CHECK(to_errc(stored.error()) == errc::conflict);
        CHECK_THAT(describe(err1), Catch::Contains("lost the prefix"));
        CHECK(as_redis(*a).fenced());
        auto got = load_now(*b, id);
        REQUIRE(got);
        REQUIRE(got->has_value());
        CHECK((*got)->version == 1);
        CHECK((*got)->bytes == bytes_of("a1"));
        auto none = load_now(*b, other);
        REQUIRE(none);
        CHECK(!none->has_value());
        AND_THEN("B writes on, and A's close does not end B's hold") {
          CHECK(!write_now(*b, put(id, 2, 1, bytes_of("b2"))));
          a.reset();
          CHECK(!open_redis("127.0.0.1", server.port(), "shop"));
          CHECK(!write_now(*b, put(id, 3, 2, bytes_of("b3"))));
        }
      }
    }
  }
}

SCENARIO("a Redis backend whose lease ran out while nobody took over takes "
         "it back",
         "[backend][redis]") {
  redis_server server;
  auto a = open_on(server, "shop");
  auto id = fresh_id();
  REQUIRE(!write_now(*a, put(id, 1, 0, bytes_of("a1"))));
  GIVEN("a second open that was refused (the prefix was held)") {
    REQUIRE(!open_redis("127.0.0.1", server.port(), "shop"));
    THEN("the epoch counter still names the holder") {
      auto counter = server.command({"GET", "shop:epoch"});
      REQUIRE(counter);
      REQUIRE(counter->type == REDIS_REPLY_STRING);
      CHECK(std::string(counter->str, counter->len)
            == std::to_string(as_redis(*a).epoch()));
    }
    AND_GIVEN("the holder stalls until its lease ran out") {
      as_redis(*a).suspend_renewals();
      REQUIRE(load_now(*a, id)); // a tick began after the suspension
      auto del = server.command({"DEL", "shop:lease"});
      REQUIRE(del);
      REQUIRE(del->integer == 1);
      WHEN("it writes, then renews again") {
        auto err = write_now(*a, put(id, 2, 1, bytes_of("a2")));
        THEN("that write fails with backend_failure (not conflict), and "
             "the next one lands") {
          CHECK(to_errc(err) == errc::backend_failure);
          CHECK_THAT(describe(err), Catch::Contains("lease ran out"));
          CHECK(!as_redis(*a).fenced());
          as_redis(*a).resume_renewals();
          CHECK(!write_now(*a, put(id, 2, 1, bytes_of("a2"))));
          auto got = load_now(*a, id);
          REQUIRE(got);
          REQUIRE(got->has_value());
          CHECK((*got)->version == 2);
          auto lease = server.command({"GET", "shop:lease"});
          REQUIRE(lease);
          REQUIRE(lease->type == REDIS_REPLY_STRING);
          CHECK(std::string(lease->str, lease->len)
                == std::to_string(as_redis(*a).epoch()));
        }
      }
    }
  }
}

SCENARIO("a Redis backend fails while its server is gone and resumes when it "
         "is back",
         "[backend][redis]") {
  redis_server server;
  auto b = open_on(server);
  auto id = fresh_id();
  REQUIRE(!write_now(*b, put(id, 1, 0, bytes_of("before"))));
  WHEN("the server dies") {
    server.kill();
    auto start = std::chrono::steady_clock::now();
    auto err = write_now(*b, put(id, 2, 1, bytes_of("lost")));
    auto took = std::chrono::steady_clock::now() - start;
    THEN("a write fails with backend_failure within 5 s") {
      CHECK(to_errc(err) == errc::backend_failure);
      CHECK(took < 5s);
      auto again = write_now(*b, put(id, 2, 1, bytes_of("lost")));
      CHECK(to_errc(again) == errc::backend_failure);
      CHECK_THAT(describe(again), Catch::Contains("not connected"));
      AND_WHEN("the server comes back") {
        server.restart();
        THEN("the same backend writes and loads again") {
          CHECK(!write_now(*b, put(id, 2, 1, bytes_of("after"))));
          auto got = load_now(*b, id);
          REQUIRE(got);
          REQUIRE(got->has_value());
          CHECK((*got)->version == 2);
          CHECK((*got)->bytes == bytes_of("after"));
        }
      }
    }
  }
}

SCENARIO("a Redis backend gives up on a hung server within its command "
         "timeout",
         "[backend][redis]") {
  redis_server server;
  auto b = open_on(server);
  WHEN("the server stops answering (SIGSTOP) while a write is sent") {
    server.stop_process(SIGSTOP);
    auto id = fresh_id();
    auto start = std::chrono::steady_clock::now();
    auto err = write_now(*b, put(id, 1, 0, bytes_of("unanswered")));
    auto took = std::chrono::steady_clock::now() - start;
    server.stop_process(SIGCONT);
    THEN("the write fails with backend_failure after about the timeout") {
      CHECK(to_errc(err) == errc::backend_failure);
      CHECK(took >= redis_backend::command_timeout - 100ms);
      CHECK(took < 5s);
      AND_THEN("the backend reconnects and writes again") {
        auto other = fresh_id();
        CHECK(!write_now(*b, put(other, 1, 0, bytes_of("answered"))));
        // The server may still run the unanswered write once it resumes
        // (it was sent): its outcome is unknown, and the version fences
        // a retry of it.
        auto got = load_now(*b, id);
        REQUIRE(got);
        if (got->has_value())
          CHECK((*got)->version == 1);
      }
    }
  }
}

SCENARIO("open_redis fails at once when no server listens",
         "[backend][redis]") {
  auto port = redis_server::free_port();
  auto start = std::chrono::steady_clock::now();
  auto res = open_redis("127.0.0.1", port, "shop");
  auto took = std::chrono::steady_clock::now() - start;
  REQUIRE(!res);
  CHECK(to_errc(res.error()) == errc::backend_failure);
  CHECK_THAT(describe(res.error()), Catch::Contains("cannot connect"));
  CHECK_THAT(describe(res.error()),
             Catch::Contains("redis://127.0.0.1:" + std::to_string(port)));
  CHECK(took < 2s);
}
