#include "ctxstore/backends/redis_backend.hpp"

#include <sys/time.h>

#include <charconv>
#include <exception>
#include <memory>
#include <utility>

#include <boost/uuid/uuid_io.hpp>
#include <hiredis/hiredis.h>

#include "ctxstore/error.hpp"

namespace ctxstore::backends {

namespace {

// -- scripts ------------------------------------------------------------------

// One write: KEYS = lease, context hash; ARGV = our epoch, the version the
// write replaces ("0": none; "*": whatever is held, and the write leaves the
// next one), the version it leaves, "1" for an erase, the value bytes.
// Checks the lease and the version before it changes anything, all in one
// script (Redis runs a script atomically), so a writer that lost its lease
// or raced another never lands anything. Returns {'ok', the version left}.
constexpr const char* write_script = R"lua(
local lease = redis.call('GET', KEYS[1])
if lease ~= ARGV[1] then
  return {'lease', lease or ''}
end
local held = redis.call('HGET', KEYS[2], 'v') or '0'
local version = ARGV[3]
if ARGV[2] == '*' and tonumber(held) then
  version = string.format('%d', tonumber(held) + 1)
elseif held ~= ARGV[2] then
  return {'version', held}
end
if ARGV[4] == '1' then
  redis.call('DEL', KEYS[2])
else
  redis.call('HSET', KEYS[2], 'v', version, 'd', ARGV[5])
end
return {'ok', version}
)lua";

// Lease renewal: KEYS = lease, epoch counter; ARGV = our epoch, lease ms.
// Extends the lease only while it holds our epoch. A lease that ran out
// (the server was down or restarted longer than the lease) is taken again
// only if the epoch counter is still ours: every open takes a new epoch
// before it tries the lease, so nobody else opened the prefix meanwhile.
// Returns 1 when we hold the lease, 0 when we lost it.
constexpr const char* renew_script = R"lua(
local lease = redis.call('GET', KEYS[1])
if lease == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not lease and redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
)lua";

// Open: KEYS = lease, epoch counter; ARGV = lease ms. Takes the next epoch
// and the lease in one step, only if nobody holds the lease: a refused open
// leaves the counter alone, so the holder can still take its own lease
// again after it ran out (renew_script). Returns {'ok', epoch} or
// {'held', the holder's epoch}.
constexpr const char* open_script = R"lua(
local holder = redis.call('GET', KEYS[1])
if holder then
  return {'held', holder}
end
local epoch = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], epoch, 'PX', ARGV[1])
return {'ok', tostring(epoch)}
)lua";

// Clean close: KEYS = lease; ARGV = our epoch. Deletes the lease only if it
// is still ours (compare-and-delete).
constexpr const char* release_script = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
)lua";

// -- hiredis helpers ----------------------------------------------------------

struct reply_deleter {
  void operator()(redisReply* r) const {
    if (r != nullptr)
      freeReplyObject(r);
  }
};

using reply_ptr = std::unique_ptr<redisReply, reply_deleter>;

timeval to_timeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

/// Appends one command (binary-safe arguments) to the output buffer.
bool append(redisContext* c, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  argv.reserve(args.size());
  lens.reserve(args.size());
  for (auto& arg : args) {
    argv.push_back(arg.data());
    lens.push_back(arg.size());
  }
  return redisAppendCommandArgv(c, static_cast<int>(args.size()), argv.data(),
                                lens.data())
         == REDIS_OK;
}

/// The next reply of the pipeline; null when the connection broke (c->err).
reply_ptr next_reply(redisContext* c) {
  void* r = nullptr;
  if (redisGetReply(c, &r) != REDIS_OK)
    return nullptr;
  return reply_ptr{static_cast<redisReply*>(r)};
}

/// Sends one command and waits for its reply; null when the connection
/// broke (c->err says why).
reply_ptr command(redisContext* c, const std::vector<std::string>& args) {
  if (!append(c, args))
    return nullptr;
  return next_reply(c);
}

