// A program outside the ctxstore tree, built against an installed ctxstore
// (tests/consumer/run.sh): it stores one context, reads it back through a
// snapshot and prints "consumer: ok" only if the value and version match.

#include <iostream>
#include <string>

#include <boost/uuid/random_generator.hpp>
#include <caf/all.hpp>

#include "ctxstore/ctxstore.hpp"

struct note {
  std::string text;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, note& x) {
  return f(caf::meta::type_name("note"), x.text);
}

int main() {
  bool ok = false;
  {
    caf::actor_system_config cfg;
    ctxstore::add_context_type<note>(cfg, "note");
    caf::actor_system sys{cfg};
    auto st = ctxstore::spawn_storage(sys);
    ctxstore::blocking_client client{sys, st};
    auto id = boost::uuids::random_generator{}();
    client.store<note>(id, note{"hello"});
    auto v = client.snapshot_versioned<note>(id);
    std::cout << "consumer: snapshot text=" << v.value.text
              << " version=" << v.version << std::endl;
    ok = v.value.text == "hello" && v.version == 1;
  } // client and storage go before the actor system
  std::cout << (ok ? "consumer: ok" : "consumer: FAILED") << std::endl;
  return ok ? 0 : 1;
}
