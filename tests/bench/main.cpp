// ctxstore-bench: the benchmark of issue 5 ("Performance") and the Redis
// comparison of issue 7 ("Remote speed"). Prints a table (and with --json one
// JSON line per row), then every target with its measured ratio.
//
//   ctxstore-bench [--reps N] [--json] [--only g1,g2] [--scale N] [--smoke]
//                  [--max-ops N] [--max-ms N] [--python CMD]
//                  [--python-reps N] [--python-full] [--redis-runs N]
//                  [--redis-dur S] [--durable-dir DIR]
//                  [--source-dir DIR] [CAF options, e.g.
//                  --scheduler.policy=sharing --middleman.workers=0]
// Groups: caf mutex snapshot cycle contention held store durable scale remote
// tls feed python redis, and resident (only when named: --scale durable contexts
// on disk, about 1 GiB and 4 minutes for the default million). CAF options
// apply to both processes of the remote group. tls: remote snapshots and
// cycles over mutual TLS against plain, alternating in the same run
// (certificates made by tests/tls/make-certs.sh).

#include <sys/utsname.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include <caf/all.hpp>
#include <caf/io/middleman.hpp>

#include "model.hpp"
#include "ctxstore/remote.hpp"
#include "scenarios.hpp"

#ifndef CTXSTORE_SOURCE_DIR
#define CTXSTORE_SOURCE_DIR "."
#endif
#ifndef CTXSTORE_BUILD_TYPE
#define CTXSTORE_BUILD_TYPE "?"
#endif

namespace bench {

namespace {

const char* usage
  = "usage: ctxstore-bench [--reps N] [--json] [--only g1,g2,...] [--rows TEXT]\n"
    "         [--scale N] [--smoke] [--max-ops N] [--max-ms N] [--python CMD]\n"
    "         [--python-reps N] [--python-full] [--redis-runs N]\n"
    "         [--redis-dur S] [--durable-dir DIR]\n"
    "         [--source-dir DIR] [CAF options such as "
    "--scheduler.policy=sharing]\n"
    "groups: caf mutex snapshot cycle contention held store durable scale "
    "remote tls feed python redis resident (resident: only when named)\n"
    "--rows TEXT: of those groups, only the rows whose key contains TEXT\n";

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in{text};
  std::string item;
  while (std::getline(in, item, ','))
    if (!item.empty())
      out.push_back(item);
  return out;
}

// Returns false after printing why the command line is bad.
bool parse(int argc, char** argv, options& opts, bool& serve) {
  opts.source_dir = CTXSTORE_SOURCE_DIR;
  bool smoke_scale = true;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc)
        throw std::invalid_argument{arg + " needs a value"};
      return argv[++i];
    };
    auto eq = arg.find('=');
    if (arg.rfind("--", 0) == 0 && arg.find('.') < eq && eq != arg.npos) {
      opts.caf_args.push_back(arg); // --scheduler.policy=sharing
    } else if (arg == "--serve") {
      serve = true;
    } else if (arg == "--reps") {
      opts.reps = std::max(1, std::stoi(value()));
    } else if (arg == "--json") {
      opts.json = true;
    } else if (arg == "--smoke") {
      opts.smoke = true;
    } else if (arg == "--only") {
      opts.only = split(value());
    } else if (arg == "--rows") {
      opts.rows = value();
    } else if (arg == "--scale") {
      opts.scale = std::stoull(value());
      smoke_scale = false;
    } else if (arg == "--max-ops") {
      opts.max_ops = std::stoull(value());
    } else if (arg == "--max-ms") {
      opts.max_time = std::chrono::milliseconds{std::stoll(value())};
    } else if (arg == "--python") {
      opts.python = value();
    } else if (arg == "--python-full") {
      opts.python_full = true;
    } else if (arg == "--python-reps") {
      opts.python_reps = std::stoi(value());
    } else if (arg == "--redis-runs") {
      opts.redis_runs = value();
    } else if (arg == "--redis-dur") {
      opts.redis_dur = value();
    } else if (arg == "--durable-dir") {
      opts.durable_dir = value();
    } else if (arg == "--source-dir") {
      opts.source_dir = value();
    } else if (arg == "--help" || arg == "-h") {
      std::cout << usage;
      std::exit(0);
    } else {
      std::cerr << "unknown argument: " << arg << "\n" << usage;
      return false;
    }
  }
  if (opts.smoke) {
    // A few hundred ops per scenario; the external anchors take minutes.
    opts.reps = std::min(opts.reps, 2);
    opts.max_ops = std::min<uint64_t>(opts.max_ops, 300);
    if (smoke_scale)
      opts.scale = 2000;
    if (opts.only.empty())
      opts.only = split("caf,mutex,snapshot,cycle,contention,held,store,"
                        "durable,scale,remote,tls,feed");
  }
  return true;
}