std::string text_of(const redisReply& r) {
  return std::string{r.str, r.len};
}

bool parse_u64(const redisReply& r, uint64_t& out) {
  if (r.type == REDIS_REPLY_INTEGER && r.integer >= 0) {
    out = static_cast<uint64_t>(r.integer);
    return true;
  }
  if (r.type != REDIS_REPLY_STRING)
    return false;
  auto res = std::from_chars(r.str, r.str + r.len, out);
  return res.ec == std::errc{} && res.ptr == r.str + r.len;
}

/// Connects with bounded waits; null with `error` set on failure.
redisContext* connect_to(const std::string& host, uint16_t port,
                         std::string& error) {
  auto* c = redisConnectWithTimeout(host.c_str(), port,
                                    to_timeval(redis_backend::connect_timeout));
  if (c == nullptr) {
    error = "cannot connect: out of memory";
    return nullptr;
  }
  if (c->err != 0) {
    error = std::string{"cannot connect: "} + c->errstr;
    redisFree(c);
    return nullptr;
  }
  if (redisSetTimeout(c, to_timeval(redis_backend::command_timeout))
      != REDIS_OK) {
    error = std::string{"cannot set the command timeout: "} + c->errstr;
    redisFree(c);
    return nullptr;
  }
  return c;
}

/// Loads the write script; its SHA1, or nothing with `error` set.
std::optional<std::string> load_write_script(redisContext* c,
                                             std::string& error) {
  auto r = command(c, {"SCRIPT", "LOAD", write_script});
  if (!r) {
    error = std::string{"connection lost: "} + c->errstr;
    return std::nullopt;
  }
  if (r->type != REDIS_REPLY_STRING) {
    error = "SCRIPT LOAD failed: "
            + (r->type == REDIS_REPLY_ERROR ? text_of(*r) : "unexpected reply");
    return std::nullopt;
  }
  return text_of(*r);
}

} // namespace

// -- opening and closing ------------------------------------------------------

caf::expected<std::shared_ptr<redis_backend>>
redis_backend::open(const std::string& host, uint16_t port,
                    const std::string& prefix) {
  auto where = "redis://" + host + ":" + std::to_string(port) + "/" + prefix;
  auto fail = [&](const std::string& what) {
    return make_error(errc::backend_failure, where + ": " + what);
  };
  std::string error;
  auto* c = connect_to(host, port, error);
  if (c == nullptr)
    return fail(error);
  // Owns `c` until the backend takes it.
  std::unique_ptr<redisContext, void (*)(redisContext*)> guard{c, redisFree};
  auto lost
    = [&] { return fail(std::string{"connection lost: "} + c->errstr); };
  auto sha = load_write_script(c, error);
  if (!sha)
    return fail(error);
  // The next epoch and the lease, in one script: a storage that opened the
  // prefix earlier can tell from the counter that someone came after it.
  auto took = command(c, {"EVAL", open_script, "2", prefix + ":lease",
                          prefix + ":epoch",
                          std::to_string(lease_duration.count())});
  if (!took)
    return lost();
  if (took->type == REDIS_REPLY_ERROR)
    return fail("taking " + prefix + ":lease failed: " + text_of(*took));
  if (took->type != REDIS_REPLY_ARRAY || took->elements != 2
      || took->element[0]->type != REDIS_REPLY_STRING
      || took->element[1]->type != REDIS_REPLY_STRING)
    return fail("taking " + prefix + ":lease: unexpected reply");
  auto tag = text_of(*took->element[0]);
  if (tag == "held")
    return fail("the prefix is held by another storage (epoch "
                + text_of(*took->element[1])
                + "); it is free once that storage closes or its lease ("
                + std::to_string(lease_duration.count()) + " ms) runs out");
  uint64_t epoch = 0;
  if (tag != "ok" || !parse_u64(*took->element[1], epoch))
    return fail("taking " + prefix + ":lease: unexpected reply " + tag);
  // The backend owns the connection from here; it starts its worker.
  return std::shared_ptr<redis_backend>{new redis_backend(
    host, port, prefix, guard.release(), epoch, std::move(*sha))};
}

