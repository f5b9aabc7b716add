#include "ctxstore/messages/protocol.hpp"

#include <boost/uuid/uuid_io.hpp>
#include <memory>
#include <mutex>
#include <typeindex>
#include <unordered_map>

#include <caf/message.hpp>

#include "ctxstore/context_types.hpp"

namespace ctxstore {

std::string to_string(errc code) {
  switch (code) {
  case errc::no_such_context:
    return "no_such_context";
  case errc::type_mismatch:
    return "type_mismatch";
  case errc::session_expired:
    return "session_expired";
  case errc::not_holder:
    return "not_holder";
  case errc::timeout:
    return "timeout";
  case errc::storage_down:
    return "storage_down";
  case errc::overloaded:
    return "overloaded";
  case errc::bad_request:
    return "bad_request";
  case errc::unknown_type:
    return "unknown_type";
  }
  return "errc(" + std::to_string(static_cast<int>(code)) + ")";
}

caf::error make_error(errc code, std::string detail) {
  return caf::error{static_cast<uint8_t>(code), messages::error_category,
                    caf::make_message(std::move(detail))};
}

errc to_errc(const caf::error& err) {
  if (!err) // CAF 0.17 dereferences null for the category of "no error"
    return errc{};
  if (err.category() == messages::error_category && err.code() != 0)
    return static_cast<errc>(err.code());
  // CAF's own failures: the receiver is gone, the connection broke, ...
  return errc::storage_down;
}

std::string describe(const caf::error& err) {
  if (!err)
    return "no error";
  if (err.category() == messages::error_category) {
    auto& ctx = err.context();
    if (ctx.match_elements<std::string>())
      return ctx.get_as<std::string>(0);
    return to_string(static_cast<errc>(err.code()));
  }
  return "storage unreachable: " + caf::to_string(err);
}

void throw_error(const caf::error& err) {
  throw error{to_errc(err), describe(err)};
}

namespace messages {

namespace {

// The forms of a payload on the wire (the first byte).
constexpr uint8_t empty_form = 0;
constexpr uint8_t codec_form = 1; // type name, then value_writer's bytes
constexpr uint8_t caf_form = 2;   // a caf::message, as CAF writes it

} // namespace

caf::error save_payload(caf::serializer& sink, const payload& x) {
  uint8_t form = empty_form;
  if (x.value.empty())
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
  if (auto err = entry->second.save(x.value, bytes))
    return err;
  return sink(form, const_cast<std::string&>(entry->first), bytes);
}

caf::error load_payload(caf::deserializer& source, payload& x) {
  uint8_t form = 0;
  if (auto err = source(form))
    return err;
  switch (form) {
  case empty_form:
    x.value = caf::message{};
    return caf::none;
  case codec_form: {
    std::string name;
    thread_local std::vector<char> bytes;
    if (auto err = source(name, bytes))
      return err;
    auto codec = detail::context_codec_of(name);
    if (codec == nullptr)
      return caf::sec::unknown_type;
    return codec->load(bytes.data(), bytes.size(), x.value);
  }
  case caf_form:
    return source(x.value);
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
  cfg.add_error_category(
    error_category, [](uint8_t code, caf::atom_value, const caf::message& ctx) {
      auto text = "ctxstore::" + to_string(static_cast<errc>(code));
      if (ctx.match_elements<std::string>())
        text += " (" + ctx.get_as<std::string>(0) + ")";
      return text;
    });
}

} // namespace messages

namespace detail {

namespace {

struct type_table {
  std::mutex mtx;
  // Entries are never removed, so pointers into them stay valid.
  std::unordered_map<std::type_index,
                     std::unique_ptr<std::pair<std::string, codec_functions>>>
    by_type;
  std::unordered_map<std::string,
                     std::pair<const std::type_info*, codec_functions>>
    by_name;
};

type_table& table() {
  static type_table instance;
  return instance;
}

} // namespace

void bind_context_type(const std::type_info& type, const std::string& name,
                       codec_functions codec) {
  if (name.empty())
    throw std::logic_error("ctxstore: a context type needs a non-empty name");
  auto& tbl = table();
  std::lock_guard<std::mutex> guard{tbl.mtx};
  auto i = tbl.by_name.find(name);
  if (i != tbl.by_name.end()) {
    if (*i->second.first != type)
      throw std::logic_error("ctxstore: context type name '" + name
                             + "' is already bound to another type");
    return;
  }
  auto j = tbl.by_type.find(std::type_index{type});
  if (j != tbl.by_type.end())
    throw std::logic_error("ctxstore: this C++ type is already registered as '"
                           + j->second->first + "'");
  tbl.by_type.emplace(std::type_index{type},
                      std::make_unique<std::pair<std::string, codec_functions>>(
                        name, codec));
  tbl.by_name.emplace(name, std::make_pair(&type, codec));
}

const std::pair<std::string, codec_functions>*
context_codec_of(const std::type_info& type) {
  auto& tbl = table();
  std::lock_guard<std::mutex> guard{tbl.mtx};
  auto i = tbl.by_type.find(std::type_index{type});
  return i != tbl.by_type.end() ? i->second.get() : nullptr;
}

const codec_functions* context_codec_of(const std::string& name) {
  auto& tbl = table();
  std::lock_guard<std::mutex> guard{tbl.mtx};
  auto i = tbl.by_name.find(name);
  return i != tbl.by_name.end() ? &i->second.second : nullptr;
}

const std::string* context_type_name(const std::type_info& type) {
  auto entry = context_codec_of(type);
  return entry != nullptr ? &entry->first : nullptr;
}

const std::type_info* context_type_of(const std::string& name) {
  auto& tbl = table();
  std::lock_guard<std::mutex> guard{tbl.mtx};
  auto i = tbl.by_name.find(name);
  return i != tbl.by_name.end() ? i->second.first : nullptr;
}

} // namespace detail

} // namespace ctxstore
