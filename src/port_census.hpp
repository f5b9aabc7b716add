#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>

#include <caf/timespan.hpp>

// The census of a guarded publication (or of one outgoing connection): its
// connections and their handshake deadlines, its connection cap, a spare
// descriptor for running out of them, and a doorman that stopped accepting
// for a while. Shared by the doorman, its scribes (on the multiplexer's
// thread) and the watchdog (any thread), hence the mutex. A scribe leaves
// the census in its destructor, before its socket is closed: a socket found
// here is still open, and shutting it down is safe. Nothing of CAF but its
// timespan: a cheap translation unit.

namespace ctxstore::detail {

/// The bounds of a guarded publication or connection.
struct port_limits {
  /// Most payload bytes of a BASP message before the peer's handshake (and
  /// of the handshake itself). CAF's handshakes take a few hundred bytes.
  uint32_t max_handshake_bytes = 64 * 1024;
  /// Most payload bytes of a BASP message after the handshake; 0: BASP's
  /// own limit (4 GiB).
  uint64_t max_message_bytes = 0;
  /// How long a peer may take from the TCP connection to its handshake.
  caf::timespan handshake_timeout = std::chrono::seconds{10};
  /// Most connections of a publication at a time (0: no bound).
  size_t max_connections = 256;
};

/// The connections of a guarded publication (or of one outgoing connection).
class census {
public:
  using clock_type = std::chrono::steady_clock;

  /// How long a doorman that ran out of descriptors (and of its spare) stops
  /// accepting.
  static constexpr auto accept_pause = std::chrono::milliseconds{100};

  explicit census(const port_limits& limits);

  ~census();

  census(const census&) = delete;
  census& operator=(const census&) = delete;

  const port_limits limits;

  /// True if the publication holds `limits.max_connections` connections.
  bool full();

  /// A connection (`who`, on socket `fd`) starts its handshake.
  void enter(const void* who, int fd);

  void leave(const void* who);

  void handshake_done(const void* who);

  /// Shuts down the connections whose handshake is overdue (`all`: every
  /// connection still in its handshake). CAF then sees them fail and closes
  /// them.
  void sweep(bool all);

  /// Out of descriptors: accepts the next connection of `listener` with
  /// the spare descriptor and closes it, so that the listening socket does
  /// not stay readable. False if there is no spare to use.
  bool refuse_with_spare(int listener);

  /// Keeps a spare descriptor for `refuse_with_spare` (a publication's).
  void keep_spare();

  /// A doorman stopped accepting; `resume` (which holds it) resumes it,
  /// after `accept_pause`.
  void pause(std::function<void()> resume);

  /// The paused doorman's `resume` if its pause is over, else empty.
  std::function<void()> due_to_resume();

  /// Drops the paused doorman (it holds this census: a cycle).
  void forget_paused();

private:
  struct entry {
    int fd;
    clock_type::time_point deadline;
    bool pending; // still in its handshake
  };

  std::mutex mtx_;
  std::unordered_map<const void*, entry> live_;
  std::function<void()> resume_;
  clock_type::time_point resume_at_;
  int spare_ = -1;
};

using census_ptr = std::shared_ptr<census>;

} // namespace ctxstore::detail
