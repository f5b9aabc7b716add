// The durable backends (storage_options::backend) in the same run as their
// own C API used the obvious way, without ctxstore: a SQLite connection with
// the backend's pragmas and one transaction per upsert, and hiredis with one
// SET per op against the same redis-server. The ratios of the two are the
// targets of the durable rows (report.cpp).

#include <malloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <caf/all.hpp>
#include <hiredis/hiredis.h>
#include <sqlite3.h>

#include "../redis_server.hpp"
#include "ctxstore/backend.hpp"
#include "ctxstore/storage_options.hpp"
#include "driver.hpp"
#include "scenarios.hpp"

namespace bench {

namespace {

using ctxstore::context_id;

// "ext4 (/dev/vda on /)": the mount that holds `path`, from /proc/mounts
// (the longest mount point that is a prefix of it). On tmpfs an fsync costs
// nothing, which would make every durable row meaningless.
std::string filesystem_of(const std::string& path) {
  std::error_code ec;
  auto full = std::filesystem::canonical(path, ec).string();
  if (ec)
    full = path;
  std::ifstream in{"/proc/mounts"};
  std::string device, point, type, best_device, best_point, best_type;
  std::string rest;
  while (in >> device >> point >> type && std::getline(in, rest)) {
    bool inside = full.compare(0, point.size(), point) == 0
                  && (full.size() == point.size() || point == "/"
                      || full[point.size()] == '/');
    if (inside && point.size() >= best_point.size()) {
      best_device = device;
      best_point = point;
      best_type = type;
    }
  }
  if (best_type.empty())
    return "unknown file system";
  return best_type + " (" + best_device + " on " + best_point + ")";
}

std::string fmt_mib(int64_t bytes) {
  std::ostringstream out;
  out.precision(1);
  out << std::fixed << static_cast<double>(bytes) / (1024.0 * 1024.0)
      << " MiB";
  return out.str();
}

bool on_tmpfs(const std::string& path) {
  return filesystem_of(path).rfind("tmpfs", 0) == 0;
}

// A fresh directory for the SQLite files: under --durable-dir, else under
// /tmp unless that is a tmpfs, else under /var/tmp.
std::string make_durable_dir(const options& opts) {
  auto parent = opts.durable_dir;
  if (parent.empty())
    parent = on_tmpfs("/tmp") ? "/var/tmp" : "/tmp";
  auto tmpl = parent + "/ctxstore-bench-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr)
    throw std::runtime_error("cannot create a directory under " + parent);
  return buf.data();
}

// The value as the backends get it: the codec's wire form of make_ctx().
std::vector<char> wire_bytes(caf::actor_system& sys) {
  std::vector<char> buf;
  caf::binary_serializer sink{sys, buf};
  auto value = make_ctx();
  if (auto err = sink(value))
    throw std::runtime_error("cannot serialize the bench value");
  return buf;
}

// -- SQLite without ctxstore --------------------------------------------------

/// One connection with the backend's pragmas (locking_mode=EXCLUSIVE,
/// journal_mode=WAL, synchronous=FULL) and its table; each upsert is its own
/// transaction: BEGIN IMMEDIATE, the upsert, COMMIT (one fsync).
/// SQLite has one writer per file; the obvious way for many threads is to
/// share this one connection, one transaction at a time under a mutex
/// (what SQLITE_OPEN_FULLMUTEX would do). A connection per thread would need
/// locking_mode=NORMAL and a busy timeout whose sleeps, not the disk, would
/// then set the rate: a slower baseline than this one.
class bare_sqlite {
public:
  explicit bare_sqlite(const std::string& path) {
    if (sqlite3_open_v2(path.c_str(), &db_,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                          | SQLITE_OPEN_NOMUTEX,
                        nullptr)
        != SQLITE_OK)
      fail("open");
    exec("PRAGMA locking_mode=EXCLUSIVE");
    exec("PRAGMA journal_mode=WAL");
    exec("PRAGMA synchronous=FULL");
    exec("CREATE TABLE IF NOT EXISTS contexts(type TEXT NOT NULL, id BLOB NOT "
         "NULL, version INTEGER NOT NULL, value BLOB NOT NULL, PRIMARY "
         "KEY(type, id))");
    prepare(begin_, "BEGIN IMMEDIATE");
    prepare(upsert_, "INSERT INTO contexts(type, id, version, value) "
                     "VALUES('session', ?1, ?2, ?3) ON CONFLICT(type, id) "
                     "DO UPDATE SET version = excluded.version, "
                     "value = excluded.value");
    prepare(commit_, "COMMIT");
    prepare(select_, "SELECT version, value FROM contexts WHERE "
                     "type = 'session' AND id = ?1");
  }

