#include "ctxstore/actors/durable.hpp"

#include <string>
#include <utility>

#include <boost/uuid/uuid_io.hpp>
#include <caf/message.hpp>

#include "ctxstore/detail/type_table.hpp"
#include "ctxstore/error.hpp"

namespace ctxstore::actors {

namespace {

std::string name_of(const messages::context_key& key) {
  return key.type + "/" + boost::uuids::to_string(key.id);
}

} // namespace

caf::expected<backend_write> write_of(const messages::context_key& key,
                                      uint64_t version, uint64_t replaces,
                                      const messages::payload& value) {
  auto codec = detail::context_codec_of(key.type);
  if (codec == nullptr)
    return make_error(errc::unknown_type, "unknown context type: " + key.type);
  backend_write w;
  if (auto err = codec->save(value.value, w.bytes))
    return make_error(errc::bad_request,
                      "the value of " + name_of(key) + " does not encode");
  w.type = key.type;
  w.id = key.id;
  w.version = version;
  w.replaces = replaces;
  return w;
}

caf::error backend_error(const caf::error& err) {
  switch (to_errc(err)) {
    case errc::conflict:
    case errc::backend_failure:
    case errc::bad_request:
      return err;
    default:
      return make_error(errc::backend_failure, describe(err));
  }
}

backend_write erase_of(const messages::context_key& key, uint64_t version) {
  backend_write w;
  w.type = key.type;
  w.id = key.id;
  w.version = version;
  w.replaces = version;
  w.erase = true;
  return w;
}

caf::expected<std::pair<uint64_t, messages::payload>>
value_of(const messages::context_key& key, const stored_value& x) {
  auto codec = detail::context_codec_of(key.type);
  messages::payload value;
  if (codec == nullptr || x.version == 0
      || codec->load(x.bytes.data(), x.bytes.size(), value.value))
    return make_error(errc::backend_failure,
                      "the stored value of " + name_of(key)
                        + " does not decode as its type");
  return std::make_pair(x.version, std::move(value));
}

uint64_t apply_unread_store(context& ctx, uint64_t version,
                            messages::payload value, effects& fx) {
  std::optional<std::pair<uint64_t, messages::payload>> before; // unread
  if (version > 1) {
    ctx.stats->activations += 1;
    before.emplace(version - 1, messages::payload{});
  }
  ctx.loaded(std::move(before), fx); // nothing waits: nothing runs
  return ctx.store(std::move(value), fx);
}

} // namespace ctxstore::actors