std::string machine() {
  std::string cpu = "?";
  std::ifstream in{"/proc/cpuinfo"};
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) {
      cpu = line.substr(line.find(':') + 2);
      break;
    }
  utsname u{};
  uname(&u);
  return std::to_string(std::thread::hardware_concurrency()) + " x " + cpu
         + ", " + u.sysname + " " + u.release;
}

size_t wire_size(caf::actor_system& sys) {
  std::vector<char> buf;
  caf::binary_serializer sink{sys, buf};
  auto value = make_ctx();
  if (sink(value))
    return 0;
  return buf.size();
}

// The rows that a smoke run must have produced (ctest checks the exit code).
bool smoke_complete() {
  for (auto key :
       {"caf.async.1", "mutex.cycle", "snapshot.blocking.1",
        "snapshot.async.64", "cycle.async.64x1000", "contention.async.64",
        "held.blocking.1", "store.async.new", "store.async.new.shared",
        "durable.sqlite.cycle.1", "durable.sqlite.cycle.64x1000",
        "durable.sqlite.store.new", "bare.sqlite.upsert.new.1",
        "bare.sqlite.upsert.64", "scale.create",
        "remote.cycle.blocking.1", "remote.snapshot.async.64"}) {
    auto r = find_result(key);
    if (r == nullptr || r->errors > 0 || (r->ops_per_s <= 0)) {
      std::cout << "smoke: row " << key << " missing or failed" << std::endl;
      return false;
    }
  }
  // The Redis rows run only where there is a redis-server; where they ran,
  // they must not have failed.
  for (auto key : {"durable.redis.cycle.1", "durable.redis.cycle.64x1000",
                   "bare.redis.set.64", "bare.redis.set.new.1"}) {
    auto r = find_result(key);
    if (r != nullptr && r->errors > 0) {
      std::cout << "smoke: row " << key << " failed" << std::endl;
      return false;
    }
  }
  return true;
}

} // namespace

std::unique_ptr<caf::actor_system_config> make_config(const options& opts,
                                                      bool remote) {
  auto cfg = std::make_unique<caf::actor_system_config>();
  add_bench_types(*cfg);
  if (remote) {
    cfg->load<caf::io::middleman>();
    // Both processes of the remote group: what publish/connect users get
    // from the examples; CAF options on the command line override it.
    ctxstore::apply_remote_defaults(*cfg);
    ctxstore::load_tls(*cfg); // TLS with --openssl.* options (group tls)
  }
  if (auto err = cfg->parse(opts.caf_args)) {
    std::cerr << "bad CAF options: " << caf::to_string(err) << std::endl;
    return nullptr;
  }
  if (!cfg->remainder.empty()) {
    std::cerr << "unknown CAF options: " << cfg->remainder.front() << std::endl;
    return nullptr;
  }
  return cfg;
}

