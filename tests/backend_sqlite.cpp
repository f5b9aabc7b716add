// Specifications of the SQLite backend (open_sqlite): what it keeps, how it
// fences writes, how it batches them, and how it holds its file. Each
// specification works in a fresh directory under /tmp; the backend's calls
// answer on its worker thread, so the specifications await futures.

#include <catch2/catch.hpp>

#include <sys/types.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <sqlite3.h>

#include "temp_dir.hpp"
#include "child_exit.hpp"
#include "ctxstore/backend.hpp"
#include "ctxstore/backends/sqlite_backend.hpp"
#include "ctxstore/error.hpp"

using namespace ctxstore;
using backends::sqlite_backend;

namespace {

/// Longest wait for one answer of the backend (an fsync or a few).
constexpr auto patience = std::chrono::seconds{10};

context_id id_of(uint8_t n) {
  context_id id{};
  id.data[0] = 0xc7;
  id.data[15] = n;
  return id;
}

std::vector<char> bytes_of(const std::string& text) {
  return std::vector<char>(text.begin(), text.end());
}

backend_write write_of(const context_id& id, uint64_t version,
                       uint64_t replaces, std::vector<char> bytes) {
  backend_write w;
  w.type = "cart";
  w.id = id;
  w.version = version;
  w.replaces = replaces;
  w.bytes = std::move(bytes);
  return w;
}

backend_write erase_of(const context_id& id, uint64_t version) {
  backend_write w;
  w.type = "cart";
  w.id = id;
  w.version = version;
  w.replaces = version;
  w.erase = true;
  return w;
}

/// Submits `w` without waiting: the future holds its answer.
std::future<caf::error> submit(backend& b, backend_write w) {
  auto done = std::make_shared<std::promise<caf::error>>();
  auto result = done->get_future();
  b.write(std::move(w),
          [done](const caf::error& err) { done->set_value(err); });
  return result;
}

caf::error await(std::future<caf::error>& answer) {
  REQUIRE(answer.wait_for(patience) == std::future_status::ready);
  return answer.get();
}

caf::error write_now(backend& b, backend_write w) {
  auto answer = submit(b, std::move(w));
  return await(answer);
}

caf::expected<std::optional<stored_value>>
load_now(backend& b, const context_id& id, const std::string& type = "cart") {
  using answer = caf::expected<std::optional<stored_value>>;
  auto done = std::make_shared<std::promise<answer>>();
  auto result = done->get_future();
  b.load(type, id, [done](answer x) { done->set_value(std::move(x)); });
  REQUIRE(result.wait_for(patience) == std::future_status::ready);
  return result.get();
}

/// Checks that `b` holds `id` at `version` with `bytes`.
void check_row(backend& b, const context_id& id, uint64_t version,
               const std::vector<char>& bytes) {
  auto loaded = load_now(b, id);
  REQUIRE(loaded);
  REQUIRE(loaded->has_value());
  CHECK((*loaded)->version == version);
  CHECK((*loaded)->bytes == bytes);
}

std::shared_ptr<sqlite_backend> open_or_fail(const std::string& path) {
  auto result = sqlite_backend::open(path);
  INFO((result ? std::string{} : describe(result.error())));
  REQUIRE(result);
  return std::move(*result);
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

} // namespace

SCENARIO("a written context loads back with its version and bytes",
         "[backend][sqlite]") {
  temp_dir dir;
  GIVEN("a backend opened through open_sqlite") {
    auto opened = open_sqlite(dir.file("store.db"));
    REQUIRE(opened);
    auto& b = **opened;
    CHECK(b.name() == "sqlite:" + dir.file("store.db"));
    WHEN("a new context is written") {
      REQUIRE_FALSE(write_now(b, write_of(id_of(1), 1, 0, bytes_of("abc"))));
      THEN("a load returns its version and bytes") {
        auto loaded = load_now(b, id_of(1));
        REQUIRE(loaded);
        REQUIRE(loaded->has_value());
        CHECK((*loaded)->version == 1);
        CHECK((*loaded)->bytes == bytes_of("abc"));
      }
      THEN("an id it never saw, or another type, loads as nothing") {
        auto unknown = load_now(b, id_of(2));
        REQUIRE(unknown);
        CHECK_FALSE(unknown->has_value());
        auto other_type = load_now(b, id_of(1), "order");
        REQUIRE(other_type);
        CHECK_FALSE(other_type->has_value());
      }
    }
    WHEN("a context with an empty value is written") {
      REQUIRE_FALSE(write_now(b, write_of(id_of(3), 1, 0, {})));
      THEN("it loads back, empty") {
        auto loaded = load_now(b, id_of(3));
        REQUIRE(loaded);
        REQUIRE(loaded->has_value());
        CHECK((*loaded)->version == 1);
        CHECK((*loaded)->bytes.empty());
      }
    }
  }
}

SCENARIO("a store writes the version after the one held, without a read",
         "[backend][sqlite]") {
  temp_dir dir;
  auto b = open_or_fail(dir.file("store.db"));
  WHEN("a context the file does not have is stored") {
    auto left = b->store_and_wait(write_of(id_of(1), 0, 0, bytes_of("one")));
    THEN("it is version 1") {
      REQUIRE(left);
      CHECK(*left == 1);
      check_row(*b, id_of(1), 1, bytes_of("one"));
    }
  }
  WHEN("a context at version 5 is stored") {
    REQUIRE_FALSE(write_now(*b, write_of(id_of(2), 5, 0, bytes_of("five"))));
    auto left = b->store_and_wait(write_of(id_of(2), 0, 0, bytes_of("six")));
    THEN("it is version 6, with the new bytes") {
      REQUIRE(left);
      CHECK(*left == 6);
      check_row(*b, id_of(2), 6, bytes_of("six"));
      AND_THEN("a write that replaces version 6 follows it") {
        CHECK_FALSE(write_now(*b, write_of(id_of(2), 7, 6, bytes_of("7"))));
      }
    }
  }
}

SCENARIO("an acknowledged write survives closing the backend",
         "[backend][sqlite]") {
  temp_dir dir;
  auto path = dir.file("store.db");
  GIVEN("a context written twice, then the backend destroyed") {
    {
      auto b = open_or_fail(path);
      REQUIRE_FALSE(write_now(*b, write_of(id_of(1), 1, 0, bytes_of("v1"))));
      REQUIRE_FALSE(write_now(*b, write_of(id_of(1), 2, 1, bytes_of("v2"))));
    }
    WHEN("the file is opened again") {
      auto b = open_or_fail(path);
      THEN("the last acknowledged version loads") {
        auto loaded = load_now(*b, id_of(1));
        REQUIRE(loaded);
        REQUIRE(loaded->has_value());
        CHECK((*loaded)->version == 2);
        CHECK((*loaded)->bytes == bytes_of("v2"));
      }
    }
  }
}

SCENARIO("a context takes about its value's size in the file",
         "[backend][sqlite]") {
  temp_dir dir;
  auto path = dir.file("store.db");
  constexpr int contexts = 2000;
  const std::vector<char> value(1063, 'v'); // the bench's context
  {
    auto b = open_or_fail(path);
    std::vector<std::future<caf::error>> answers;
    for (int i = 0; i < contexts; ++i) {
      auto id = id_of(static_cast<uint8_t>(i));
      id.data[1] = static_cast<uint8_t>(i >> 8);
      answers.push_back(submit(*b, write_of(id, 1, 0, value)));
    }
    for (auto& answer : answers)
      REQUIRE_FALSE(await(answer));
  } // closing checkpoints the WAL into the file
  auto bytes = std::filesystem::file_size(path);
  INFO(bytes / contexts << " bytes of the file per context of "
                        << value.size() << " bytes");
  // A row of 1 KB in a WITHOUT ROWID table (schema version 1) took 4.7 KB.
  CHECK(bytes < contexts * 2 * value.size());
}

SCENARIO("a file of schema version 1 is read and written as it is",
         "[backend][sqlite]") {
  temp_dir dir;
  auto path = dir.file("v1.db");
  GIVEN("a file with version 1's layout and a context in it") {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    auto sql
      = "CREATE TABLE contexts(type TEXT NOT NULL, id BLOB NOT NULL, version "
        "INTEGER NOT NULL, value BLOB NOT NULL, PRIMARY KEY(type, id)) "
        "WITHOUT ROWID;"
        "CREATE TABLE meta(key TEXT PRIMARY KEY, value);"
        "INSERT INTO meta(key, value) VALUES('schema_version', 1);";
    REQUIRE(sqlite3_exec(db, sql, nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_stmt* insert = nullptr;
    REQUIRE(sqlite3_prepare_v2(db,
                               "INSERT INTO contexts VALUES('cart', ?1, 3, "
                               "'old')",
                               -1, &insert, nullptr)
            == SQLITE_OK);
    auto id = id_of(7);
    sqlite3_bind_blob(insert, 1, id.data, 16, SQLITE_STATIC);
    CHECK(sqlite3_step(insert) == SQLITE_DONE);
    sqlite3_finalize(insert);
    sqlite3_close(db);
    WHEN("the backend opens it") {
      auto b = open_or_fail(path);
      THEN("it reads the context and writes the next version") {
        auto loaded = load_now(*b, id);
        REQUIRE(loaded);
        REQUIRE(loaded->has_value());
        CHECK((*loaded)->version == 3);
        CHECK((*loaded)->bytes == bytes_of("old"));
        REQUIRE_FALSE(write_now(*b, write_of(id, 4, 3, bytes_of("new"))));
        auto again = load_now(*b, id);
        REQUIRE(again);
        REQUIRE(again->has_value());
        CHECK((*again)->version == 4);
        CHECK((*again)->bytes == bytes_of("new"));
      }
    }
  }
}

SCENARIO("a write that does not replace the version held fails as a conflict",
         "[backend][sqlite]") {
  temp_dir dir;
  auto b = open_or_fail(dir.file("store.db"));
  GIVEN("a context at version 2") {
    REQUIRE_FALSE(write_now(*b, write_of(id_of(1), 1, 0, bytes_of("v1"))));
    REQUIRE_FALSE(write_now(*b, write_of(id_of(1), 2, 1, bytes_of("v2"))));
    auto held_unchanged = [&] {
      auto loaded = load_now(*b, id_of(1));
      REQUIRE(loaded);
      REQUIRE(loaded->has_value());
      CHECK((*loaded)->version == 2);
      CHECK((*loaded)->bytes == bytes_of("v2"));
    };
    WHEN("a write claims to replace version 1") {
      auto err = write_now(*b, write_of(id_of(1), 2, 1, bytes_of("stale")));
      THEN("it fails with conflict, naming both versions, and changes "
           "nothing") {
        CHECK(to_errc(err) == errc::conflict);
        CHECK(contains(describe(err), "holds version 2"));
        CHECK(contains(describe(err), "not 1"));
        held_unchanged();
      }
    }
    WHEN("a write claims the context is new (replaces 0)") {
      auto err = write_now(*b, write_of(id_of(1), 1, 0, bytes_of("new")));
      THEN("it fails with conflict and changes nothing") {
        CHECK(to_errc(err) == errc::conflict);
        held_unchanged();
      }
    }
    WHEN("an erase names another version") {
      auto err = write_now(*b, erase_of(id_of(1), 1));
      THEN("it fails with conflict and the context stays") {
        CHECK(to_errc(err) == errc::conflict);
        held_unchanged();
      }
    }
    WHEN("the context is erased at version 2") {
      REQUIRE_FALSE(write_now(*b, erase_of(id_of(1), 2)));
      THEN("a load finds nothing and the id can start again from 0") {
        auto loaded = load_now(*b, id_of(1));
        REQUIRE(loaded);
        CHECK_FALSE(loaded->has_value());
        CHECK_FALSE(write_now(*b, write_of(id_of(1), 3, 0, bytes_of("v3"))));
      }
    }
    WHEN("a conflicting write and a good one are submitted together") {
      auto bad = submit(*b, write_of(id_of(1), 9, 7, bytes_of("stale")));
      auto good = submit(*b, write_of(id_of(2), 1, 0, bytes_of("other")));
      THEN("only the conflicting one fails") {
        CHECK(to_errc(await(bad)) == errc::conflict);
        CHECK_FALSE(await(good));
        held_unchanged();
        auto other = load_now(*b, id_of(2));
        REQUIRE(other);
        CHECK(other->has_value());
      }
    }
  }
}

SCENARIO("writes that wait together commit in one transaction",
         "[backend][sqlite]") {
  temp_dir dir;
  auto b = open_or_fail(dir.file("store.db"));
  GIVEN("8 threads that submit 63 new contexts each without waiting") {
    constexpr int threads = 8;
    constexpr int per_thread = 63;
    constexpr int writes = threads * per_thread;
    auto id_for = [](int t, int i) {
      context_id id{};
      id.data[0] = static_cast<uint8_t>(t);
      id.data[1] = static_cast<uint8_t>(i);
      return id;
    };
    auto start = std::chrono::steady_clock::now();
    auto batches_before = b->batches();
    std::vector<std::vector<std::future<caf::error>>> answers(threads);
    std::vector<std::thread> submitters;
    for (int t = 0; t < threads; ++t)
      submitters.emplace_back([&, t] {
        for (int i = 0; i < per_thread; ++i)
          answers[t].push_back(submit(
            *b, write_of(id_for(t, i), 1, 0,
                         bytes_of("value " + std::to_string(t * 1000 + i)))));
      });
    for (auto& submitter : submitters)
      submitter.join();
    WHEN("all answers arrive") {
      int failed = 0;
      for (auto& of_thread : answers)
        for (auto& answer : of_thread)
          failed += await(answer) ? 1 : 0;
      auto batches = b->batches() - batches_before;
      THEN("every write succeeded, in fewer transactions than writes, and "
           "loads back") {
        CHECK(failed == 0);
        INFO("transactions: " << batches);
        CHECK(batches < static_cast<uint64_t>(writes));
        for (int t = 0; t < threads; ++t)
          for (int i = 0; i < per_thread; ++i) {
            auto loaded = load_now(*b, id_for(t, i));
            REQUIRE(loaded);
            REQUIRE(loaded->has_value());
            CHECK((*loaded)->bytes
                  == bytes_of("value " + std::to_string(t * 1000 + i)));
          }
        CHECK(std::chrono::steady_clock::now() - start
              < std::chrono::seconds{2});
      }
    }
  }
  GIVEN("versions 1 to 50 of one context submitted in a row without waiting") {
    // Consecutive writes often share a batch: each must see the one before.
    std::vector<std::future<caf::error>> answers;
    for (uint64_t v = 1; v <= 50; ++v)
      answers.push_back(submit(
        *b, write_of(id_of(9), v, v - 1, bytes_of("v" + std::to_string(v)))));
    THEN("each replaces the one before and the last one loads") {
      for (auto& answer : answers)
        CHECK_FALSE(await(answer));
      auto loaded = load_now(*b, id_of(9));
      REQUIRE(loaded);
      REQUIRE(loaded->has_value());
      CHECK((*loaded)->version == 50);
      CHECK((*loaded)->bytes == bytes_of("v50"));
    }
  }
}

SCENARIO("a batch-size callback set while the worker waits counts its next "
         "batch",
         "[backend][sqlite]") {
  temp_dir dir;
  auto b = open_or_fail(dir.file("store.db"));
  // A first write answered: the worker went round and waits for work again
  // (its tick is a second) when a storage sets its metrics' callback.
  REQUIRE_FALSE(write_now(*b, write_of(id_of(2), 1, 0, bytes_of("first"))));
  std::mutex mtx;
  std::vector<size_t> sizes;
  b->on_batch([&](size_t n) {
    std::lock_guard<std::mutex> guard{mtx};
    sizes.push_back(n);
  });
  WHEN("a write goes through the worker") {
    REQUIRE_FALSE(write_now(*b, write_of(id_of(1), 1, 0, bytes_of("x"))));
    THEN("the callback saw its batch") {
      std::lock_guard<std::mutex> guard{mtx};
      REQUIRE(sizes.size() == 1);
      CHECK(sizes[0] == 1);
    }
  }
}

SCENARIO("loads queued between writes do not split their batch, and see the "
         "writes of their context submitted before them",
         "[backend][sqlite]") {
  temp_dir dir;
  auto b = open_or_fail(dir.file("store.db"));
  REQUIRE_FALSE(write_now(*b, write_of(id_of(1), 1, 0, bytes_of("one"))));
  GIVEN("a write, a load of another context, a write and a load of the "
        "first context, queued while the worker is busy") {
    using loaded = caf::expected<std::optional<stored_value>>;
    std::promise<void> queued;
    auto go = queued.get_future().share();
    auto entered = std::make_shared<std::promise<void>>();
    auto in_answer = entered->get_future();
    auto blocker = std::make_shared<std::promise<caf::error>>();
    auto blocker_done = blocker->get_future();
    b->write(write_of(id_of(9), 1, 0, bytes_of("blocker")),
             [blocker, entered, go](const caf::error& err) {
               entered->set_value();
               go.wait();
               blocker->set_value(err);
             });
    REQUIRE(in_answer.wait_for(std::chrono::seconds{5})
            == std::future_status::ready);
    auto first = submit(*b, write_of(id_of(1), 2, 1, bytes_of("two")));
    auto other = std::make_shared<std::promise<loaded>>();
    auto other_done = other->get_future();
    b->load("cart", id_of(1 + 1),
            [other](loaded x) { other->set_value(std::move(x)); });
    auto second = submit(*b, write_of(id_of(3), 1, 0, bytes_of("three")));
    auto again = std::make_shared<std::promise<loaded>>();
    auto again_done = again->get_future();
    b->load("cart", id_of(1),
            [again](loaded x) { again->set_value(std::move(x)); });
    auto batches_before = b->batches();
    queued.set_value();
    REQUIRE_FALSE(await(blocker_done));
    THEN("both writes share one transaction and the load of the first "
         "context sees its write") {
      CHECK_FALSE(await(first));
      CHECK_FALSE(await(second));
      CHECK(b->batches() - batches_before == 1);
      REQUIRE(other_done.wait_for(patience) == std::future_status::ready);
      auto none = other_done.get();
      REQUIRE(none);
      CHECK_FALSE(none->has_value());
      REQUIRE(again_done.wait_for(patience) == std::future_status::ready);
      auto x = again_done.get();
      REQUIRE(x);
      REQUIRE(x->has_value());
      CHECK((*x)->version == 2);
      CHECK((*x)->bytes == bytes_of("two"));
    }
  }
}

SCENARIO("a write that fails on its own fails alone in its batch",
         "[backend][sqlite]") {
  temp_dir dir;
  auto b = open_or_fail(dir.file("store.db"));
  b->limit_value_length_for_test(1000);
  GIVEN("a small write, a value over sqlite's length limit and another small "
        "write, queued while the worker is busy, so that they share a batch") {
    std::promise<void> queued;
    auto go = queued.get_future().share();
    auto entered = std::make_shared<std::promise<void>>();
    auto in_answer = entered->get_future();
    auto blocker = std::make_shared<std::promise<caf::error>>();
    auto blocker_done = blocker->get_future();
    // Its answer runs on the worker: the worker takes its next batch only
    // when everything below is queued.
    b->write(write_of(id_of(1), 1, 0, bytes_of("first")),
             [blocker, entered, go](const caf::error& err) {
               entered->set_value();
               go.wait();
               blocker->set_value(err);
             });
    REQUIRE(in_answer.wait_for(std::chrono::seconds{5})
            == std::future_status::ready);
    auto small1 = submit(*b, write_of(id_of(2), 1, 0, bytes_of("small")));
    auto huge = submit(*b, write_of(id_of(3), 1, 0, std::vector<char>(2000, 'x')));
    auto small2 = submit(*b, write_of(id_of(4), 1, 0, bytes_of("small too")));
    auto batches_before = b->batches();
    queued.set_value();
    REQUIRE_FALSE(await(blocker_done));
    WHEN("the batch commits") {
      auto err_small1 = await(small1);
      auto err_huge = await(huge);
      auto err_small2 = await(small2);
      THEN("only the value over the limit fails; the others are durable") {
        CHECK(b->batches() - batches_before == 1);
        CHECK(to_errc(err_huge) == errc::backend_failure);
        INFO(describe(err_huge));
        CHECK(contains(describe(err_huge), "writing"));
        CHECK_FALSE(err_small1);
        CHECK_FALSE(err_small2);
        auto none = load_now(*b, id_of(3));
        REQUIRE(none);
        CHECK_FALSE(none->has_value());
        for (auto n : {2, 4}) {
          auto loaded = load_now(*b, id_of(static_cast<uint8_t>(n)));
          REQUIRE(loaded);
          REQUIRE(loaded->has_value());
          CHECK((*loaded)->version == 1);
        }
      }
    }
  }
}

SCENARIO("a file is held by one backend at a time", "[backend][sqlite]") {
  temp_dir dir;
  auto path = dir.file("store.db");
  // An existing file, so that the first backend below writes nothing at
  // open: it holds the file from its open on, not from its first write.
  {
    auto creator = open_or_fail(path);
    REQUIRE_FALSE(write_now(*creator, write_of(id_of(1), 1, 0, bytes_of("x"))));
  }
  GIVEN("a backend that opened the file and wrote nothing yet") {
    auto first = open_or_fail(path);
    WHEN("the same process opens it again, by the same or another path") {
      auto second = open_sqlite(path);
      auto by_other_path = open_sqlite(dir.path + "/./store.db");
      THEN("both fail at once with backend_failure, saying it is in use") {
        REQUIRE_FALSE(second);
        CHECK(to_errc(second.error()) == errc::backend_failure);
        CHECK(contains(describe(second.error()), "in use by another storage"));
        REQUIRE_FALSE(by_other_path);
        CHECK(to_errc(by_other_path.error()) == errc::backend_failure);
        CHECK(contains(describe(by_other_path.error()),
                       "in use by another storage"));
      }
    }
    WHEN("another process opens it") {
      auto child = fork();
      REQUIRE(child >= 0);
      if (child == 0) {
        // The child: 0 exactly when its open failed as the contract says.
        auto opened = open_sqlite(path);
        auto refused
          = !opened && to_errc(opened.error()) == errc::backend_failure
            && contains(describe(opened.error()), "in use by another storage");
        _exit(refused ? 0 : 1);
      }
      auto status = wait_child_exit(child, std::chrono::milliseconds{10000});
      THEN("its open fails with backend_failure, saying the file is in use") {
        REQUIRE(status);
        CHECK(WIFEXITED(*status));
        CHECK(WEXITSTATUS(*status) == 0);
      }
    }
    WHEN("the first backend is destroyed") {
      first.reset();
      THEN("the file opens at once, with what the first one wrote") {
        auto again = open_or_fail(path);
        auto loaded = load_now(*again, id_of(1));
        REQUIRE(loaded);
        CHECK(loaded->has_value());
      }
    }
  }
}

SCENARIO("a file that cannot be opened gives a clear error",
         "[backend][sqlite]") {
  temp_dir dir;
  WHEN("its directory does not exist") {
    auto path = dir.file("missing/store.db");
    auto opened = open_sqlite(path);
    THEN("open fails with backend_failure, naming the file and the reason") {
      REQUIRE_FALSE(opened);
      CHECK(to_errc(opened.error()) == errc::backend_failure);
      auto text = describe(opened.error());
      INFO(text);
      CHECK(contains(text, "cannot open sqlite:" + path));
      CHECK(contains(text, "No such file or directory"));
    }
  }
  WHEN("the file is not a database") {
    auto path = dir.file("notes.txt");
    std::string content(2048, 'x');
    {
      std::ofstream out{path, std::ios::binary};
      out << content;
    }
    auto opened = open_sqlite(path);
    THEN("open fails with backend_failure, saying so, and leaves the file "
         "alone") {
      REQUIRE_FALSE(opened);
      CHECK(to_errc(opened.error()) == errc::backend_failure);
      auto text = describe(opened.error());
      INFO(text);
      CHECK(contains(text, "cannot open sqlite:" + path));
      CHECK(contains(text, "not a database"));
      std::ifstream in{path, std::ios::binary};
      std::string after{std::istreambuf_iterator<char>{in}, {}};
      CHECK(after == content);
    }
  }
}

SCENARIO("a write that the disk cannot take fails and keeps the last commit",
         "[backend][sqlite]") {
  temp_dir dir;
  auto path = dir.file("store.db");
  GIVEN("a context at version 1 and a file that cannot grow") {
    auto b = open_or_fail(path);
    REQUIRE_FALSE(write_now(*b, write_of(id_of(1), 1, 0, bytes_of("good"))));
    b->cap_file_size_for_test(); // as a full disk: SQLITE_FULL on growth
    WHEN("a write needs more room than the file has") {
      auto err = write_now(
        *b, write_of(id_of(1), 2, 1, std::vector<char>(256 * 1024, 'y')));
      THEN("it fails with backend_failure and sqlite's reason") {
        CHECK(to_errc(err) == errc::backend_failure);
        INFO(describe(err));
        CHECK(contains(describe(err), "sqlite:" + path));
        CHECK(contains(describe(err), "full"));
      }
      THEN("the last commit still loads, now and after reopening") {
        auto loaded = load_now(*b, id_of(1));
        REQUIRE(loaded);
        REQUIRE(loaded->has_value());
        CHECK((*loaded)->version == 1);
        CHECK((*loaded)->bytes == bytes_of("good"));
        b.reset();
        auto again = open_or_fail(path);
        auto reloaded = load_now(*again, id_of(1));
        REQUIRE(reloaded);
        REQUIRE(reloaded->has_value());
        CHECK((*reloaded)->version == 1);
        AND_THEN("version 2 can still be written there") {
          CHECK_FALSE(
            write_now(*again, write_of(id_of(1), 2, 1, bytes_of("better"))));
        }
      }
    }
  }
}
