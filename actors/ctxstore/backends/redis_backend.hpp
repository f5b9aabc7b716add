#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "ctxstore/backend.hpp"
#include "ctxstore/backends/batching_backend.hpp"

struct redisContext; // hiredis
struct redisReply;   // hiredis

namespace ctxstore::backends {

/// The backend of `open_redis`: contexts in one Redis server under a prefix,
/// held exclusively through a lease key.
///
/// Keys: `<prefix>:epoch` (a counter: every open takes the next value as its
/// epoch), `<prefix>:lease` (the holder's epoch, with a PX expiry that the
/// worker renews), and one hash per context `<prefix>:c:<type>:<uuid>` with
/// the fields `v` (the version, decimal) and `d` (the value bytes).
///
/// Every write is one Lua script that checks the lease and the context's
/// version before it changes anything, so a backend that lost its lease
/// never overwrites (`errc::conflict`); all writes of a batch go out in one
/// pipeline. A lease that ran out while nobody took the prefix (the worker
/// stalled longer than the lease) fails the writes that find it gone
/// (`errc::backend_failure`) and is taken back at the next tick, since the
/// epoch counter shows that nobody opened the prefix since (an open that
/// finds the prefix held changes nothing). The one hiredis connection is used by the worker thread only
/// (and by the opening thread before the worker starts). A broken connection
/// fails the operations of its batch (`errc::backend_failure`); the next
/// batch or tick reconnects.
class redis_backend final : public batching_backend {
public:
  /// How long the lease lasts without a renewal.
  static constexpr std::chrono::milliseconds lease_duration{3000};

  /// How often the worker renews the lease.
  static constexpr std::chrono::milliseconds renew_interval{1000};

  /// Longest wait for a TCP connection to the server.
  static constexpr std::chrono::milliseconds connect_timeout{1000};

  /// Longest wait for one reply (a command, or a pipeline's next reply).
  static constexpr std::chrono::milliseconds command_timeout{2000};

  /// Connects, takes the next epoch and the lease of `prefix`: fails with
  /// `errc::backend_failure` when the server does not answer or another
  /// storage holds the prefix. Never throws.
  static caf::expected<std::shared_ptr<redis_backend>>
  open(const std::string& host, uint16_t port, const std::string& prefix);

  /// Ends the worker (answering what is queued), then gives the lease back
  /// if it is still this backend's, so the prefix can be opened at once.
  ~redis_backend() override;

  std::string name() const override;

  /// The epoch this backend holds the prefix with.
  uint64_t epoch() const noexcept {
    return epoch_;
  }

  /// How many batches of writes went out (one pipeline each); for tests.
  uint64_t batches() const noexcept {
    return batches_.load();
  }

  /// How many writes went out in those batches; for tests.
  uint64_t writes() const noexcept {
    return writes_.load();
  }

  /// True once the backend learned that it lost its lease; every later
  /// write then fails with `errc::conflict`.
  bool fenced() const noexcept {
    return fenced_.load();
  }

  /// Test only: the worker stops renewing the lease, as if this process
  /// hung; the lease then runs out and another storage can take the prefix.
  /// Takes effect for every tick that starts after the call.
  void suspend_renewals() noexcept {
    renewals_suspended_ = true;
  }

  /// Test only: renewals go on (after suspend_renewals).
  void resume_renewals() noexcept {
    renewals_suspended_ = false;
  }

protected:
  caf::expected<std::optional<stored_value>>
  read(const std::string& type, const context_id& id) override;

  /// One pipeline of HMGETs: one round trip for all of them.
  std::vector<caf::expected<std::optional<stored_value>>>
  read_many(const std::vector<read_key>& keys) override;

  void write_batch(std::vector<backend_write>& batch,
                   std::vector<caf::error>& results) override;

  void on_tick() override;

  std::chrono::milliseconds tick() const override;

private:
  redis_backend(std::string host, uint16_t port, std::string prefix,
                redisContext* ctx, uint64_t epoch, std::string write_sha);

  /// Connects and loads the scripts; on failure leaves `ctx_` null and
  /// returns why.
  caf::error connect();

  /// Drops a broken connection (the next batch or tick reconnects).
  void disconnect(const std::string& why);

  /// Renews the lease (or marks the backend fenced); false when the
  /// connection broke.
  bool renew();

  /// Gives the lease back if it is still ours (destructor).
  void release();

  caf::error failure(const std::string& what) const;

  /// The context that an HMGET of (type, id) returned (`r`: its reply).
  caf::expected<std::optional<stored_value>>
  row_of(const std::string& type, const context_id& id, const redisReply& r);

  std::string context_key(const std::string& type, const context_id& id) const;

  std::string host_;
  uint16_t port_;
  std::string prefix_;
  std::string lease_key_;
  std::string epoch_key_;
  uint64_t epoch_;
  std::string epoch_text_;

  // Worker thread only (opening thread before start, destructor after stop).
  redisContext* ctx_ = nullptr;
  std::string last_error_;
  std::string write_sha_;
  std::chrono::steady_clock::time_point last_renewal_;

  std::atomic<bool> fenced_{false};
  std::atomic<bool> renewals_suspended_{false};
  std::atomic<uint64_t> batches_{0};
  std::atomic<uint64_t> writes_{0};
};

} // namespace ctxstore::backends
