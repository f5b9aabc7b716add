#include "fixture.hpp"

#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/io/middleman.hpp>

#include <array>
#include <list>
#include <map>
#include <set>
#include <unordered_map>

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

namespace {

enum class shade : int16_t { light = 3, dark = -7 };

/// A field of every kind the value codec knows, and some it leaves to CAF.
struct everything {
  bool flag = false;
  int8_t i8 = 0;
  uint16_t u16 = 0;
  int32_t i32 = 0;
  uint64_t u64 = 0;
  float f = 0;
  double d = 0;
  long double ld = 0; // left to CAF
  shade s = shade::light;
  std::string text;
  std::vector<cart> carts; // nested, with their own inspect
  std::map<std::string, int> by_name;
  std::unordered_map<int, std::string> by_number;
  std::set<std::string> names;
  std::list<int64_t> numbers;
  uint8_t raw[4] = {0, 0, 0, 0};
  std::array<int32_t, 3> triple{{0, 0, 0}};
  std::vector<bool> bits;                 // left to CAF
  caf::atom_value atom = caf::atom("");   // left to CAF
  std::chrono::milliseconds wait{0};      // left to CAF
  std::vector<std::pair<int, int>> pairs; // pairs left to CAF
  int saved_as = 0; // written by a save callback, checked by a load callback
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, everything& x) {
  auto before_save = caf::meta::save_callback([&]() -> caf::error {
    x.saved_as = x.i32 * 2;
    return caf::none;
  });
  auto after_load = caf::meta::load_callback([&]() -> caf::error {
    if (x.saved_as != x.i32 * 2)
      return caf::sec::invalid_argument;
    return caf::none;
  });
  return f(caf::meta::type_name("everything"), before_save, x.flag, x.i8,
           x.u16, x.i32, x.u64, x.f, x.d, x.ld, x.s, x.text, x.carts, x.by_name,
           x.by_number, caf::meta::omittable_if_empty(), x.names, x.numbers,
           x.raw, x.triple, x.bits, x.atom, x.wait, x.pairs,
           x.saved_as, after_load);
}

everything sample_everything() {
  everything x;
  x.flag = true;
  x.i8 = -5;
  x.u16 = 65000;
  x.i32 = -123456;
  x.u64 = 0xfedcba9876543210ull;
  x.f = 1.5f;
  x.d = -2.25e300;
  x.ld = 3.5L;
  x.s = shade::dark;
  x.text = std::string(300, 'x') + std::string("\0end", 4);
  x.carts = {sample_cart(), cart{"bob", {}, {}, -1}};
  x.by_name = {{"a", 1}, {"b", 2}};
  x.by_number = {{7, "seven"}, {-1, ""}};
  x.names = {"x", "y", "z"};
  x.numbers = {1, -2, 3};
  x.raw[0] = 0xff;
  x.raw[3] = 0x7f;
  x.triple = {{9, 8, 7}};
  x.bits = {true, false, true};
  x.atom = caf::atom("ctx");
  x.wait = std::chrono::milliseconds{250};
  x.pairs = {{1, 2}, {3, 4}};
  return x;
}

using codec = ctxstore::detail::value_codec<everything>;

} // namespace

SCENARIO("context values travel in the value codec's compact form",
         "[wire][codec]") {
  GIVEN("a value with a field of every kind") {
    auto msg = caf::make_message(sample_everything());
    std::vector<char> bytes;
    REQUIRE_FALSE(codec::save(msg, bytes));
    THEN("it is read back equal, callbacks included") {
      caf::message back;
      REQUIRE_FALSE(codec::load(bytes.data(), bytes.size(), back));
      REQUIRE(back.match_elements<everything>());
      auto& y = back.get_as<everything>(0);
      auto x = sample_everything();
      CHECK(y.flag == x.flag);
      CHECK(y.i8 == x.i8);
      CHECK(y.u16 == x.u16);
      CHECK(y.i32 == x.i32);
      CHECK(y.u64 == x.u64);
      CHECK(y.f == x.f);
      CHECK(y.d == x.d);
      CHECK(y.ld == x.ld);
      CHECK(y.s == x.s);
      CHECK(y.text == x.text);
      REQUIRE(y.carts.size() == 2);
      CHECK(y.carts[0].owner == "ann");
      REQUIRE(y.carts[0].items.size() == 2);
      CHECK(y.carts[0].items[1].sku == "pear");
      CHECK(y.carts[0].items[1].qty == 5);
      CHECK(y.carts[0].tags == x.carts[0].tags);
      CHECK(y.carts[1].total == -1);
      CHECK(y.by_name == x.by_name);
      CHECK(y.by_number == x.by_number);
      CHECK(y.names == x.names);
      CHECK(y.numbers == x.numbers);
      CHECK(std::equal(std::begin(y.raw), std::end(y.raw), std::begin(x.raw)));
      CHECK(y.triple == x.triple);
      CHECK(y.bits == x.bits);
      CHECK(y.atom == x.atom);
      CHECK(y.wait == x.wait);
      CHECK(y.pairs == x.pairs);
      CHECK(y.saved_as == x.i32 * 2); // set by the save callback
    }
    THEN("every truncation of it is an error, never a crash") {
      for (size_t n = 0; n < bytes.size(); ++n) {
        caf::message back;
        CHECK(codec::load(bytes.data(), n, back));
        CHECK(back.empty());
      }
    }
    THEN("trailing bytes are an error") {
      bytes.push_back(0);
      caf::message back;
      CHECK(codec::load(bytes.data(), bytes.size(), back));
    }
  }
  GIVEN("bytes that claim a huge list") {
    // A vector of 2^28 carts, then nothing: the reader must not reserve
    // memory for what the bytes cannot hold.
    std::vector<char> bytes{'\x80', '\x80', '\x80', '\x80', '\x01'};
    caf::message back;
    CHECK(ctxstore::detail::value_codec<std::vector<cart>>::load(
      bytes.data(), bytes.size(), back));
  }
  GIVEN("a payload of a registered type and one of an unregistered type") {
    test_config cfg;
    caf::actor_system sys{cfg};
    auto cart_value = payload{caf::make_message(sample_cart())};
    auto plain_value = payload{caf::make_message(std::string{"not a context"})};
    auto size_of = [&](payload& x) {
      std::vector<char> buf;
      caf::binary_serializer sink{sys, buf};
      REQUIRE_FALSE(sink(x));
      return buf.size();
    };
    THEN("the registered one is smaller than CAF's form of the same value") {
      std::vector<char> caf_form;
      caf::binary_serializer sink{sys, caf_form};
      REQUIRE_FALSE(sink(cart_value.value));
      CHECK(size_of(cart_value) < caf_form.size());
    }
    THEN("both arrive intact") {
      auto back = round_trip(sys, caf::make_message(cart_value, plain_value,
                                                    payload{}));
      REQUIRE(back.match_elements<payload, payload, payload>());
      CHECK(back.get_as<payload>(0).value.get_as<cart>(0).owner == "ann");
      CHECK(back.get_as<payload>(1).value.get_as<std::string>(0)
            == "not a context");
      CHECK(back.get_as<payload>(2).value.empty());
    }
  }
}
