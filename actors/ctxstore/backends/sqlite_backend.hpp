#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "ctxstore/backends/batching_backend.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace ctxstore::backends {

/// A backend in one SQLite file (see `open_sqlite`): WAL journal,
/// `synchronous=FULL`, and `locking_mode=EXCLUSIVE` with the write lock taken
/// at open, so the file stays locked against every other connection, in this
/// process or another, until this object is destroyed.
///
/// Its one connection is used by the constructor, then by the worker thread
/// only.
class sqlite_backend final : public batching_backend {
public:
  /// The layout this build makes (row `schema_version` of `meta`); it reads
  /// and writes files of version 1 too (see sqlite_backend.cpp).
  static constexpr int64_t schema_version = 2;

  /// Opens (or creates) `path`; `errc::backend_failure` if it cannot, or if
  /// another connection holds the file.
  static caf::expected<std::shared_ptr<sqlite_backend>>
  open(const std::string& path);

  ~sqlite_backend() override;

  std::string name() const override;

  /// How many write transactions committed or failed so far (one per batch):
  /// lets the specifications see group commit happen.
  uint64_t batches() const noexcept {
    return batches_.load();
  }

  /// Test hook only: caps the file at its current size (`PRAGMA
  /// max_page_count`) before the next batch, so writes that need new pages
  /// fail with SQLITE_FULL as on a full disk. Not part of any installed API.
  void cap_file_size_for_test() noexcept {
    cap_requested_ = true;
  }

  /// Test hook only: from the next batch on, values longer than `bytes`
  /// fail (sqlite's SQLITE_LIMIT_LENGTH), as one over sqlite's own limit
  /// (1,000,000,000 bytes) would. Not part of any installed API.
  void limit_value_length_for_test(int bytes) noexcept {
    length_limit_requested_ = bytes;
  }

protected:
  caf::expected<std::optional<stored_value>>
  read(const std::string& type, const context_id& id) override;

  void write_batch(std::vector<backend_write>& batch,
                   std::vector<caf::error>& results) override;

private:
  explicit sqlite_backend(std::string path);

  // Opens the connection, sets the pragmas, takes the lock, creates the
  // schema and prepares the statements; the error says which step failed.
  caf::error init();

  caf::error prepare(sqlite3_stmt*& stmt, const char* sql);

  // The version held for (type, id), 0 if absent; runs inside a batch.
  caf::expected<uint64_t> held_version(const std::string& type,
                                       const context_id& id);

  // Applies one write whose version check passed.
  caf::error apply(const backend_write& w);

  // Ends a failed transaction, if sqlite did not already end it.
  void roll_back();

  caf::error failure(const std::string& what) const;

  std::string path_;
  sqlite3* db_ = nullptr;
  sqlite3_stmt* select_value_ = nullptr;
  sqlite3_stmt* select_version_ = nullptr;
  sqlite3_stmt* upsert_ = nullptr;
  sqlite3_stmt* erase_ = nullptr;
  sqlite3_stmt* begin_ = nullptr;
  sqlite3_stmt* commit_ = nullptr;
  sqlite3_stmt* rollback_ = nullptr;
  std::atomic<uint64_t> batches_{0};
  std::atomic<bool> cap_requested_{false};
  std::atomic<int> length_limit_requested_{0};
};

} // namespace ctxstore::backends