  bare_sqlite(const bare_sqlite&) = delete;
  bare_sqlite& operator=(const bare_sqlite&) = delete;

  ~bare_sqlite() {
    for (auto stmt : {begin_, upsert_, commit_, select_})
      sqlite3_finalize(stmt);
    sqlite3_close(db_);
  }

  /// One transaction; false (after printing why) when it failed.
  bool upsert(const context_id& id, uint64_t version,
              const std::vector<char>& value) {
    std::lock_guard<std::mutex> guard{mtx_};
    bool ok = step(begin_) && step_upsert(id, version, value) && step(commit_);
    if (!ok)
      report_and_roll_back();
    return ok;
  }

  /// One upsert in the transaction that is open, beginning one first if
  /// none is and committing it after its `per_commit`th upsert: the group
  /// commit of a writer that had `per_commit` writes waiting every time,
  /// without anything else (the ceiling of the durable rows' group commit).
  bool upsert_grouped(const context_id& id, uint64_t version,
                      const std::vector<char>& value, int per_commit) {
    std::lock_guard<std::mutex> guard{mtx_};
    bool ok = (sqlite3_get_autocommit(db_) == 0 || step(begin_))
              && step_upsert(id, version, value);
    if (ok && ++in_txn_ >= per_commit) {
      in_txn_ = 0;
      ok = step(commit_);
    }
    if (!ok) {
      report_and_roll_back();
      in_txn_ = 0;
    }
    return ok;
  }

  /// Commits what upsert_grouped left open.
  void commit_open() {
    std::lock_guard<std::mutex> guard{mtx_};
    if (sqlite3_get_autocommit(db_) == 0)
      step(commit_);
    in_txn_ = 0;
  }

  /// One read of `id`'s row, its value copied out; false (after printing
  /// why) when there is none.
  bool read(const context_id& id) {
    std::lock_guard<std::mutex> guard{mtx_};
    sqlite3_bind_blob(select_, 1, id.data, static_cast<int>(id.size()),
                      SQLITE_STATIC);
    bool ok = sqlite3_step(select_) == SQLITE_ROW;
    if (ok) {
      auto bytes = static_cast<const char*>(sqlite3_column_blob(select_, 1));
      auto size = static_cast<size_t>(sqlite3_column_bytes(select_, 1));
      read_buf_.assign(bytes, bytes + size);
    } else {
      std::cout << "error: bare sqlite: no row to read" << std::endl;
    }
    sqlite3_reset(select_);
    return ok;
  }

private:
  [[noreturn]] void fail(const std::string& what) {
    throw std::runtime_error("bare sqlite: " + what + ": "
                             + (db_ ? sqlite3_errmsg(db_) : "out of memory"));
  }

  void exec(const char* sql) {
    if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK)
      fail(sql);
  }

  void prepare(sqlite3_stmt*& stmt, const char* sql) {
    if (sqlite3_prepare_v2(db_, sql, -1, &stmt, nullptr) != SQLITE_OK)
      fail(sql);
  }

  /// The upsert of `id` at `version` (the caller holds mtx_).
  bool step_upsert(const context_id& id, uint64_t version,
                   const std::vector<char>& value) {
    sqlite3_bind_blob(upsert_, 1, id.data, static_cast<int>(id.size()),
                      SQLITE_STATIC);
    sqlite3_bind_int64(upsert_, 2, static_cast<sqlite3_int64>(version));
    sqlite3_bind_blob(upsert_, 3, value.data(), static_cast<int>(value.size()),
                      SQLITE_STATIC);
    return step(upsert_);
  }

  /// Says why the last statement failed and ends the open transaction.
  void report_and_roll_back() {
    std::cout << "error: bare sqlite: " << sqlite3_errmsg(db_) << std::endl;
    if (sqlite3_get_autocommit(db_) == 0)
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }

