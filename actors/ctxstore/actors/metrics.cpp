#include "ctxstore/actors/metrics.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <utility>
#include <vector>

#include "ctxstore/actors/feed.hpp"

namespace ctxstore::actors {

int64_t steady_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
           std::chrono::steady_clock::now().time_since_epoch())
    .count();
}

std::string escape_label_value(const std::string& x) {
  std::string result;
  result.reserve(x.size());
  for (auto c : x) {
    switch (c) {
    case '\\':
      result += "\\\\";
      break;
    case '"':
      result += "\\\"";
      break;
    case '\n':
      result += "\\n";
      break;
    default:
      result += c;
    }
  }
  return result;
}

namespace {

std::string seconds(int64_t ns) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.9g", static_cast<double>(ns) / 1e9);
  return buf;
}

void header(std::string& out, const char* name, const char* type,
            const char* help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void sample(std::string& out, const std::string& name,
            const std::string& labels, int64_t value) {
  out += name;
  if (!labels.empty())
    out += "{" + labels + "}";
  out += ' ';
  out += std::to_string(value);
  out += '\n';
}

int64_t load(const std::atomic<uint64_t>& x) {
  return static_cast<int64_t>(x.load(std::memory_order_relaxed));
}

int64_t load(const std::atomic<int64_t>& x) {
  auto v = x.load(std::memory_order_relaxed);
  return v < 0 ? 0 : v;
}

} // namespace

void duration_histogram::observe(int64_t ns) noexcept {
  if (ns < 0)
    ns = 0;
  size_t i = 0;
  while (i < bounds_ns.size() && ns > bounds_ns[i])
    ++i;
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(static_cast<uint64_t>(ns), std::memory_order_relaxed);
}

void duration_histogram::render(std::string& out, const std::string& name,
                                const std::string& labels) const {
  uint64_t cumulative = 0;
  auto prefix = labels.empty() ? std::string{} : labels + ",";
  for (size_t i = 0; i < counts_.size(); ++i) {
    cumulative += counts_[i].load(std::memory_order_relaxed);
    auto le = i < bounds_ns.size() ? seconds(bounds_ns[i]) : "+Inf";
    sample(out, name + "_bucket", prefix + "le=\"" + le + "\"",
           static_cast<int64_t>(cumulative));
  }
  out += name + "_sum";
  if (!labels.empty())
    out += "{" + labels + "}";
  out += ' ' + seconds(static_cast<int64_t>(sum_ns_.load())) + '\n';
  sample(out, name + "_count", labels, static_cast<int64_t>(cumulative));
}

void count_histogram::observe(uint64_t n) noexcept {
  size_t i = 0;
  while (i < bounds.size() && n > bounds[i])
    ++i;
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(n, std::memory_order_relaxed);
}

void count_histogram::render(std::string& out, const std::string& name) const {
  uint64_t cumulative = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    cumulative += counts_[i].load(std::memory_order_relaxed);
    auto le = i < bounds.size() ? std::to_string(bounds[i]) : "+Inf";
    sample(out, name + "_bucket", "le=\"" + le + "\"",
           static_cast<int64_t>(cumulative));
  }
  sample(out, name + "_sum", "", load(sum_));
  sample(out, name + "_count", "", static_cast<int64_t>(cumulative));
}

type_metrics* metrics_registry::of(const std::string& type) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto& slot = types_[type];
  if (!slot)
    slot = std::make_unique<type_metrics>(type);
  return slot.get();
}

