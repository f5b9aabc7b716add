// Pattern: event emission during a long session (the reference's reason for
// snapshots). A job holds its context in one session for all its steps and
// commits after each. An emitter actor watches the context (the change feed:
// pushed, in version order, never waiting for the session) and publishes
// each committed state to subscribers; with a lock-taking read the job would
// wait for itself forever. Output: one line per published event, one per
// subscriber, the final state, then "event_emission: ok".

#include <iostream>
#include <string>
#include <vector>

#include <boost/uuid/random_generator.hpp>
#include <caf/all.hpp>

#include "context_types.hpp"
#include "ctxstore/ctxstore.hpp"

using examples::cart;
using ready_atom = caf::atom_constant<caf::atom("ready")>;
using event_atom = caf::atom_constant<caf::atom("event")>;
using probe_atom = caf::atom_constant<caf::atom("probe")>;
constexpr int steps = 5, n_subscribers = 3;

struct emitter_state {
  ctxstore::watch_handle watch; // the watch ends with the emitter
};

// Publishes each committed state of `id` after version 1 (the empty job) to
// `subs` as the storage pushes it.
caf::behavior emitter(caf::stateful_actor<emitter_state>* self,
                      ctxstore::storage st, ctxstore::context_id id,
                      std::vector<caf::actor> subs) {
  self->state.watch = ctxstore::async_client{self, st}.watch<cart>(
    id, 1,
    [=](ctxstore::change<cart>& c) {
      if (!c.value || c.skipped > 0) // erased, or fell behind: none here
        return;
      std::cout << "emitter: version " << c.version << " (total "
                << c.value->total << ") pushed" << std::endl;
      for (auto& sub : subs) // fire and forget
        self->send(sub, event_atom::value, c.version, *c.value);
    },
    [=](caf::error& e) {
      std::cout << "emitter: " << ctxstore::describe(e) << std::endl;
    });
  return {
    [](ready_atom) { return true; }, // watching since it started

    [=](probe_atom) -> caf::result<std::string> { // what a lock would do
      auto rp = self->make_response_promise<std::string>();
      ctxstore::async_client{self, st}
        .acquire<cart>(id, std::chrono::milliseconds{0}) // try once
        .then(
          [=](ctxstore::async_session<cart>) mutable {
            rp.deliver(std::string{"got"});
          },
          [=](caf::error& e) mutable {
            rp.deliver(ctxstore::to_string(ctxstore::to_errc(e)));
          });
      return rp;
    },
  };
}

struct subscriber_state {
  int64_t count = 0; // events so far
  std::string seen;  // their totals, in arrival order
  bool ok = true;
};

// Checks each event (only committed steps, in order), then quits.
caf::behavior subscriber(caf::stateful_actor<subscriber_state>* self, int n,
                         std::shared_ptr<std::atomic<int>> bad) {
  return {[=](event_atom, uint64_t version, const cart& c) {
    auto& st = self->state;
    auto count = ++st.count;
    st.ok = st.ok && c.total == count && c.items.size() == size_t(count)
            && c.items.back().sku != "draft" && version == uint64_t(count + 1);
    st.seen += " " + std::to_string(c.total);
    if (count < steps)
      return;
    std::cout << "subscriber " << n
              << ": totals" + st.seen
                   + (st.ok ? ", committed steps only\n" : ", WRONG\n");
    *bad += st.ok ? 0 : 1;
    self->quit();
  }};
}

bool run(caf::actor_system& sys) {
  auto st = ctxstore::spawn_storage(sys);
  ctxstore::blocking_client client{sys, st};
  auto id = boost::uuids::random_generator{}();
  client.store<cart>(id, cart{"job", {}, {}, 0});
  auto bad = std::make_shared<std::atomic<int>>(0);
  std::vector<caf::actor> subs;
  for (int n = 1; n <= n_subscribers; ++n)
    subs.push_back(sys.spawn(subscriber, n, bad));
  auto em = sys.spawn(emitter, st, id, subs);
  caf::scoped_actor self{sys};
  auto ask = [&](auto atom, auto on_value) { // bounded: a hang is a failure
    self->request(em, std::chrono::seconds{5}, atom)
      .receive(on_value, [&](caf::error& e) {
        std::cout << "job: " << ctxstore::describe(e) << std::endl;
        ++*bad;
      });
  };
  ask(ready_atom::value, [](bool) {});
  {
    auto s = client.acquire<cart>(id); // held through every step
    for (int step = 1; step <= steps; ++step) {
      s->items.push_back({"step" + std::to_string(step), 1});
      s->total = step;
      s.commit();                       // publish this step, keep the session
      s->items.push_back({"draft", 1}); // the next step's unfinished work
      s->items.pop_back();
    }
    ask(probe_atom::value, [&](const std::string& code) {
      std::cout << "emitter: an acquire instead would wait: " << code
                << std::endl;
      *bad += code == "timeout" ? 0 : 1;
    });
  }                     // release
  self->wait_for(subs); // each quits after its last event
  auto v = client.snapshot_versioned<cart>(id);
  std::cout << "final: total=" << v.value.total
            << " items=" << v.value.items.size() << " version=" << v.version
            << std::endl;
  self->send_exit(em, caf::exit_reason::user_shutdown);
  return *bad == 0 && v.value.total == steps
         && v.value.items.size() == size_t{steps};
}

int main() {
  bool ok = false;
  {
    caf::actor_system_config cfg; // must outlive the actor system
    examples::add_example_types(cfg);
    caf::actor_system sys{cfg};
    ok = run(sys);
  }
  std::cout << (ok ? "event_emission: ok" : "event_emission: FAILED")
            << std::endl;
  return ok ? 0 : 1;
}
