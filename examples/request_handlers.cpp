// Pattern: request handlers. A front actor spawns one short-lived handler
// actor per incoming request and delegates the request to it; the handler
// loads the cart by its UUID, updates it in a session (async_client), replies
// to the original requester and quits. Client threads send the requests.
// Output: one line for the handlers, one per cart (totals prove that no update
// was lost), the two refused requests, then "request_handlers: ok".

#include <iostream>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <boost/uuid/random_generator.hpp>
#include <boost/uuid/string_generator.hpp>
#include <boost/uuid/uuid_io.hpp>
#include <caf/all.hpp>

#include "context_types.hpp"
#include "ctxstore/ctxstore.hpp"

using examples::cart;
using add_atom = caf::atom_constant<caf::atom("add")>;
constexpr int n_clients = 4, per_client = 25; // requests per client thread

// One request: add `qty` of `sku` to the cart `text` (a UUID as it came over
// the wire). Replies (new version, new total, the handler's actor id).
caf::behavior handler(caf::event_based_actor* self, ctxstore::storage st) {
  return {[=](add_atom, const std::string& text, const std::string& sku,
              int qty) -> caf::result<uint64_t, int64_t, caf::actor_id> {
    ctxstore::context_id id;
    try {
      id = boost::uuids::string_generator{}(text);
    } catch (const std::exception&) {
      self->quit(); // after this message
      return ctxstore::make_error(ctxstore::errc::bad_request,
                                  "not a UUID: '" + text + "'");
    }
    auto rp = self->make_response_promise<uint64_t, int64_t, caf::actor_id>();
    auto fail = [=](caf::error& e) mutable {
      rp.deliver(e);
      self->quit();
    };
    ctxstore::async_client{self, st}.acquire<cart>(id).then(
      [=](ctxstore::async_session<cart> s) mutable {
        s->items.push_back({sku, qty});
        s->total += qty;
        auto total = s->total;
        s.release().then( // commit + end; the reply waits for the commit
          [=](uint64_t version) mutable {
            rp.deliver(version, total, self->id());
            self->quit(); // one request, one handler
          },
          fail);
      },
      fail);
    return rp;
  }};
}

// The front: one handler per request; `delegate` makes the handler's reply
// go straight to the requester.
caf::behavior front(caf::event_based_actor* self, ctxstore::storage st) {
  return {[=](add_atom a, std::string& text, std::string& sku, int qty) {
    return self->delegate(self->spawn(handler, st), a, std::move(text),
                          std::move(sku), qty);
  }};
}

bool run(caf::actor_system& sys) {
  auto st = ctxstore::spawn_storage(sys);
  ctxstore::blocking_client client{sys, st};
  boost::uuids::random_generator gen;
  std::vector<ctxstore::context_id> ids{gen(), gen()};
  client.store<cart>(ids[0], cart{"ann", {}, {}, 0});
  client.store<cart>(ids[1], cart{"bob", {}, {}, 0});
  auto server = sys.spawn(front, st);
  std::mutex mtx;
  std::set<caf::actor_id> handlers; // who answered
  int failed = 0;
  std::vector<std::thread> clients;
  for (int c = 0; c < n_clients; ++c)
    clients.emplace_back([&, c] {
      caf::scoped_actor self{sys};
      for (int n = 0; n < per_client; ++n)
        self
          ->request(server, std::chrono::seconds{10}, add_atom::value,
                    to_string(ids[n % 2]), "sku" + std::to_string(c), n % 3 + 1)
          .receive(
            [&](uint64_t, int64_t, caf::actor_id who) {
              std::lock_guard<std::mutex> guard{mtx};
              handlers.insert(who);
            },
            [&](caf::error& e) {
              std::lock_guard<std::mutex> guard{mtx};
              std::cout << "client: " << ctxstore::describe(e) << std::endl;
              ++failed;
            });
    });
  for (auto& t : clients)
    t.join();
  std::cout << "request_handlers: " << n_clients * per_client
            << " requests answered by " << handlers.size() << " handler actors"
            << std::endl;
  bool ok = failed == 0 && handlers.size() == n_clients * per_client;
  for (int i = 0; i < 2; ++i) { // each cart got every other request
    int64_t expected = 0;
    size_t expected_items = 0;
    for (int n = i; n < per_client; n += 2) {
      expected += n_clients * (n % 3 + 1);
      expected_items += n_clients;
    }
    auto v = client.snapshot_versioned<cart>(ids[i]);
    auto count = v.value.items.size();
    std::cout << "final: " << v.value.owner << " total=" << v.value.total
              << " items=" << count << " version=" << v.version
              << " (expected total " << expected << ")" << std::endl;
    ok = ok && v.value.total == expected && count == expected_items
         && v.version == count + 1; // one commit per request, after the store
  }
  caf::scoped_actor self{sys}; // an unknown cart, then a malformed id
  std::vector<ctxstore::errc> refused;
  for (auto bad : {to_string(gen()), std::string{"banana"}})
    self
      ->request(server, std::chrono::seconds{10}, add_atom::value, bad,
                std::string{"x"}, 1)
      .receive([&](uint64_t, int64_t, caf::actor_id) {},
               [&](caf::error& e) {
                 refused.push_back(ctxstore::to_errc(e));
                 std::cout << "refused: " << ctxstore::to_string(refused.back())
                           << ": " << ctxstore::describe(e) << std::endl;
               });
  ok = ok
       && refused
            == std::vector<ctxstore::errc>{ctxstore::errc::no_such_context,
                                           ctxstore::errc::bad_request};
  self->send_exit(server, caf::exit_reason::user_shutdown);
  return ok;
}

int main() {
  bool ok = false;
  {
    caf::actor_system_config cfg; // must outlive the actor system
    examples::add_example_types(cfg);
    caf::actor_system sys{cfg};
    ok = run(sys);
  }
  std::cout << (ok ? "request_handlers: ok" : "request_handlers: FAILED")
            << std::endl;
  return ok ? 0 : 1;
}
