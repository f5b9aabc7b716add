#pragma once

// Options, samples, percentiles and the table of results: everything of the
// bench that does not touch CAF.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

namespace bench {

using bench_clock = std::chrono::steady_clock;

/// Command line of the bench (see main.cpp for the flags).
struct options {
  int reps = 5;
  uint64_t max_ops = 200000;               // per repetition
  std::chrono::milliseconds max_time{250}; // per repetition
  uint64_t scale = 1000000;                // contexts of the scale scenario
  bool smoke = false;
  bool json = false;
  std::vector<std::string> only;     // empty: every group
  std::string rows; // non-empty: only the rows whose key contains it
  std::vector<std::string> caf_args; // --scheduler.x=..., passed on
  std::string source_dir;            // the repository (for ../shared)
  std::string python = "python3";
  int python_reps = 3;
  bool python_full = false; // bench.py's full run (minutes) instead of rows
  std::string redis_runs = "3";
  std::string redis_dur = "1.5";
  std::string durable_dir; // empty: /tmp, or /var/tmp if /tmp is a tmpfs
  std::string caf_settings; // filled in by main
  std::string caf_settings_json;

  /// Whether the group `name` runs (see `--only`).
  bool wants(const std::string& name) const {
    return only.empty()
           || std::find(only.begin(), only.end(), name) != only.end();
  }

  /// Whether the row `key` runs (see `--rows`).
  bool wants_row(const std::string& key) const {
    return rows.empty() || key.find(rows) != std::string::npos;
  }
};

/// Resident memory of this process in bytes (/proc/self/statm).
inline int64_t rss_bytes() {
  std::ifstream in{"/proc/self/statm"};
  int64_t size = 0;
  int64_t resident = 0;
  in >> size >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

/// One repetition of one scenario.
struct rep_sample {
  double seconds = 0;
  uint64_t ops = 0;
  uint64_t errors = 0;
  std::vector<int64_t> lat_ns;      // one per op (may be empty)
  std::vector<uint64_t> per_client; // completed ops of each client
  // Completed ops of each client while all of them were running (see
  // window_counts); empty where not measured.
  std::vector<uint64_t> per_client_window;
};

/// Of each client's completion times (steady clock, ns), how many fall into
/// the interval in which every client was active: from the latest first
/// completion to the earliest last one. Clients that start late or stop early
/// (the start barrier wakes threads one by one) do not count as unfairly
/// treated; a queue that lets some clients barge past others does.
std::vector<uint64_t>
window_counts(const std::vector<std::vector<int64_t>>& done_ns);

/// One row of the table: medians over the repetitions.
struct result {
  std::string key;  // stable, for targets and JSON: e.g. "snapshot.async.1"
  std::string name; // what a reader sees
  double ops_per_s = 0;
  double p50_us = -1, p99_us = -1, p999_us = -1;
  double fairness = -1; // max/min completed ops per client, when meaningful
                        // (while all clients ran; see window_counts)
  double fairness_whole = -1; // the same over the whole run
  double value = -1;    // a plain figure (bytes, seconds) instead of a rate
  std::string unit;     // of `value`
  int reps = 0;
  uint64_t errors = 0;
  std::string note;
};

/// The q-quantile (0..1) of `v` in microseconds; reorders `v`.
inline double percentile_us(std::vector<int64_t>& v, double q) {
  if (v.empty())
    return -1;
  auto k = static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k),
                   v.end());
  return static_cast<double>(v[k]) / 1000.0;
}

inline double median(std::vector<double> v) {
  if (v.empty())
    return -1;
  std::sort(v.begin(), v.end());
  auto n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/// Medians of ops/s, p50, p99, p99.9 and fairness over the repetitions.
result summarize(const std::string& key, const std::string& name,
                 std::vector<rep_sample>& reps);

/// Adds a row to the table, prints it (and its JSON line with --json).
const result& add_result(const options& opts, result r);

/// The row with `key`, or nullptr (skipped or not run).
const result* find_result(const std::string& key);

/// Prints the header of the table.
void print_table_header(const options& opts);

/// Prints every target of issues 5 and 7 with its ratio; returns how many
/// were not met (informational: the exit code does not depend on it).
int print_targets(const options& opts);

/// Runs the Python reference and the Redis anchor (skips with a note).
void run_python(const options& opts);
void run_redis(const options& opts);

} // namespace bench