redis_backend::redis_backend(std::string host, uint16_t port,
                             std::string prefix, redisContext* ctx,
                             uint64_t epoch, std::string write_sha)
    : host_(std::move(host)), port_(port), prefix_(std::move(prefix)),
      lease_key_(prefix_ + ":lease"), epoch_key_(prefix_ + ":epoch"),
      epoch_(epoch), epoch_text_(std::to_string(epoch)), ctx_(ctx),
      write_sha_(std::move(write_sha)),
      last_renewal_(std::chrono::steady_clock::now()) {
  start();
}

redis_backend::~redis_backend() {
  stop();
  release();
  if (ctx_ != nullptr)
    redisFree(ctx_);
}

void redis_backend::release() {
  if (fenced_.load())
    return; // not ours any more: nothing to give back
  // The connection may have broken since the last batch (the server
  // restarted): one more try on a new one.
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (ctx_ == nullptr && connect())
      return; // unreachable: the lease runs out by itself
    if (command(ctx_, {"EVAL", release_script, "1", lease_key_, epoch_text_}))
      return;
    disconnect(std::string{"connection lost: "} + ctx_->errstr);
  }
}

std::string redis_backend::name() const {
  return "redis://" + host_ + ":" + std::to_string(port_) + "/" + prefix_;
}

// -- connection ---------------------------------------------------------------

caf::error redis_backend::connect() {
  std::string error;
  auto* c = connect_to(host_, port_, error);
  if (c == nullptr) {
    last_error_ = error;
    return failure(error);
  }
  // A restarted server forgot its scripts.
  auto sha = load_write_script(c, error);
  if (!sha) {
    redisFree(c);
    last_error_ = error;
    return failure(error);
  }
  ctx_ = c;
  write_sha_ = std::move(*sha);
  last_error_.clear();
  // Check the lease at once: it may have run out while we were away.
  last_renewal_ = std::chrono::steady_clock::time_point{};
  return caf::error{};
}

void redis_backend::disconnect(const std::string& why) {
  if (ctx_ != nullptr) {
    redisFree(ctx_);
    ctx_ = nullptr;
  }
  last_error_ = why;
}

caf::error redis_backend::failure(const std::string& what) const {
  return make_error(errc::backend_failure, name() + ": " + what);
}

std::string redis_backend::context_key(const std::string& type,
                                       const context_id& id) const {
  return prefix_ + ":c:" + type + ":" + boost::uuids::to_string(id);
}

// -- lease --------------------------------------------------------------------

bool redis_backend::renew() {
  auto r = command(ctx_, {"EVAL", renew_script, "2", lease_key_, epoch_key_,
                          epoch_text_, std::to_string(lease_duration.count())});
  if (!r) {
    disconnect(std::string{"connection lost: "} + ctx_->errstr);
    return false;
  }
  if (r->type == REDIS_REPLY_INTEGER) {
    if (r->integer == 1)
      last_renewal_ = std::chrono::steady_clock::now();
    else
      fenced_ = true; // another storage opened the prefix after us
  }
  // An error reply (e.g. the server is loading): try again next tick; every
  // write checks the lease itself anyway.
  return true;
}

void redis_backend::on_tick() {
  if (ctx_ == nullptr && connect())
    return; // still unreachable: this batch fails, the next one retries
  if (!fenced_.load() && !renewals_suspended_.load()
      && std::chrono::steady_clock::now() - last_renewal_ >= renew_interval)
    renew();
}

std::chrono::milliseconds redis_backend::tick() const {
  // Idle wakes twice per renewal interval: a renewal is never later than
  // 1.5 intervals, well inside the lease.
  return renew_interval / 2;
}

// -- reads and writes ---------------------------------------------------------

