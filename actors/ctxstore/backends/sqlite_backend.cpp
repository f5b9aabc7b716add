#include "ctxstore/backends/sqlite_backend.hpp"

#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <system_error>
#include <utility>

#include <boost/uuid/uuid_io.hpp>
#include <sqlite3.h>

#include "ctxstore/error.hpp"

namespace ctxstore {

caf::expected<std::shared_ptr<backend>> open_sqlite(const std::string& path) {
  auto result = backends::sqlite_backend::open(path);
  if (!result)
    return std::move(result.error());
  return std::shared_ptr<backend>{std::move(*result)};
}

} // namespace ctxstore

namespace ctxstore::backends {

namespace {

// Resets a statement and drops its bindings when a scope ends, whatever path
// it takes: a statement left mid-step would keep its read open.
class statement_use {
public:
  explicit statement_use(sqlite3_stmt* stmt) noexcept : stmt_(stmt) {
    // nop
  }

  statement_use(const statement_use&) = delete;
  statement_use& operator=(const statement_use&) = delete;

  ~statement_use() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

private:
  sqlite3_stmt* stmt_;
};

// The bindings point into the caller's strings: SQLITE_STATIC is safe
// because every statement is reset before they go away.
void bind_key(sqlite3_stmt* stmt, const std::string& type,
              const context_id& id) {
  sqlite3_bind_text(stmt, 1, type.data(), static_cast<int>(type.size()),
                    SQLITE_STATIC);
  sqlite3_bind_blob(stmt, 2, id.data, static_cast<int>(id.size()),
                    SQLITE_STATIC);
}

std::string key_text(const std::string& type, const context_id& id) {
  return type + "/" + boost::uuids::to_string(id);
}

// A rowid table with an index on the key: a WITHOUT ROWID table (schema
// version 1) keeps rows in an index b-tree, whose pages hold at most about
// 1 KB of a row; a bigger value spills into overflow pages, and a context of
// 1 KB took 4.7 KB of the file. The columns and the statements below are the
// same for both layouts, so a file of version 1 is read and written as it is.
constexpr const char* schema_sql
  = "CREATE TABLE IF NOT EXISTS contexts("
    "type TEXT NOT NULL, id BLOB NOT NULL, version INTEGER NOT NULL, "
    "value BLOB NOT NULL, PRIMARY KEY(type, id));"
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value);"
    // 2: sqlite_backend::schema_version, the layout above.
    "INSERT OR IGNORE INTO meta(key, value) VALUES('schema_version', 2);";

} // namespace

caf::expected<std::shared_ptr<sqlite_backend>>
sqlite_backend::open(const std::string& path) {
  std::shared_ptr<sqlite_backend> result{new (std::nothrow)
                                           sqlite_backend{path}};
  if (!result)
    return make_error(errc::backend_failure,
                      "cannot open sqlite:" + path + ": out of memory");
  if (auto err = result->init())
    return err; // the destructor closes what init opened
  // The worker starts only once the connection is ready: it never sees a
  // half-opened one.
  try {
    result->start();
  } catch (const std::system_error& ex) {
    return make_error(errc::backend_failure,
                      "cannot open sqlite:" + path
                        + ": no worker thread: " + ex.what());
  }
  return result;
}

sqlite_backend::sqlite_backend(std::string path) : path_(std::move(path)) {
  // nop
}

sqlite_backend::~sqlite_backend() {
  stop(); // the worker uses the connection until then
  for (auto stmt : {select_value_, select_version_, upsert_, erase_, begin_,
                    commit_, rollback_})
    sqlite3_finalize(stmt); // null is a no-op
  // Closing ends the exclusive lock (and checkpoints the WAL into the file).
  sqlite3_close(db_);
}

std::string sqlite_backend::name() const {
  return "sqlite:" + path_;
}

