// The anchors outside this program: the Python reference
// (../shared/bench/python_seed/bench.py) and the Redis lock cycle
// (../shared/bench/redis/run.sh). Both are run as child processes; their JSON
// lines are read with a few lines of hand-written parsing (no dependency).

#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include "stats.hpp"

namespace bench {

namespace {

bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

bool on_path(const std::string& program) {
  return std::system(("command -v " + program + " >/dev/null 2>&1").c_str())
         == 0;
}

// The value of "field" in a flat JSON object line, as text ("" if absent).
std::string json_field(const std::string& line, const std::string& field) {
  auto pos = line.find("\"" + field + "\"");
  if (pos == std::string::npos)
    return {};
  pos = line.find(':', pos);
  if (pos == std::string::npos)
    return {};
  ++pos;
  while (pos < line.size() && line[pos] == ' ')
    ++pos;
  if (pos < line.size() && line[pos] == '"') {
    auto end = line.find('"', pos + 1);
    return end == std::string::npos ? std::string{}
                                    : line.substr(pos + 1, end - pos - 1);
  }
  auto end = line.find_first_of(",}", pos);
  return line.substr(pos, end - pos);
}

double json_number(const std::string& line, const std::string& field) {
  auto text = json_field(line, field);
  return text.empty() ? -1 : std::strtod(text.c_str(), nullptr);
}

// Runs `cmd`, echoes its output prefixed with `tag`, calls `on_json` for each
// line that is a JSON object. Returns the exit status of `cmd`.
template <class F>
int run_child(const std::string& cmd, const std::string& shown,
              const std::string& tag, F on_json) {
  std::cout << tag << "$ " << shown << std::endl;
  auto pipe = popen((cmd + " 2>&1").c_str(), "r");
  if (pipe == nullptr)
    return -1;
  char buf[4096];
  std::string line;
  while (fgets(buf, sizeof(buf), pipe) != nullptr) {
    line += buf;
    if (line.empty() || line.back() != '\n')
      continue;
    line.pop_back();
    if (!line.empty() && line.front() == '{')
      on_json(line);
    else
      std::cout << tag << line << std::endl;
    line.clear();
  }
  return pclose(pipe);
}

std::string shared_dir(const options& opts) {
  return opts.source_dir + "/../shared/bench";
}

} // namespace

// The rows of bench.py that the targets use, run by importing bench.py (same
// functions, same sizes, same median of --python-reps): seconds instead of
// the minutes of its full run (thread and memory rows). --python-full runs
// `bench.py --reps N --json` itself.
const char* python_subset = R"(
import asyncio, json, sys
import bench as b
reps = int(sys.argv[1])
import pydantic
print("python %s, pydantic %s, rows a1 a2 b1 b2 b3 b3y c1 of bench.py, "
      "median of %d runs" % (sys.version.split()[0], pydantic.VERSION, reps))
arun = lambda f, *a: (lambda: asyncio.run(f(*a)))
def row(key, name, fn):
    med, lo, hi = b.median_of(reps, fn)
    print(json.dumps({"key": key, "name": name, "median": med, "min": lo,
                      "max": hi, "unit": "ops/s"}), flush=True)
row("a1", "store_context, new ids", arun(b.store_rate, False))
row("a2", "store_context, replacing", arun(b.store_rate, True))
row("b1", "get_context cycle, 1 task 1 id [mutate]",
    arun(b.cycle_rate, 1, False, False))
row("b2", "get_context cycle, 64 tasks 64 ids [mutate]",
    arun(b.cycle_rate, 64, False, False))
row("b3", "get_context cycle, 64 tasks ONE id [mutate]",
    arun(b.cycle_rate, 64, True, False))
row("b3y", "get_context cycle, 64 tasks ONE id [mutate + sleep(0) while held]",
    arun(b.cycle_rate, 64, True, True))
row("c1", "get_context_snapshot", arun(b.snapshot_rate))
)";

std::string rounded(const std::string& text) {
  char buf[32];
  snprintf(buf, sizeof(buf), "%.0f", std::strtod(text.c_str(), nullptr));
  return buf;
}

void run_python(const options& opts) {
  auto script = shared_dir(opts) + "/python_seed/bench.py";
  if (!exists(script)) {
    std::cout << "note: Python reference skipped: " << script << " not found"
              << std::endl;
    return;
  }
  if (std::system(
        (opts.python + " -c 'import pydantic' >/dev/null 2>&1").c_str())
      != 0) {
    std::cout << "note: Python reference skipped: no " << opts.python
              << " with pydantic" << std::endl;
    return;
  }
  auto dir = shared_dir(opts) + "/python_seed";
  auto reps = std::to_string(opts.python_reps);
  auto cmd = "cd '" + dir + "' && " + opts.python
             + (opts.python_full
                  ? " bench.py --reps " + reps + " --json"
                  : " - " + reps + " <<'EOF'\n" + python_subset + "EOF\n");
  auto shown = opts.python_full
                 ? cmd
                 : "cd '" + dir + "' && " + opts.python + " - " + reps
                     + " (rows of bench.py, see external.cpp)";
  auto status = run_child(cmd, shown, "python> ", [&](const std::string& line) {
    result r;
    r.key = "python." + json_field(line, "key");
    r.name = "Python reference: " + json_field(line, "name");
    r.ops_per_s = json_number(line, "median");
    r.reps = opts.python_reps;
    r.note = "min-max " + rounded(json_field(line, "min")) + "-"
             + rounded(json_field(line, "max"));
    add_result(opts, std::move(r));
  });
  if (status != 0)
    std::cout << "note: the Python reference exited with status " << status
              << std::endl;
}

void run_redis(const options& opts) {
  auto script = shared_dir(opts) + "/redis/run.sh";
  if (!exists(script)) {
    std::cout << "note: Redis anchor skipped: " << script << " not found"
              << std::endl;
    return;
  }
  if (!on_path("redis-server") || !on_path("redis-cli")
      || !exists("/usr/include/hiredis/hiredis.h")) {
    std::cout << "note: Redis anchor skipped: needs redis-server, redis-cli "
                 "and libhiredis-dev"
              << std::endl;
    return;
  }
  auto cmd = "RUNS=" + opts.redis_runs + " DUR=" + opts.redis_dur + " '"
             + script + "' --json";
  auto status = run_child(cmd, cmd, "redis> ", [&](const std::string& line) {
    auto key = json_field(line, "key"); // "redis-2-lock-1c"
    result r;
    r.key = "redis." + key.substr(key.rfind("redis-", 0) == 0 ? 6 : 0);
    r.name = "Redis anchor: " + key;
    r.ops_per_s = json_number(line, "ops_per_s");
    // The pipelined mode measures no latency (reports 0).
    r.p50_us
      = json_number(line, "p50_us") > 0 ? json_number(line, "p50_us") : -1;
    r.p99_us
      = json_number(line, "p99_us") > 0 ? json_number(line, "p99_us") : -1;
    r.reps = std::atoi(opts.redis_runs.c_str());
    auto lost = json_number(line, "lost_updates");
    r.errors = lost > 0 ? static_cast<uint64_t>(lost) : 0;
    r.note = "retries/op " + json_field(line, "retries_per_op");
    add_result(opts, std::move(r));
  });
  if (status != 0)
    std::cout << "note: the Redis anchor exited with status " << status
              << " (port busy or tool missing?)" << std::endl;
}

} // namespace bench
