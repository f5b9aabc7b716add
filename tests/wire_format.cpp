#include "fixture.hpp"

#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/io/middleman.hpp>

// Every protocol message must survive CAF's binary serialization, the format
// the middleman uses between nodes.

using namespace ctxstore;
using namespace ctxstore::messages;

namespace {

caf::message round_trip(caf::actor_system& sys, const caf::message& msg) {
  std::vector<char> buf;
  caf::binary_serializer sink{sys, buf};
  auto copy = msg;
  REQUIRE_FALSE(sink(copy));
  REQUIRE_FALSE(buf.empty()); // an unregistered type writes nothing
  caf::message result;
  caf::binary_deserializer source{sys, buf};
  REQUIRE_FALSE(source(result));
  return result;
}

cart sample_cart() {
  cart c;
  c.owner = "ann";
  c.items = {{"apple", 2}, {"pear", 5}};
  c.tags = {{"channel", "web"}, {"tier", "gold"}};
  c.total = 42;
  return c;
}

} // namespace

SCENARIO("protocol messages survive the binary wire format", "[wire]") {
  test_config cfg;
  cfg.load<caf::io::middleman>();
  caf::actor_system sys{cfg};
  auto id = new_id();
  context_key key{"cart", id};
  WHEN("a store request with a context value is serialized") {
    auto msg = caf::make_message(store_atom::value, key,
                                 payload{caf::make_message(sample_cart())},
                                 uint64_t{7});
    auto back = round_trip(sys, msg);
    THEN("the key, the value and the token arrive intact") {
      REQUIRE(back.match_elements<store_atom, context_key, payload,
                                  uint64_t>());
      CHECK(back.get_as<context_key>(1) == key);
      auto& value = back.get_as<payload>(2).value;
      REQUIRE(value.match_elements<cart>());
      auto& c = value.get_as<cart>(0);
      CHECK(c.owner == "ann");
      REQUIRE(c.items.size() == 2);
      CHECK(c.items[1].sku == "pear");
      CHECK(c.items[1].qty == 5);
      CHECK(c.tags.at("tier") == "gold");
      CHECK(c.total == 42);
      CHECK(back.get_as<uint64_t>(3) == 7);
    }
  }
  WHEN("a grant, a snapshot answer and stats are serialized") {
    auto owner = sys.spawn([]() -> caf::behavior { return {[](int) {}}; });
    auto msg = caf::make_message(
      grant{3, 4, payload{caf::make_message(sample_cart())}, owner},
      versioned_value{9, payload{caf::make_message(counter{5})}},
      storage_stats{1, 2, 3, 4});
    auto back = round_trip(sys, msg);
    THEN("they arrive intact") {
      REQUIRE(back.match_elements<grant, versioned_value, storage_stats>());
      auto& g = back.get_as<grant>(0);
      CHECK(g.token == 3);
      CHECK(g.version == 4);
      CHECK(g.owner == owner);
      CHECK(g.value.value.get_as<cart>(0).total == 42);
      auto& v = back.get_as<versioned_value>(1);
      CHECK(v.version == 9);
      CHECK(v.value.value.get_as<counter>(0).value == 5);
      auto& s = back.get_as<storage_stats>(2);
      CHECK(s.contexts == 1);
      CHECK(s.owners == 4);
    }
    caf::anon_send_exit(owner, caf::exit_reason::user_shutdown);
  }
  WHEN("a ctxstore error is serialized") {
    auto err = make_error(errc::no_such_context, "No cart context known");
    auto back = round_trip(sys, caf::make_message(err));
    THEN("its code and text arrive intact") {
      REQUIRE(back.match_elements<caf::error>());
      auto& e = back.get_as<caf::error>(0);
      CHECK(to_errc(e) == errc::no_such_context);
      CHECK(describe(e) == "No cart context known");
      CHECK(sys.render(e)
            == "ctxstore::no_such_context (No cart context known)");
    }
  }
}
