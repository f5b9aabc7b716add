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
  std::unordered_map<std::type_index, std::unique_ptr<std::string>> names;
  std::unordered_map<std::string, const std::type_info*> types;
};

type_table& table() {
  static type_table instance;
  return instance;
}

} // namespace

void bind_context_type(const std::type_info& type, const std::string& name) {
  if (name.empty())
    throw std::logic_error("ctxstore: a context type needs a non-empty name");
  auto& tbl = table();
  std::lock_guard<std::mutex> guard{tbl.mtx};
  auto i = tbl.types.find(name);
  if (i != tbl.types.end()) {
    if (*i->second != type)
      throw std::logic_error("ctxstore: context type name '" + name
                             + "' is already bound to another type");
    return;
  }
  if (tbl.names.count(std::type_index{type}) != 0)
    throw std::logic_error("ctxstore: this C++ type is already registered as '"
                           + *tbl.names[std::type_index{type}] + "'");
  tbl.names.emplace(std::type_index{type}, std::make_unique<std::string>(name));
  tbl.types.emplace(name, &type);
}

const std::string* context_type_name(const std::type_info& type) {
  auto& tbl = table();
  std::lock_guard<std::mutex> guard{tbl.mtx};
  auto i = tbl.names.find(std::type_index{type});
  return i != tbl.names.end() ? i->second.get() : nullptr;
}

const std::type_info* context_type_of(const std::string& name) {
  auto& tbl = table();
  std::lock_guard<std::mutex> guard{tbl.mtx};
  auto i = tbl.types.find(name);
  return i != tbl.types.end() ? i->second : nullptr;
}

} // namespace detail

} // namespace ctxstore