void describe_settings(const caf::actor_system_config& cfg, options& opts) {
  namespace d = caf::defaults;
  auto policy = caf::to_string(
    caf::get_or(cfg, "scheduler.policy", d::scheduler::policy));
  auto threads
    = caf::get_or(cfg, "scheduler.max-threads", d::scheduler::max_threads);
  auto throughput = caf::get_or(cfg, "scheduler.max-throughput",
                                d::scheduler::max_throughput);
  auto workers = caf::get_or(cfg, "middleman.workers", d::middleman::workers);
  auto ms = [](caf::timespan x) {
    return std::to_string(
      std::chrono::duration_cast<std::chrono::microseconds>(x).count());
  };
  auto sleep = ms(caf::get_or(cfg, "work-stealing.relaxed-sleep-duration",
                              d::work_stealing::relaxed_sleep_duration));
  auto moderate = ms(caf::get_or(cfg, "work-stealing.moderate-sleep-duration",
                                 d::work_stealing::moderate_sleep_duration));
  std::ostringstream text;
  text << "scheduler.policy=" << policy << " scheduler.max-threads=" << threads
       << " scheduler.max-throughput=" << throughput
       << " work-stealing.moderate-sleep-duration=" << moderate
       << "us work-stealing.relaxed-sleep-duration=" << sleep
       << "us middleman.workers=" << workers;
  for (auto& a : opts.caf_args)
    text << " " << a;
  std::ostringstream json;
  json << "{\"scheduler.policy\":\"" << policy
       << "\",\"scheduler.max-threads\":" << threads
       << ",\"scheduler.max-throughput\":" << throughput
       << ",\"work-stealing.moderate-sleep-us\":" << moderate
       << ",\"work-stealing.relaxed-sleep-us\":" << sleep
       << ",\"middleman.workers\":" << workers << "}";
  opts.caf_settings = text.str();
  opts.caf_settings_json = json.str();
}

} // namespace bench

int main(int argc, char** argv) {
  bench::options opts;
  bool serve = false;
  try {
    if (!bench::parse(argc, argv, opts, serve))
      return 2;
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n" << bench::usage;
    return 2;
  }
  if (serve)
    return bench::serve_main(opts);
  auto start = bench::bench_clock::now();
  {
    auto cfg = bench::make_config(opts, false);
    if (!cfg)
      return 2;
    bench::describe_settings(*cfg, opts);
    caf::actor_system sys{*cfg};
    std::cout << "ctxstore-bench: " << bench::machine()
              << "\nbuild: " << CTXSTORE_BUILD_TYPE << "; CAF " << CAF_VERSION
              << "; caf: " << opts.caf_settings
              << "\nvalue: " << bench::wire_size(sys)
              << " B in CAF's binary format (10 scalars, 50 items, 20 attrs;"
                 " the Python model: 2,274 B as JSON); median of "
              << opts.reps << " reps, each at most " << opts.max_ops
              << " ops or " << opts.max_time.count() << " ms"
              << (opts.smoke ? " (smoke run)" : "") << std::endl;
    bench::print_table_header(opts);
    bench::run_baselines(opts, sys);
    bench::run_local(opts, sys);
    if (opts.wants("durable"))
      bench::run_durable(opts, sys);
    if (opts.wants("resident"))
      bench::run_durable_resident(opts, sys);
  }
  if (opts.wants("scale")) {
    auto cfg = bench::make_config(opts, false);
    caf::actor_system sys{*cfg};
    bench::run_scale(opts, sys);
  }
  if (opts.wants("feed")) {
    {
      auto cfg = bench::make_config(opts, false);
      caf::actor_system sys{*cfg};
      bench::run_feed(opts, sys);
    }
    bench::run_feed_remote(opts);
  }
  if (opts.wants("remote"))
    bench::run_remote(opts);
  if (opts.wants("tls"))
    bench::run_tls(opts);
  if (opts.wants("python"))
    bench::run_python(opts);
  if (opts.wants("redis"))
    bench::run_redis(opts);
  bench::print_targets(opts);
  auto secs = std::chrono::duration<double>(bench::bench_clock::now() - start);
  std::cout << "bench: done in " << static_cast<int>(secs.count()) << " s"
            << std::endl;
  if (opts.smoke && !bench::smoke_complete())
    return 1;
  return 0;
}