caf::expected<std::optional<stored_value>>
redis_backend::read(const std::string& type, const context_id& id) {
  if (ctx_ == nullptr)
    return failure("not connected (" + last_error_ + ")");
  auto r = command(ctx_, {"HMGET", context_key(type, id), "v", "d"});
  if (!r) {
    disconnect(std::string{"connection lost: "} + ctx_->errstr);
    return failure(last_error_);
  }
  return row_of(type, id, *r);
}

std::vector<caf::expected<std::optional<stored_value>>>
redis_backend::read_many(const std::vector<read_key>& keys) {
  if (keys.size() == 1 || ctx_ == nullptr)
    return batching_backend::read_many(keys);
  std::vector<caf::expected<std::optional<stored_value>>> result;
  result.reserve(keys.size());
  bool sent = true;
  for (auto& key : keys)
    if (!append(ctx_, {"HMGET", context_key(key.first, key.second), "v", "d"}))
      sent = false;
  for (auto& key : keys) {
    reply_ptr r;
    if (sent && ctx_ != nullptr)
      r = next_reply(ctx_);
    if (!r) {
      if (ctx_ != nullptr)
        disconnect(std::string{"connection lost: "} + ctx_->errstr);
      result.push_back(failure(last_error_));
      continue;
    }
    result.push_back(row_of(key.first, key.second, *r));
  }
  return result;
}

caf::expected<std::optional<stored_value>>
redis_backend::row_of(const std::string& type, const context_id& id,
                      const redisReply& reply) {
  auto r = &reply;
  if (r->type == REDIS_REPLY_ERROR)
    return failure("HMGET failed: " + text_of(*r));
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 2)
    return failure("HMGET: unexpected reply");
  auto& v = *r->element[0];
  auto& d = *r->element[1];
  if (v.type == REDIS_REPLY_NIL)
    return std::optional<stored_value>{};
  stored_value result;
  if (!parse_u64(v, result.version) || d.type != REDIS_REPLY_STRING)
    return failure("malformed context " + context_key(type, id));
  result.bytes.assign(d.str, d.str + d.len);
  return std::optional<stored_value>{std::move(result)};
}

