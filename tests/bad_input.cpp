#include "fixture.hpp"

#include <vector>

using namespace ctxstore;
using namespace ctxstore::messages;

namespace {

/// Sends one raw request and returns the ctxstore error code it failed with,
/// or nothing if it succeeded.
template <class... Ts>
caf::optional<errc> raw_error(caf::actor_system& sys, const caf::actor& dest,
                              Ts&&... xs) {
  caf::scoped_actor self{sys};
  caf::optional<errc> result;
  bool answered = false;
  self->request(dest, std::chrono::seconds{10}, std::forward<Ts>(xs)...)
    .receive([&](caf::message&) { answered = true; },
             [&](caf::error& err) {
               answered = true;
               if (err.category() == error_category)
                 result = static_cast<errc>(err.code());
               else
                 result = errc::storage_down;
             });
  REQUIRE(answered);
  return result;
}

caf::message value_of(cart x) {
  return caf::make_message(std::move(x));
}

} // namespace

SCENARIO("a value of another type than registered is a type mismatch",
         "[bad_input][type]") {
  fixture f;
  auto id = new_id();
  auto& reg = f.store.registry();
  f.client->store<cart>(id, cart{"ann", {}, {}, 1});
  WHEN("someone stores an order under the cart type") {
    auto err
      = raw_error(f.sys, reg, store_atom::value, context_key{"cart", id},
                  payload{caf::make_message(order{"paid"})}, uint64_t{0});
    THEN("it fails with type_mismatch and the cart is unchanged") {
      REQUIRE(err);
      CHECK(*err == errc::type_mismatch);
      auto v = f.client->snapshot_versioned<cart>(id);
      CHECK(v.version == 1);
      CHECK(v.value.owner == "ann");
    }
  }
  WHEN("someone creates a new context with a mismatched value") {
    auto fresh = new_id();
    auto err
      = raw_error(f.sys, reg, store_atom::value, context_key{"order", fresh},
                  payload{value_of(cart{})}, uint64_t{0});
    THEN("it fails with type_mismatch and nothing is created") {
      REQUIRE(err);
      CHECK(*err == errc::type_mismatch);
      CHECK(f.client->stats().contexts == 1);
    }
  }
  WHEN("a holder commits a value of the wrong type") {
    caf::scoped_actor self{f.sys};
    grant g;
    self
      ->request(reg, caf::infinite, acquire_atom::value,
                context_key{"cart", id}, int64_t{-1})
      .receive([&](grant& x) { g = std::move(x); },
               [&](caf::error& err) { FAIL(f.sys.render(err)); });
    REQUIRE(g.owner);
    auto err
      = raw_error(f.sys, g.owner, commit_atom::value, context_key{"cart", id},
                  g.token, payload{caf::make_message(order{"x"})});
    THEN("the commit fails with type_mismatch and publishes nothing") {
      REQUIRE(err);
      // raw_error uses its own actor: that one is not the holder.
      CHECK(*err == errc::not_holder);
      caf::optional<errc> own;
      self
        ->request(g.owner, caf::infinite, commit_atom::value,
                  context_key{"cart", id}, g.token,
                  payload{caf::make_message(order{"x"})})
        .receive([&](uint64_t) {}, [&](caf::error& e) { own = to_errc(e); });
      CHECK(own == errc::type_mismatch);
      CHECK(f.client->snapshot_versioned<cart>(id).version == 1);
      self
        ->request(g.owner, caf::infinite, abort_atom::value,
                  context_key{"cart", id}, g.token)
        .receive([&](uint64_t) {},
                 [&](caf::error& e) { FAIL(f.sys.render(e)); });
    }
  }
  WHEN("the same id is asked for under another type") {
    THEN("it is another context") {
      CHECK(error_code_of([&] { f.client->snapshot<order>(id); })
            == errc::no_such_context);
    }
  }
}

SCENARIO("requests naming an unknown type or a nil id change nothing",
         "[bad_input]") {
  fixture f;
  auto& reg = f.store.registry();
  auto id = new_id();
  THEN("an unregistered type name is unknown_type") {
    auto err = raw_error(f.sys, reg, snapshot_atom::value,
                         context_key{"no-such-type", id});
    REQUIRE(err);
    CHECK(*err == errc::unknown_type);
  }
  THEN("an empty type name is unknown_type") {
    auto err = raw_error(f.sys, reg, store_atom::value, context_key{"", id},
                         payload{value_of(cart{})}, uint64_t{0});
    REQUIRE(err);
    CHECK(*err == errc::unknown_type);
  }
  THEN("a nil id is bad_request, for every operation") {
    auto nil = context_key{"cart", boost::uuids::uuid{}};
    CHECK(raw_error(f.sys, reg, snapshot_atom::value, nil)
          == errc::bad_request);
    CHECK(raw_error(f.sys, reg, acquire_atom::value, nil, int64_t{-1})
          == errc::bad_request);
    CHECK(raw_error(f.sys, reg, store_atom::value, nil,
                    payload{value_of(cart{})}, uint64_t{0})
          == errc::bad_request);
    CHECK(raw_error(f.sys, reg, erase_atom::value, nil, uint64_t{0})
          == errc::bad_request);
    CHECK(error_code_of(
            [&] { f.client->store<cart>(boost::uuids::uuid{}, cart{}); })
          == errc::bad_request);
  }
  THEN("a store without a value is bad_request") {
    auto err = raw_error(f.sys, reg, store_atom::value, context_key{"cart", id},
                         payload{}, uint64_t{0});
    REQUIRE(err);
    CHECK(*err == errc::bad_request);
  }
  THEN("nothing was created by any of them") {
    CHECK(f.client->stats().contexts == 0);
    CHECK(f.client->stats().owners == 0);
  }
}