std::string metrics_registry::render(const counters& totals,
                                     const feed& changes) const {
  std::string out;
  std::lock_guard<std::mutex> guard{mtx_};
  auto label = [](const type_metrics& m) {
    return "type=\"" + escape_label_value(m.type) + "\"";
  };
  header(out, "ctxstore_operations_total", "counter",
         "Operations on contexts by kind and result.");
  for (auto& [name, m] : types_) {
    auto l = label(*m);
    // Results by name: the fixed ones always, every other error once it
    // happened (results are errc names).
    auto ops = [&](op_kind kind, const char* name,
                   std::vector<std::pair<std::string, int64_t>> results) {
      auto& failed = m->failed[static_cast<size_t>(kind)];
      for (size_t code = 1; code < failed.size(); ++code) {
        auto n = load(failed[code]);
        auto result = to_string(static_cast<errc>(code));
        auto fixed = std::find_if(results.begin(), results.end(),
                                  [&](auto& x) { return x.first == result; });
        if (fixed != results.end())
          fixed->second += n;
        else if (n > 0)
          results.emplace_back(result, n);
      }
      for (auto& [result, n] : results)
        sample(out, "ctxstore_operations_total",
               l + ",kind=\"" + name + "\",result=\"" + result + "\"", n);
    };
    ops(op_kind::acquire, "acquire",
        {{"ok", load(m->acquired)},
         {"timeout", load(m->acquire_timeout)},
         {"deadlock", load(m->acquire_deadlock)},
         {"overloaded", load(m->acquire_overloaded)}});
    ops(op_kind::write, "write", {{"ok", load(m->written)}});
    ops(op_kind::erase, "erase", {{"ok", load(m->erased)}});
  }
  header(out, "ctxstore_timeouts_total", "counter",
         "Acquires that gave up waiting.");
  for (auto& [name, m] : types_)
    sample(out, "ctxstore_timeouts_total", label(*m), load(m->acquire_timeout));
  header(out, "ctxstore_overloaded_total", "counter",
         "Requests refused because a context's queue was full.");
  for (auto& [name, m] : types_)
    sample(out, "ctxstore_overloaded_total", label(*m),
           load(m->acquire_overloaded));
  header(out, "ctxstore_deadlocks_total", "counter",
         "Acquires refused because their wait would close a cycle.");
  for (auto& [name, m] : types_)
    sample(out, "ctxstore_deadlocks_total", label(*m),
           load(m->acquire_deadlock));
  header(out, "ctxstore_lease_revocations_total", "counter",
         "Sessions ended because their lease ran out.");
  for (auto& [name, m] : types_)
    sample(out, "ctxstore_lease_revocations_total", label(*m),
           load(m->lease_revocations));
  header(out, "ctxstore_fencing_refusals_total", "counter",
         "Session requests refused: the session was no longer open (revoked, "
         "ended) or the sender did not hold it.");
  for (auto& [name, m] : types_)
    sample(out, "ctxstore_fencing_refusals_total", label(*m),
           load(m->fencing_refusals));
  header(out, "ctxstore_sessions", "gauge", "Open sessions.");
  for (auto& [name, m] : types_)
    sample(out, "ctxstore_sessions", label(*m), load(m->sessions));
  header(out, "ctxstore_waiters", "gauge",
         "Requests queued behind a holder.");
  for (auto& [name, m] : types_)
    sample(out, "ctxstore_waiters", label(*m), load(m->waiters));
  header(out, "ctxstore_acquire_wait_seconds", "histogram",
         "How long acquires waited in a context's queue.");
  for (auto& [name, m] : types_)
    m->acquire_wait.render(out, "ctxstore_acquire_wait_seconds", label(*m));
  header(out, "ctxstore_session_hold_seconds", "histogram",
         "How long sessions were held.");
  for (auto& [name, m] : types_)
    m->session_hold.render(out, "ctxstore_session_hold_seconds", label(*m));
  header(out, "ctxstore_durable_commit_seconds", "histogram",
         "How long the backend took to make a change durable.");
  for (auto& [name, m] : types_)
    m->durable_commit.render(out, "ctxstore_durable_commit_seconds", label(*m));
  header(out, "ctxstore_resident_contexts", "gauge",
         "Contexts in memory.");
  sample(out, "ctxstore_resident_contexts", "", load(totals.contexts));
  header(out, "ctxstore_owners", "gauge", "Owner actors alive.");
  sample(out, "ctxstore_owners", "", load(totals.owners));
  header(out, "ctxstore_activations_total", "counter",
         "Durable contexts read from the backend.");
  sample(out, "ctxstore_activations_total", "", load(totals.activations));
  header(out, "ctxstore_passivations_total", "counter",
         "Durable contexts that left memory.");
  sample(out, "ctxstore_passivations_total", "", load(totals.passivations));
  header(out, "ctxstore_durable_batch_writes", "histogram",
         "Writes the backend made durable together (one group commit).");
  batch_writes.render(out, "ctxstore_durable_batch_writes");
  header(out, "ctxstore_watchers", "gauge", "Watches of the change feed.");
  sample(out, "ctxstore_watchers", "",
         static_cast<int64_t>(changes.watchers()));
  header(out, "ctxstore_watch_skipped_changes_total", "counter",
         "Changes that watchers did not get because they fell behind.");
  sample(out, "ctxstore_watch_skipped_changes_total", "",
         static_cast<int64_t>(changes.skipped()));
  header(out, "ctxstore_remote_requests_total", "counter",
         "Requests that came from other nodes through a publication.");
  sample(out, "ctxstore_remote_requests_total", "", load(remote_requests));
  return out;
}

} // namespace ctxstore::actors