  static bool step(sqlite3_stmt* stmt) {
    auto rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    return rc == SQLITE_DONE;
  }

  std::mutex mtx_;
  sqlite3* db_ = nullptr;
  sqlite3_stmt* begin_ = nullptr;
  sqlite3_stmt* upsert_ = nullptr;
  sqlite3_stmt* commit_ = nullptr;
  sqlite3_stmt* select_ = nullptr;
  std::vector<char> read_buf_;
  int in_txn_ = 0; // upserts in the open transaction (upsert_grouped)
};

// -- Redis without ctxstore ---------------------------------------------------

/// One hiredis connection per client, one blocking SET of the value per op.
class bare_redis {
public:
  bare_redis(uint16_t port, int clients) {
    for (int i = 0; i < clients; ++i) {
      conns_.emplace_back(redisConnect("127.0.0.1", port));
      if (!conns_.back() || conns_.back()->err != 0)
        throw std::runtime_error("bare redis: cannot connect");
    }
  }

  /// SET on client `index`'s connection; false (after printing why) when
  /// the server did not answer OK.
  bool set(int index, const std::string& key, const std::vector<char>& value) {
    auto c = conns_[static_cast<size_t>(index)].get();
    redis_server::reply r{static_cast<redisReply*>(redisCommand(
      c, "SET %b %b", key.data(), key.size(), value.data(), value.size()))};
    if (r && r->type == REDIS_REPLY_STATUS)
      return true;
    std::cout << "error: bare redis: "
              << (r && r->type == REDIS_REPLY_ERROR ? r->str : c->errstr)
              << std::endl;
    return false;
  }