void redis_backend::write_batch(std::vector<backend_write>& batch,
                                std::vector<caf::error>& results) {
  if (fenced_.load()) {
    for (auto& res : results)
      res = make_error(errc::conflict,
                       name()
                         + ": this storage lost the prefix to another "
                           "storage (it held epoch "
                         + epoch_text_ + ")");
    return;
  }
  if (ctx_ == nullptr) {
    for (auto& res : results)
      res = failure("not connected (" + last_error_ + ")");
    return;
  }
  auto args_of = [&](const backend_write& w, bool by_sha) {
    std::vector<std::string> args;
    args.reserve(10);
    args.emplace_back(by_sha ? "EVALSHA" : "EVAL");
    args.emplace_back(by_sha ? write_sha_ : std::string{write_script});
    args.emplace_back("2");
    args.emplace_back(lease_key_);
    args.emplace_back(context_key(w.type, w.id));
    args.emplace_back(epoch_text_);
    args.emplace_back(w.replaces == replaces_any
                        ? std::string{"*"}
                        : std::to_string(w.replaces));
    args.emplace_back(std::to_string(w.version));
    args.emplace_back(w.erase ? "1" : "0");
    if (w.erase)
      args.emplace_back();
    else
      args.emplace_back(w.bytes.data(), w.bytes.size());
    return args;
  };
  // Reads the replies of the writes `idx` (pipelined in that order). With
  // `appendfsync always` the server writes and fsyncs its AOF before it
  // sends any reply of an event-loop round, so a reply means the write is
  // durable. Returns the writes that found no script (NOSCRIPT).
  auto collect = [&](const std::vector<size_t>& idx) {
    std::vector<size_t> noscript;
    for (size_t k = 0; k < idx.size(); ++k) {
      auto i = idx[k];
      auto& w = batch[i];
      auto r = ctx_ != nullptr ? next_reply(ctx_) : nullptr;
      if (!r) {
        if (ctx_ != nullptr)
          disconnect(std::string{"connection lost: "} + ctx_->errstr);
        // Sent but unanswered: the server may or may not have applied it.
        for (; k < idx.size(); ++k)
          results[idx[k]]
            = failure("no reply to the write (" + last_error_ + ")");
        break;
      }
      if (r->type == REDIS_REPLY_ERROR) {
        auto text = text_of(*r);
        if (text.rfind("NOSCRIPT", 0) == 0)
          noscript.push_back(i);
        else
          results[i] = failure("write script failed: " + text);
        continue;
      }
      if (r->type != REDIS_REPLY_ARRAY || r->elements < 1
          || r->element[0]->type != REDIS_REPLY_STRING) {
        results[i] = failure("write script: unexpected reply");
        continue;
      }
      auto tag = text_of(*r->element[0]);
      auto arg = r->elements > 1 && r->element[1]->type == REDIS_REPLY_STRING
                   ? text_of(*r->element[1])
                   : std::string{};
      if (tag == "ok") {
        if (w.replaces == replaces_any
            && (r->elements < 2 || !parse_u64(*r->element[1], w.version)))
          results[i] = failure("write script: no version in its reply");
        continue;
      }
      if (tag == "lease" && arg.empty()) {
        // The lease ran out and nobody took it: this worker stalled longer
        // than the lease (a long batch, a paused process). Not applied; the
        // next tick takes the lease back if the epoch counter is still ours
        // (renew_script), else we are fenced.
        last_renewal_ = std::chrono::steady_clock::time_point{};
        results[i] = failure(
          "the lease ran out before the write (the storage stalled for more "
          "than "
          + std::to_string(lease_duration.count())
          + " ms); it is taken back unless another storage opened the prefix");
      } else if (tag == "lease") {
        fenced_ = true;
        results[i] = make_error(
          errc::conflict,
          name()
            + ": this storage lost the prefix to another "
              "storage (it held epoch "
            + epoch_text_ + ", the lease now holds "
            + "epoch " + arg + ")");
      } else if (tag == "version") {
        results[i] = make_error(
          errc::conflict, name() + ": " + w.type + " "
                            + boost::uuids::to_string(w.id) + " is at version "
                            + arg + ", the write expected "
                            + (w.replaces == replaces_any
                                 ? std::string{"a version"}
                                 : std::to_string(w.replaces)));
      } else {
        results[i] = failure("write script: unexpected reply " + tag);
      }
    }
    return noscript;
  };
  auto send = [&](const std::vector<size_t>& idx, bool by_sha) {
    for (auto i : idx) {
      if (!append(ctx_, args_of(batch[i], by_sha))) {
        // Only out of memory: nothing was sent yet.
        for (auto j : idx)
          results[j] = failure("cannot queue the write");
        return false;
      }
    }
    return true;
  };
  std::vector<size_t> all(batch.size());
  for (size_t i = 0; i < all.size(); ++i)
    all[i] = i;
  batches_ += 1;
  writes_ += batch.size();
  if (!send(all, true)) {
    disconnect("out of memory");
    return;
  }
  auto noscript = collect(all);
  // The server lost the script (restarted, SCRIPT FLUSH): send those writes
  // again with the script's text, in their order.
  if (!noscript.empty() && ctx_ != nullptr) {
    if (send(noscript, false))
      collect(noscript);
    else
      disconnect("out of memory");
  }
}

} // namespace ctxstore::backends

namespace ctxstore {

caf::expected<std::shared_ptr<backend>>
open_redis(const std::string& host, uint16_t port, const std::string& prefix) {
  try {
    auto res = backends::redis_backend::open(host, port, prefix);
    if (!res)
      return std::move(res.error());
    return std::shared_ptr<backend>{std::move(*res)};
  } catch (const std::exception& ex) {
    // Out of memory, or no thread for the worker.
    return make_error(errc::backend_failure, "redis://" + host + ":"
                                               + std::to_string(port) + "/"
                                               + prefix + ": " + ex.what());
  }
}

} // namespace ctxstore