caf::error sqlite_backend::init() {
  auto cannot_open = [this](const char* step) {
    auto code = db_ != nullptr ? sqlite3_errcode(db_) : SQLITE_NOMEM;
    if (code == SQLITE_BUSY || code == SQLITE_LOCKED)
      return make_error(errc::backend_failure,
                        "sqlite:" + path_
                          + " is in use by another storage (another "
                            "connection, in this process or another, holds "
                            "its lock)");
    std::string text = "cannot open sqlite:" + path_ + " (" + step
                       + "): " + sqlite3_errstr(code);
    // For a failed open(2), the reason the system gave is the useful part.
    if (auto sys = db_ != nullptr ? sqlite3_system_errno(db_) : 0; sys != 0)
      text += std::string{" ("} + std::strerror(sys) + ")";
    else if (db_ != nullptr && code != SQLITE_NOMEM
             && std::strcmp(sqlite3_errmsg(db_), sqlite3_errstr(code)) != 0)
      text += std::string{" ("} + sqlite3_errmsg(db_) + ")";
    return make_error(errc::backend_failure, std::move(text));
  };
  // NOMUTEX: the connection is never used by two threads at once (the opening
  // thread hands it to the worker through start()).
  if (sqlite3_open_v2(path_.c_str(), &db_,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                        | SQLITE_OPEN_NOMUTEX,
                      nullptr)
      != SQLITE_OK)
    return cannot_open("open");
  // Fail at once if another connection holds the file: waiting would only
  // hide a second storage on the same file.
  sqlite3_busy_timeout(db_, 0);
  // EXCLUSIVE before the first read: then WAL keeps its index in this
  // process's memory (no -shm file) and every lock taken is kept until close.
  if (sqlite3_exec(db_, "PRAGMA locking_mode=EXCLUSIVE", nullptr, nullptr,
                   nullptr)
      != SQLITE_OK)
    return cannot_open("locking_mode=EXCLUSIVE");
  // The first read of the file: here a locked file or one that is not a
  // database shows.
  {
    sqlite3_stmt* wal = nullptr;
    if (sqlite3_prepare_v2(db_, "PRAGMA journal_mode=WAL", -1, &wal, nullptr)
        != SQLITE_OK)
      return cannot_open("journal_mode=WAL");
    auto rc = sqlite3_step(wal);
    std::string mode;
    if (rc == SQLITE_ROW)
      if (auto text = sqlite3_column_text(wal, 0))
        mode = reinterpret_cast<const char*>(text);
    sqlite3_finalize(wal);
    if (rc != SQLITE_ROW)
      return cannot_open("journal_mode=WAL");
    // SQLite keeps the old mode, without an error, where WAL is impossible.
    if (mode != "wal")
      return make_error(errc::backend_failure,
                        "cannot open sqlite:" + path_
                          + ": the WAL journal is not available (journal "
                            "mode stays "
                          + mode + ")");
  }
  if (sqlite3_exec(db_, "PRAGMA synchronous=FULL", nullptr, nullptr, nullptr)
      != SQLITE_OK)
    return cannot_open("synchronous=FULL");
  // The write lock, taken now and (WAL + EXCLUSIVE) held until close: a
  // second open fails at once instead of at its first write.
  if (sqlite3_exec(db_, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr)
      != SQLITE_OK)
    return cannot_open("BEGIN EXCLUSIVE");
  if (sqlite3_exec(db_, schema_sql, nullptr, nullptr, nullptr) != SQLITE_OK
      || sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
    auto err = cannot_open("creating the schema");
    roll_back();
    return err;
  }
  {
    sqlite3_stmt* version = nullptr;
    if (sqlite3_prepare_v2(db_,
                           "SELECT value FROM meta "
                           "WHERE key = 'schema_version'",
                           -1, &version, nullptr)
        != SQLITE_OK)
      return cannot_open("reading the schema version");
    auto rc = sqlite3_step(version);
    auto found = rc == SQLITE_ROW ? sqlite3_column_int64(version, 0) : 0;
    sqlite3_finalize(version);
    if (rc != SQLITE_ROW)
      return cannot_open("reading the schema version");
    // A file from a newer layout: reading it as this one could lose data.
    if (found != schema_version && found != 1)
      return make_error(errc::backend_failure,
                        "cannot open sqlite:" + path_ + ": its schema version "
                          + std::to_string(found) + " is not "
                          + std::to_string(schema_version)
                          + " (or 1), the ones this build knows");
  }
  if (auto err = prepare(select_value_, "SELECT version, value FROM contexts "
                                        "WHERE type = ?1 AND id = ?2"))
    return err;
  if (auto err = prepare(select_version_, "SELECT version FROM contexts "
                                          "WHERE type = ?1 AND id = ?2"))
    return err;
  if (auto err
      = prepare(upsert_, "INSERT INTO contexts(type, id, version, value) "
                         "VALUES(?1, ?2, ?3, ?4) ON CONFLICT(type, id) DO "
                         "UPDATE SET version = excluded.version, "
                         "value = excluded.value"))
    return err;
  if (auto err
      = prepare(erase_, "DELETE FROM contexts WHERE type = ?1 AND id = ?2"))
    return err;
  if (auto err = prepare(begin_, "BEGIN IMMEDIATE"))
    return err;
  if (auto err = prepare(commit_, "COMMIT"))
    return err;
  return prepare(rollback_, "ROLLBACK");
}

caf::error sqlite_backend::prepare(sqlite3_stmt*& stmt, const char* sql) {
  if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt,
                         nullptr)
      != SQLITE_OK)
    return make_error(errc::backend_failure, "cannot open sqlite:" + path_
                                               + ": preparing \"" + sql
                                               + "\": " + sqlite3_errmsg(db_));
  return {};
}

caf::error sqlite_backend::failure(const std::string& what) const {
  return make_error(errc::backend_failure,
                    name() + ": " + what + ": " + sqlite3_errmsg(db_));
}