namespace {

struct unregistered {
  int x = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, unregistered& x) {
  return f(caf::meta::type_name("unregistered"), x.x);
}

} // namespace

SCENARIO("a C++ type never registered as a context type is refused",
         "[bad_input]") {
  fixture f;
  CHECK(error_code_of([&] { f.client->store<unregistered>(new_id(), {}); })
        == errc::unknown_type);
  CHECK(error_code_of([&] { f.client->snapshot<unregistered>(new_id()); })
        == errc::unknown_type);
}

SCENARIO("registering a type twice under conflicting names is refused",
         "[bad_input]") {
  caf::actor_system_config cfg;
  add_context_type<cart>(cfg, "cart"); // same binding again: fine
  CHECK_THROWS_AS(add_context_type<cart>(cfg, "other-cart"), std::logic_error);
  CHECK_THROWS_AS(add_context_type<unregistered>(cfg, "cart"),
                  std::logic_error);
  CHECK_THROWS_AS(add_context_type<unregistered>(cfg, ""), std::logic_error);
}

SCENARIO("out-of-protocol messages are answered with an error", "[bad_input]") {
  fixture f;
  auto& reg = f.store.registry();
  auto id = new_id();
  f.client->store<cart>(id, cart{"ann", {}, {}, 1});
  // The owner's handle, as a holder would learn it from a grant.
  caf::actor owner;
  {
    caf::scoped_actor self{f.sys};
    self
      ->request(reg, caf::infinite, acquire_atom::value,
                context_key{"cart", id}, int64_t{-1})
      .receive([&](grant& g) { owner = g.owner; },
               [&](caf::error& err) { FAIL(f.sys.render(err)); });
    self
      ->request(owner, caf::infinite, abort_atom::value,
                context_key{"cart", id}, uint64_t{1})
      .receive([&](uint64_t) {},
               [&](caf::error& err) { FAIL(f.sys.render(err)); });
  }
  REQUIRE(owner);
  for (auto& dest : {reg, owner}) {
    CHECK(raw_error(f.sys, dest, 42) == errc::bad_request);
    CHECK(raw_error(f.sys, dest, snapshot_atom::value) == errc::bad_request);
    CHECK(raw_error(f.sys, dest, caf::atom("bogus"), context_key{"cart", id})
          == errc::bad_request);
    CHECK(raw_error(f.sys, dest, store_atom::value, context_key{"cart", id},
                    std::string{"not a payload"})
          == errc::bad_request);
  }
  THEN("an owner refuses requests for another key") {
    CHECK(raw_error(f.sys, owner, snapshot_atom::value,
                    context_key{"cart", new_id()})
          == errc::bad_request);
  }
  THEN("timer messages from strangers are ignored") {
    auto s = f.client->acquire<cart>(id);
    caf::anon_send(owner, lease_atom::value, s.token());
    s->total = 5;
    s.commit(); // would throw session_expired had the fake lease counted
    CHECK(f.client->snapshot<cart>(id).total == 5);
  }
  THEN("the storage keeps serving") {
    CHECK(f.client->snapshot<cart>(id).owner == "ann");
  }
}

SCENARIO("lookups of unknown ids leave nothing behind", "[bad_input][memory]") {
  fixture f;
  auto& reg = f.store.registry();
  auto before = f.client->stats();
  caf::scoped_actor self{f.sys};
  constexpr int batches = 100;
  constexpr int per_batch = 1000;
  int missing = 0;
  for (int b = 0; b < batches; ++b) {
    std::vector<decltype(self->request(reg, caf::infinite, snapshot_atom::value,
                                       context_key{}))>
      handles;
    handles.reserve(per_batch);
    for (int i = 0; i < per_batch; ++i)
      handles.emplace_back(self->request(reg, caf::infinite,
                                         snapshot_atom::value,
                                         context_key{"cart", new_id()}));
    for (auto& h : handles)
      h.receive([&](versioned_value&) {},
                [&](caf::error& err) {
                  if (to_errc(err) == errc::no_such_context)
                    ++missing;
                });
  }
  CHECK(missing == batches * per_batch);
  auto after = f.client->stats();
  CHECK(after.contexts == before.contexts);
  CHECK(after.owners == before.owners);
  CHECK(after.sessions == 0);
  CHECK(after.waiters == 0);
}

SCENARIO("an error sent as a plain message stops neither the storage nor an "
         "owner",
         "[bad_input][stray]") {
  fixture f;
  auto id = new_id();
  f.client->store<cart>(id, cart{"ann", {}, {}, 1});
  caf::actor owner;
  {
    // The grant names the owner of the context. With wait 0 the answer
    // comes at once (no timeout: its timer trips ThreadSanitizer in CAF).
    caf::scoped_actor self{f.sys};
    self
      ->request(f.store.registry(), caf::infinite, acquire_atom::value,
                context_key{"cart", id}, int64_t{0})
      .receive(
        [&](grant& g) {
          owner = g.owner;
          self->send(g.owner, abort_atom::value, context_key{"cart", id},
                     g.token);
        },
        [&](caf::error& err) { FAIL(describe(err)); });
  }
  REQUIRE(owner);
  // Enqueued before the requests below: by CAF's default, an actor that
  // receives an error it did not ask for stops with it.
  caf::anon_send(owner, caf::make_error(caf::sec::unexpected_message));
  caf::anon_send(f.store.registry(),
                 caf::make_error(caf::sec::unexpected_message));
  THEN("the context is still there and can be acquired") {
    auto s = f.client->acquire<cart>(id, std::chrono::seconds{10});
    CHECK(s->owner == "ann");
    s.release();
    CHECK(f.client->snapshot_versioned<cart>(id).version == 2);
    CHECK(f.client->stats().contexts == 1);
  }
}
