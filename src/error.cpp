#include "ctxstore/error.hpp"

#include <caf/atom.hpp>
#include <caf/make_message.hpp>

namespace ctxstore {

namespace {

// The category of ctxstore's errors: the one CAF_ERROR_CODE_ENUM gives errc
// in error.hpp (messages::error_category is the same atom).
constexpr caf::atom_value category = caf::detail::error_factory<errc>::category;

} // namespace

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
  case errc::backend_failure:
    return "backend_failure";
  case errc::conflict:
    return "conflict";
  case errc::forbidden:
    return "forbidden";
  case errc::deadlock:
    return "deadlock";
  }
  return "errc(" + std::to_string(static_cast<int>(code)) + ")";
}

caf::error make_error(errc code, std::string detail) {
  return caf::error{static_cast<uint8_t>(code), category,
                    caf::make_message(std::move(detail))};
}

errc to_errc(const caf::error& err) {
  if (!err) // CAF 0.17 dereferences null for the category of "no error"
    return errc{};
  if (err.category() == category && err.code() != 0)
    return static_cast<errc>(err.code());
  // CAF's own failures: the receiver is gone, the connection broke, ...
  return errc::storage_down;
}

std::string describe(const caf::error& err) {
  if (!err)
    return "no error";
  if (err.category() == category) {
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

} // namespace ctxstore