caf::expected<std::optional<stored_value>>
sqlite_backend::read(const std::string& type, const context_id& id) {
  statement_use use{select_value_};
  bind_key(select_value_, type, id);
  switch (sqlite3_step(select_value_)) {
  case SQLITE_DONE:
    return std::optional<stored_value>{};
  case SQLITE_ROW: {
    stored_value result;
    result.version
      = static_cast<uint64_t>(sqlite3_column_int64(select_value_, 0));
    // A zero-length blob comes back as a null pointer.
    auto data = static_cast<const char*>(sqlite3_column_blob(select_value_, 1));
    auto size = sqlite3_column_bytes(select_value_, 1);
    if (data != nullptr)
      result.bytes.assign(data, data + size);
    return std::optional<stored_value>{std::move(result)};
  }
  default:
    return failure("reading " + key_text(type, id));
  }
}

caf::expected<uint64_t> sqlite_backend::held_version(const std::string& type,
                                                     const context_id& id) {
  statement_use use{select_version_};
  bind_key(select_version_, type, id);
  switch (sqlite3_step(select_version_)) {
  case SQLITE_DONE:
    return uint64_t{0};
  case SQLITE_ROW:
    return static_cast<uint64_t>(sqlite3_column_int64(select_version_, 0));
  default:
    return failure("reading the version of " + key_text(type, id));
  }
}

caf::error sqlite_backend::apply(const backend_write& w) {
  auto stmt = w.erase ? erase_ : upsert_;
  statement_use use{stmt};
  bind_key(stmt, w.type, w.id);
  if (!w.erase) {
    sqlite3_bind_int64(stmt, 3, static_cast<sqlite3_int64>(w.version));
    // An empty vector may have no data pointer, and a null pointer would
    // bind NULL, which the NOT NULL column refuses.
    if (w.bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max()))
      return make_error(errc::backend_failure,
                        name() + ": the value of " + key_text(w.type, w.id)
                          + " is too large for sqlite ("
                          + std::to_string(w.bytes.size()) + " bytes)");
    if (w.bytes.empty())
      sqlite3_bind_zeroblob(stmt, 4, 0);
    else
      sqlite3_bind_blob(stmt, 4, w.bytes.data(),
                        static_cast<int>(w.bytes.size()), SQLITE_STATIC);
  }
  if (sqlite3_step(stmt) != SQLITE_DONE)
    return failure((w.erase ? "erasing " : "writing ")
                   + key_text(w.type, w.id));
  return {};
}

void sqlite_backend::roll_back() {
  // After some errors (SQLITE_FULL, SQLITE_IOERR, ...) sqlite has already
  // rolled the transaction back itself.
  if (sqlite3_get_autocommit(db_) != 0)
    return;
  if (rollback_ != nullptr) {
    sqlite3_step(rollback_);
    sqlite3_reset(rollback_);
  } else {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
}

void sqlite_backend::write_batch(std::vector<backend_write>& batch,
                                 std::vector<caf::error>& results) {
  ++batches_;
  if (cap_requested_.exchange(false)) {
    // max_page_count never goes below the file's size: 1 means "as now".
    sqlite3_exec(db_, "PRAGMA max_page_count=1", nullptr, nullptr, nullptr);
  }
  if (auto limit = length_limit_requested_.exchange(0); limit > 0)
    sqlite3_limit(db_, SQLITE_LIMIT_LENGTH, limit);
  // Every write that is not a conflict fails with `err`: nothing of the
  // batch committed.
  auto fail_all = [&](const caf::error& err) {
    for (size_t i = 0; i < batch.size(); ++i)
      if (to_errc(results[i]) != errc::conflict)
        results[i] = err;
  };
  // A ROLLBACK that failed before would make every later BEGIN fail.
  roll_back();
  {
    statement_use use{begin_};
    if (sqlite3_step(begin_) != SQLITE_DONE) {
      fail_all(failure("beginning a transaction"));
      return;
    }
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    auto& w = batch[i];
    auto held = held_version(w.type, w.id);
    if (!held) {
      auto err = std::move(held.error());
      roll_back();
      fail_all(err);
      return;
    }
    if (w.replaces == replaces_any) { // the next version, whatever it is
      w.replaces = *held;
      w.version = *held + 1;
    }
    // Fencing: the backend must hold what the writer believes it replaces.
    if (*held != w.replaces) {
      results[i] = make_error(errc::conflict,
                              name() + " holds version " + std::to_string(*held)
                                + " of " + key_text(w.type, w.id) + ", not "
                                + std::to_string(w.replaces)
                                + " as the write of version "
                                + std::to_string(w.version) + " expected");
      continue;
    }
    if (auto err = apply(w)) {
      // Sqlite undid this statement only (a value over its length limit,
      // say) and the transaction goes on: the others of the batch do not
      // pay for one write's failure.
      if (sqlite3_get_autocommit(db_) == 0) {
        results[i] = std::move(err);
        continue;
      }
      fail_all(err); // the whole transaction is gone (SQLITE_FULL, IOERR...)
      return;
    }
  }
  // Only a COMMIT that returned SQLITE_OK is durable (synchronous=FULL: the
  // WAL was synced): nothing is acknowledged before it.
  caf::error err;
  {
    statement_use use{commit_};
    if (sqlite3_step(commit_) != SQLITE_DONE)
      err = failure("committing " + std::to_string(batch.size()) + " writes");
  }
  if (err) {
    roll_back();
    fail_all(err);
  }
}

} // namespace ctxstore::backends
