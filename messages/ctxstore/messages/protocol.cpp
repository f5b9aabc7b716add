#include "ctxstore/messages/protocol.hpp"

#include <boost/uuid/uuid_io.hpp>
#include <string>
#include <vector>

#include <caf/binary_deserializer.hpp>
#include <caf/message.hpp>

#include "ctxstore/actors/peer_limits.hpp"
#include "ctxstore/detail/memory_limits.hpp"
#include "ctxstore/detail/type_table.hpp"

namespace ctxstore::messages {

static_assert(error_category == caf::detail::error_factory<errc>::category,
              "make_error and the protocol must use the same error category");

namespace {

// The forms of a payload on the wire (the first byte).
constexpr uint8_t empty_form = 0;
constexpr uint8_t codec_form = 1; // type name, then value_writer's bytes
constexpr uint8_t caf_form = 2;   // a caf::message, as CAF writes it

/// Empties `buf` for its next use on this thread, and gives its memory back
/// if it grew beyond detail::kept_buffer_bytes (a large value crossed the
/// network once; the middleman's thread lives as long as the actor system).
void done_with(std::vector<char>& buf) {
  if (buf.capacity() > detail::kept_buffer_bytes)
    std::vector<char>{}.swap(buf);
  else
    buf.clear();
}

/// Calls done_with(buf) when it goes out of scope.
struct done_with_guard {
  std::vector<char>& buf;
  ~done_with_guard() {
    done_with(buf);
  }
};

} // namespace

caf::error save_payload(caf::serializer& sink, const payload& x) {
  uint8_t form = empty_form;
  if (x.value.empty())
    return sink(form);
  // A peer that does not read its answers is cut off (peer_limits.hpp); what
  // is still written for it goes nowhere.
  if (actors::peer_over_limit(sink))
    return sink(form);
  auto rtti = x.value.type(0);
  auto entry = x.value.size() == 1 && rtti.second != nullptr
                 ? detail::context_codec_of(*rtti.second)
                 : nullptr;
  if (entry == nullptr) {
    form = caf_form;
    auto copy = x.value; // CAF's inspectors take non-const references
    return sink(form, copy);
  }
  form = codec_form;
  thread_local std::vector<char> bytes;
  bytes.clear();
  done_with_guard guard{bytes};
  if (auto err = entry->second.save(x.value, bytes))
    return err;
  return sink(form, const_cast<std::string&>(entry->first), bytes);
}

caf::error load_payload(caf::deserializer& source, payload& x) {
  uint8_t form = 0;
  x.wire_bytes = 0;
  if (auto err = source(form))
    return err;
  switch (form) {
  case empty_form:
    x.value = caf::message{};
    return caf::none;
  case codec_form: {
    std::string name;
    thread_local std::vector<char> bytes;
    done_with_guard guard{bytes};
    if (auto err = source(name, bytes))
      return err;
    x.wire_bytes = bytes.size();
    auto codec = detail::context_codec_of(name);
    if (codec == nullptr)
      return caf::sec::unknown_type;
    return codec->load(bytes.data(), bytes.size(), x.value);
  }
  case caf_form: {
    // Measured where CAF reads a node's messages (binary_deserializer).
    auto binary = dynamic_cast<caf::binary_deserializer*>(&source);
    auto before = binary != nullptr ? binary->remaining() : 0;
    auto err = source(x.value);
    if (binary != nullptr)
      x.wire_bytes = before - binary->remaining();
    return err;
  }
  default:
    return caf::sec::invalid_argument;
  }
}

caf::error missing_context(const context_key& key) {
  return make_error(errc::no_such_context, "No " + key.type
                                             + " context known for "
                                             + boost::uuids::to_string(key.id));
}

caf::error validate_key(const context_key& key) {
  if (key.type.empty())
    return make_error(errc::unknown_type, "empty context type name");
  if (detail::context_type_of(key.type) == nullptr)
    return make_error(errc::unknown_type, "unknown context type: " + key.type);
  if (key.id.is_nil())
    return make_error(errc::bad_request, "nil context id");
  return caf::none;
}

void add_protocol_types(caf::actor_system_config& cfg) {
  cfg.add_message_type<boost::uuids::uuid>("ctxstore.uuid");
  cfg.add_message_type<context_key>("ctxstore.key");
  cfg.add_message_type<payload>("ctxstore.payload");
  cfg.add_message_type<grant>("ctxstore.grant");
  cfg.add_message_type<versioned_value>("ctxstore.versioned");
  cfg.add_message_type<storage_stats>("ctxstore.stats");
  cfg.add_message_type<context_info>("ctxstore.info");
  cfg.add_error_category(
    error_category, [](uint8_t code, caf::atom_value, const caf::message& ctx) {
      auto text = "ctxstore::" + to_string(static_cast<errc>(code));
      if (ctx.match_elements<std::string>())
        text += " (" + ctx.get_as<std::string>(0) + ")";
      return text;
    });
}

} // namespace ctxstore::messages
