// Pattern: event emission during a long session (the reference's reason for
// snapshots). A job holds its context in one session for all its steps; after
// each step it commits and asks an emitter actor to publish the job's state to
// subscribers. The emitter reads a snapshot, which never waits for the
// session: with a lock-taking read the job would wait for itself forever.
// Output: one line per published event, one per subscriber, the final state,
// then "event_emission: ok".

#include <iostream>
#include <string>
#include <vector>

#include <boost/uuid/random_generator.hpp>
#include <caf/all.hpp>

#include "context_types.hpp"
#include "ctxstore/ctxstore.hpp"

using examples::cart;
using emit_atom = caf::atom_constant<caf::atom("emit")>;
using event_atom = caf::atom_constant<caf::atom("event")>;
using probe_atom = caf::atom_constant<caf::atom("probe")>;
constexpr int steps = 5, n_subscribers = 3;

// Publishes the last committed state of `id` to `subs` on each `emit`.
caf::behavior emitter(caf::event_based_actor* self, ctxstore::storage st,
                      ctxstore::context_id id, std::vector<caf::actor> subs) {
  return {
    [=](emit_atom) -> caf::result<uint64_t> {
      auto rp = self->make_response_promise<uint64_t>();
      ctxstore::async_client{self, st}.snapshot_versioned<cart>(id).then(
        [=](ctxstore::versioned<cart> v) mutable {
          for (auto& sub : subs) // fire and forget
            self->send(sub, event_atom::value, v.version, v.value);
          rp.deliver(v.version);
        },
        [=](caf::error& e) mutable { rp.deliver(e); });
      return rp;
    },
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
  {
    auto s = client.acquire<cart>(id); // held through every step
    for (int step = 1; step <= steps; ++step) {
      s->items.push_back({"step" + std::to_string(step), 1});
      s->total = step;
      s.commit();                       // publish this step, keep the session
      s->items.push_back({"draft", 1}); // the next step's unfinished work
      ask(emit_atom::value, [&](uint64_t version) {
        std::cout << "emit: version " << version << " (total " << step
                  << ") published while session " << s.token() << " is held"
                  << std::endl;
      });
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