  /// GET on client `index`'s connection; false (after printing why) when
  /// the server did not answer a value.
  bool get(int index, const std::string& key) {
    auto c = conns_[static_cast<size_t>(index)].get();
    redis_server::reply r{static_cast<redisReply*>(
      redisCommand(c, "GET %b", key.data(), key.size()))};
    if (r && r->type == REDIS_REPLY_STRING)
      return true;
    std::cout << "error: bare redis: GET: "
              << (r && r->type == REDIS_REPLY_ERROR ? r->str : c->errstr)
              << std::endl;
    return false;
  }

private:
  std::vector<redis_server::connection> conns_;
};

// -- the rows -----------------------------------------------------------------

/// The bare rows of one backend: 1 client on one key, 64 over 1,000 keys,
/// and reads of the 1,000 keys by 1 client.
struct bare_rows {
  std::string key_1; // "bare.sqlite.upsert.1"
  std::string name_1;
  std::string key_64;
  std::string name_64;
  blocking_op op; // client `index`, op `seq`
  std::string read_key; // "bare.sqlite.read.1"
  std::string read_name;
  blocking_op read; // client `index`, op `seq`: reads key `seq % 1000`
  std::string grouped_key = {}; // "bare.sqlite.upsert.grouped32"
  std::string grouped_name = {};
  std::function<rep_sample()> grouped = {}; // a repetition; none: no row
  std::string new_key = {}; // "bare.sqlite.upsert.new.1": the store-new row's
  std::string new_name = {};
  blocking_op store_new = {}; // one write of a key never written before
};

/// Stores `n` contexts with random ids (from `seed`), 64 at a time: one
/// group commit per batch, not one fsync per context.
ids_ptr fill_durable(caf::actor_system& sys, const ctxstore::storage& st,
                     size_t n, uint64_t seed) {
  auto ids = std::make_shared<std::vector<context_id>>();
  std::mt19937_64 rng{seed};
  for (size_t i = 0; i < n; ++i)
    ids->push_back(random_id(rng));
  auto next = std::make_shared<std::atomic<size_t>>(0);
  auto value = make_ctx();
  auto store = [ids, next, value](async_ctx& c, uint64_t, done_fn done) {
    c.client->store<session_ctx>((*ids)[next->fetch_add(1)], value)
      .then([done](uint64_t) { done(true); },
            [done](caf::error& err) {
              std::cout << "error: " << ctxstore::describe(err) << std::endl;
              done(false);
            });
  };
  limits lim{n, std::chrono::minutes(5), false};
  auto s = run_async(sys, st, 1, 64, lim, store);
  if (s.errors > 0 || s.ops != n)
    throw std::runtime_error("filling the durable storage failed");
  return ids;
}

/// Ids never stored before, for every op of every repetition. (The
/// driver's per-client generators start again at each repetition: with
/// them, the second repetition on would store the first one's contexts
/// again, in memory by then.)
key_fn fresh_keys(uint64_t seed) {
  struct generator {
    std::mutex mtx;
    std::mt19937_64 rng;
  };
  auto gen = std::make_shared<generator>();
  gen->rng.seed(seed);
  return [gen](int, uint64_t) {
    std::lock_guard<std::mutex> guard{gen->mtx};
    return random_id(gen->rng);
  };
}

void durable_backend(const options& opts, caf::actor_system& sys,
                     const std::string& name,
                     std::shared_ptr<ctxstore::backend> backend,
                     const bare_rows& bare) {
  ctxstore::storage_options sopts;
  sopts.backend = std::move(backend);
  auto st = ctxstore::spawn_storage(sys, sopts);
  auto ids = fill_durable(sys, st, 1000, 21);
  auto prefix = "durable." + name;
  auto label = "durable " + name + ": ";
  auto lim = limits_of(opts);
  ctxstore::storage none;
  auto one = one_key(ids->front());
  auto spread = keys_round_robin(ids);
  // Alternating: the disk (or server) is shared with whoever else runs on
  // this machine; both rows of a ratio see it in the same moments.
  measure_alternating(
    opts, prefix + ".cycle.1",
    label + "session cycle (update), blocking, 1 thread, 1 key",
    [&] { return run_blocking(sys, st, 1, lim, blocking_cycle(one)); },
    bare.key_1, bare.name_1,
    [&] { return run_blocking(sys, none, 1, lim, bare.op); });
  measure_alternating(
    opts, prefix + ".cycle.64x1000",
    label + "session cycle (update), async, 64 actors over 1,000 keys",
    [&] { return run_async(sys, st, 64, 1, lim, async_cycle(spread)); },
    bare.key_64, bare.name_64,
    [&] { return run_blocking(sys, none, 64, lim, bare.op); });
  if (bare.grouped)
    measure(opts, bare.grouped_key, bare.grouped_name, bare.grouped);
  auto source = copies_of(make_ctx());
  // One generator per row, not per repetition: every repetition stores ids
  // that no repetition stored before.
  auto new_ids = fresh_keys(22);
  // Beside the bare write of new keys: a new row costs the backend more
  // than replacing one (SQLite: a B-tree insert, more pages in the WAL).
  measure_alternating(
    opts, prefix + ".store.new", label + "store new contexts, blocking, 1 thread",
    [&] {
      return run_blocking(sys, st, 1, lim, blocking_store(new_ids, source));
    },
    bare.new_key, bare.new_name,
    [&] { return run_blocking(sys, none, 1, lim, bare.store_new); });
  auto new_ids_64 = fresh_keys(23);
  measure(opts, prefix + ".store.new.64",
          label + "store new contexts, async, 64 in flight", [&] {
            return run_async(sys, st, 1, 64, lim,
                             async_store(new_ids_64, source));
          });
  stop_storage(sys, st);
  // Reads of contexts that are not in memory: with max_resident = 1, each
  // snapshot of the next of the 1,000 contexts activates it (a read of the
  // backend and an owner) and passivates another.
  sopts.max_resident = 1;
  auto cold = ctxstore::spawn_storage(sys, sopts);
  auto next = std::make_shared<std::atomic<size_t>>(0);
  measure_alternating(
    opts, prefix + ".snapshot.passivated",
    label + "snapshot of a passivated context, blocking, 1 thread, "
              "max_resident = 1",
    [&] {
      auto snap = [&](blocking_ctx& c, uint64_t) {
        auto& id = (*ids)[next->fetch_add(1) % ids->size()];
        try {
          c.client->snapshot<session_ctx>(id);
          return true;
        } catch (const std::exception& e) {
          std::cout << "error: " << e.what() << std::endl;
          return false;
        }
      };
      return run_blocking(sys, cold, 1, lim, snap);
    },
    bare.read_key, bare.read_name,
    [&] { return run_blocking(sys, none, 1, lim, bare.read); });
  stop_storage(sys, cold);
  sopts.backend.reset(); // closes the file, gives the prefix back
}

bool on_path(const std::string& program) {
  return std::system(("command -v " + program + " >/dev/null 2>&1").c_str())
         == 0;
}

std::string redis_version(const redis_server& server) {
  auto r = server.command({"INFO", "server"});
  if (!r || r->type != REDIS_REPLY_STRING)
    return "?";
  std::string info{r->str, r->len};
  auto pos = info.find("redis_version:");
  if (pos == std::string::npos)
    return "?";
  pos += 14;
  return info.substr(pos, info.find_first_of("\r\n", pos) - pos);
}

void sqlite_rows(const options& opts, caf::actor_system& sys,
                 const std::vector<char>& value,
                 const std::vector<context_id>& keys) {
  auto dir = make_durable_dir(opts);
  std::cout << "durable: sqlite files in " << dir << ", " << filesystem_of(dir)
            << "; SQLite " << sqlite3_libversion() << ", WAL, synchronous=FULL"
            << std::endl;
  try {
    auto backend = ctxstore::open_sqlite(dir + "/durable.db");
    if (!backend)
      throw std::runtime_error(ctxstore::describe(backend.error()));
    bare_sqlite db{dir + "/bare.db"};
    for (size_t i = 0; i < keys.size(); ++i) // replaced, as the cycles do
      db.upsert(keys[i], 1, value);
    bare_rows bare{"bare.sqlite.upsert.1",
                   "bare SQLite: one transaction per upsert, 1 thread, 1 key",
                   "bare.sqlite.upsert.64",
                   "bare SQLite: one transaction per upsert, 64 threads on "
                   "one connection, 1,000 keys",
                   [&](blocking_ctx& c, uint64_t seq) {
                     auto k = (static_cast<size_t>(c.index) * 7919 + seq)
                              % keys.size();
                     return db.upsert(keys[k], seq + 2, value);
                   },
                   "bare.sqlite.read.1",
                   "bare SQLite: one SELECT of a row, 1 thread, 1,000 keys",
                   [&](blocking_ctx&, uint64_t seq) {
                     return db.read(keys[seq % keys.size()]);
                   }};
    auto bare_new_ids = fresh_keys(24);
    bare.new_key = "bare.sqlite.upsert.new.1";
    bare.new_name = "bare SQLite: one transaction per upsert, 1 thread, a new "
                    "key each";
    bare.store_new = [&](blocking_ctx& c, uint64_t seq) {
      return db.upsert(bare_new_ids(c.index, seq), 1, value);
    };
    bare.grouped_key = "bare.sqlite.upsert.grouped32";
    bare.grouped_name = "bare SQLite: 32 upserts per transaction, 1 thread, "
                        "1,000 keys (the group commit's ceiling)";
    bare.grouped = [&] {
      auto limits = limits_of(opts);
      auto rep = run_blocking(
        sys, ctxstore::storage{}, 1, limits,
        [&](blocking_ctx&, uint64_t seq) {
          return db.upsert_grouped(keys[(seq * 7919) % keys.size()], seq + 2,
                                   value, 32);
        });
      db.commit_open();
      return without_fairness(std::move(rep));
    };
    durable_backend(opts, sys, "sqlite", std::move(*backend), bare);
  } catch (const std::exception& e) {
    std::cout << "error: durable sqlite rows: " << e.what() << std::endl;
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

void redis_rows(const options& opts, caf::actor_system& sys,
                const std::vector<char>& value) {
  if (!on_path("redis-server")) {
    std::cout << "note: durable redis rows skipped: no redis-server"
              << std::endl;
    return;
  }
  std::unique_ptr<redis_server> server;
  try {
    server = std::make_unique<redis_server>();
  } catch (const std::exception& e) {
    std::cout << "note: durable redis rows skipped: " << e.what() << std::endl;
    return;
  }
  std::cout << "durable: redis-server " << redis_version(*server)
            << " on 127.0.0.1:" << server->port()
            << ", appendonly yes, appendfsync always, AOF in " << server->dir()
            << ", " << filesystem_of(server->dir()) << std::endl;
  try {
    auto backend = ctxstore::open_redis("127.0.0.1", server->port(), "bench");
    if (!backend)
      throw std::runtime_error(ctxstore::describe(backend.error()));
    bare_redis conns{server->port(), 64};
    std::vector<std::string> keys;
    for (int i = 0; i < 1000; ++i) {
      keys.push_back("bare:" + std::to_string(i));
      conns.set(0, keys.back(), value); // each there to be read
    }
    bare_rows bare{"bare.redis.set.1",
                   "bare Redis: one SET per op (hiredis), 1 connection, 1 key",
                   "bare.redis.set.64",
                   "bare Redis: one SET per op (hiredis), 64 threads and "
                   "connections, 1,000 keys",
                   [&](blocking_ctx& c, uint64_t seq) {
                     auto k = (static_cast<size_t>(c.index) * 7919 + seq)
                              % keys.size();
                     return conns.set(c.index, keys[k], value);
                   },
                   "bare.redis.get.1",
                   "bare Redis: one GET per op (hiredis), 1 connection, "
                   "1,000 keys",
                   [&](blocking_ctx& c, uint64_t seq) {
                     return conns.get(c.index, keys[seq % keys.size()]);
                   }};
    auto bare_new = std::make_shared<std::atomic<uint64_t>>(0);
    bare.new_key = "bare.redis.set.new.1";
    bare.new_name = "bare Redis: one SET per op (hiredis), 1 connection, a "
                    "new key each";
    bare.store_new = [&conns, &value, bare_new](blocking_ctx& c, uint64_t) {
      return conns.set(c.index, "bare:new:" + std::to_string(++*bare_new),
                       value);
    };
    durable_backend(opts, sys, "redis", std::move(*backend), bare);
  } catch (const std::exception& e) {
    std::cout << "error: durable redis rows: " << e.what() << std::endl;
  }
}

/// The `k`-th id of the resident group, made from `k` (splitmix64) rather
/// than kept: a million ids would put 16 MB of the bench's own into the
/// memory it measures.
context_id resident_id(uint64_t k) {
  auto mix = [](uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
  };
  context_id id{};
  auto hi = mix(2 * k);
  auto lo = mix(2 * k + 1);
  for (int i = 0; i < 8; ++i) {
    id.data[i] = static_cast<uint8_t>(hi >> (8 * i));
    id.data[8 + i] = static_cast<uint8_t>(lo >> (8 * i));
  }
  return id;
}

/// Writes the contexts `resident_id(0 .. n-1)` with `value` at version 1
/// straight through `b`'s write API, 20,000 in flight at a time (one group
/// commit for each).
void fill_backend(ctxstore::backend& b, uint64_t n,
                  const std::vector<char>& value) {
  constexpr uint64_t chunk = 20000;
  for (uint64_t first = 0; first < n; first += chunk) {
    auto last = std::min(n, first + chunk);
    std::mutex mtx;
    std::condition_variable cv;
    uint64_t pending = last - first;
    uint64_t failed = 0;
    for (auto i = first; i < last; ++i) {
      ctxstore::backend_write w;
      w.type = "session";
      w.id = resident_id(i);
      w.version = 1;
      w.bytes = value;
      b.write(std::move(w), [&](const caf::error& err) {
        std::lock_guard<std::mutex> guard{mtx};
        failed += err ? 1 : 0;
        if (--pending == 0)
          cv.notify_one();
      });
    }
    std::unique_lock<std::mutex> guard{mtx};
    cv.wait(guard, [&] { return pending == 0; });
    if (failed > 0)
      throw std::runtime_error("filling the backend failed");
  }
}

} // namespace

void run_durable_resident(const options& opts, caf::actor_system& sys) {
  const auto n = opts.scale;
  constexpr size_t max_resident = 10000;
  auto value = wire_bytes(sys);
  auto dir = make_durable_dir(opts);
  std::cout << "resident: " << n << " contexts of " << value.size()
            << " B in " << dir << ", " << filesystem_of(dir) << std::endl;
  try {
    auto backend = ctxstore::open_sqlite(dir + "/resident.db");
    if (!backend)
      throw std::runtime_error(ctxstore::describe(backend.error()));
    // What one value takes in memory, decoded: the bound's "value" (its wire
    // size is a fifth of it).
    malloc_trim(0);
    auto no_copies = rss_bytes();
    auto in_memory = static_cast<int64_t>(value.size());
    {
      std::vector<session_ctx> copies(max_resident, make_ctx());
      in_memory = (rss_bytes() - no_copies) / static_cast<int64_t>(max_resident);
    }
    auto fill_start = bench_clock::now();
    fill_backend(**backend, n, value);
    std::chrono::duration<double> fill_time = bench_clock::now() - fill_start;
    malloc_trim(0);
    auto before = rss_bytes();
    ctxstore::storage_options sopts;
    sopts.backend = *backend;
    sopts.max_resident = max_resident;
    auto st = ctxstore::spawn_storage(sys, sopts);
    // Every context read once, in order: each read activates one and, beyond
    // max_resident, passivates another.
    std::atomic<size_t> next{0};
    std::atomic<int64_t> peak{before};
    auto snap = [&](blocking_ctx& c, uint64_t) {
      auto k = next.fetch_add(1);
      if (k % 8192 == 0) {
        auto now = rss_bytes();
        auto seen = peak.load();
        while (now > seen && !peak.compare_exchange_weak(seen, now)) {
          // retry
        }
      }
      try {
        c.client->snapshot<session_ctx>(resident_id(k));
        return true;
      } catch (const std::exception& e) {
        std::cout << "error: " << e.what() << std::endl;
        return false;
      }
    };
    limits lim{n, std::chrono::minutes(10), true};
    auto s = run_blocking(sys, st, 2, lim, snap);
    auto after = rss_bytes();
    malloc_trim(0); // what the allocator kept but nothing uses
    auto trimmed = rss_bytes();
    auto resident = ctxstore::blocking_client{sys, st}.stats().contexts;
    stop_storage(sys, st);
    std::vector<rep_sample> one{without_fairness(s)};
    auto r = summarize("durable.sqlite.resident.snapshot",
                       "resident: snapshot of each of " + std::to_string(n)
                         + " passivated contexts once, blocking, 2 threads, "
                           "max_resident = 10,000",
                       one);
    if (s.ops != n)
      r.errors += 1;
    add_result(opts, r);
    constexpr double mib = 1024.0 * 1024.0;
    result mem;
    mem.key = "durable.sqlite.resident.rss";
    mem.name = "resident: peak resident memory of the process";
    mem.value = static_cast<double>(std::max(peak.load(), after)) / mib;
    mem.unit = "MiB";
    mem.reps = 1;
    mem.note = fmt_mib(before) + " before the storage (CAF, SQLite), "
               + fmt_mib(after) + " at the end, " + fmt_mib(trimmed)
               + " after malloc_trim, "
               + std::to_string(resident) + " contexts resident at the end; "
               + "a value takes " + std::to_string(in_memory)
               + " B in memory, " + std::to_string(value.size())
               + " B on the wire; "
               + "filled through the backend in "
               + std::to_string(static_cast<int>(fill_time.count())) + " s";
    add_result(opts, mem);
    result bound;
    bound.key = "durable.sqlite.resident.bound";
    bound.name = "resident: the bound, 10,000 x (value + 2 KiB) + 64 MiB, "
                 "the value as it takes memory";
    auto bound_of = [&](int64_t value_bytes) {
      return (static_cast<double>(max_resident)
                * static_cast<double>(value_bytes + 2048)
              + 64 * mib)
             / mib;
    };
    bound.value = bound_of(in_memory);
    bound.unit = "MiB";
    bound.reps = 1;
    std::ostringstream wire;
    wire.precision(1);
    wire << std::fixed << bound_of(static_cast<int64_t>(value.size()));
    bound.note = "with the value's wire size instead: " + wire.str() + " MiB";
    add_result(opts, bound);
  } catch (const std::exception& e) {
    std::cout << "error: resident rows: " << e.what() << std::endl;
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

void run_durable(const options& opts, caf::actor_system& sys) {
  auto value = wire_bytes(sys);
  std::vector<context_id> keys;
  std::mt19937_64 rng{22};
  for (int i = 0; i < 1000; ++i)
    keys.push_back(random_id(rng));
  sqlite_rows(opts, sys, value, keys);
  redis_rows(opts, sys, value);
}

} // namespace bench
