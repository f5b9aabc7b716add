#pragma once

// The benchmark's context values. `session_ctx` has the shape of the Python
// reference's model (../shared/bench/python_seed/ctxmodel.py): 10 scalar
// fields, 50 small items, a map of 20 strings; about 2 KB serialized.
// `tiny` is the small context of the scale scenario.

#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include <caf/actor_system_config.hpp>
#include <caf/meta/type_name.hpp>

#include "ctxstore/context_id.hpp"
#include "ctxstore/context_types.hpp"

namespace bench {

struct item {
  std::string sku;
  int32_t qty = 0;
  double price = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, item& x) {
  return f(caf::meta::type_name("bench.item"), x.sku, x.qty, x.price);
}

struct session_ctx {
  ctxstore::context_id user_id{};
  std::string tenant;
  std::string locale;
  int64_t counter = 0;
  double score = 0;
  bool active = false;
  int64_t created_at = 0; // microseconds since the epoch (Python: datetime)
  int64_t updated_at = 0;
  std::string step;
  int64_t version = 0;
  std::vector<item> items;
  std::map<std::string, std::string> attrs;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, session_ctx& x) {
  return f(caf::meta::type_name("bench.session"), x.user_id, x.tenant, x.locale,
           x.counter, x.score, x.active, x.created_at, x.updated_at, x.step,
           x.version, x.items, x.attrs);
}

/// The same values as the reference's `make_ctx(seed)`.
inline session_ctx make_ctx(int seed = 0) {
  session_ctx x;
  for (int i = 0; i < 16; ++i)
    x.user_id.data[i] = static_cast<uint8_t>(seed * 31 + i);
  x.tenant = "tenant-" + std::to_string(seed % 97);
  x.locale = "en-GB";
  x.score = 0.5;
  x.active = true;
  x.created_at = x.updated_at = 1795694400000000; // 2026-11-26T12:00Z
  x.step = "checkout";
  x.version = 1;
  char buf[16];
  for (int i = 0; i < 50; ++i) {
    snprintf(buf, sizeof(buf), "S%02d", i);
    x.items.push_back(item{buf, i % 7 + 1, 1.25 * i});
  }
  for (int i = 0; i < 20; ++i) {
    char key[8];
    snprintf(key, sizeof(key), "k%02d", i);
    snprintf(buf, sizeof(buf), "v%03d", i);
    x.attrs.emplace(key, buf);
  }
  return x;
}

/// The small context of the scale scenario.
struct tiny {
  int64_t n = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, tiny& x) {
  return f(caf::meta::type_name("bench.tiny"), x.n);
}

/// Registers the bench's context types (both processes of the remote run).
inline void add_bench_types(caf::actor_system_config& cfg) {
  ctxstore::add_context_type<session_ctx>(cfg, "session");
  ctxstore::add_context_type<tiny>(cfg, "tiny");
}

} // namespace bench
