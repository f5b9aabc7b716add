#include "ctxstore/backend.hpp"

#include <cstdlib>
#include <string>

#include "ctxstore/error.hpp"

namespace ctxstore {

namespace {

caf::error malformed(const std::string& uri, const char* why) {
  return make_error(errc::bad_request, "backend \"" + uri + "\": " + why
                                         + " (expected sqlite:PATH or "
                                           "redis://HOST:PORT/PREFIX)");
}

} // namespace

caf::expected<std::shared_ptr<backend>> open_backend(const std::string& uri) {
  const std::string sqlite = "sqlite:";
  const std::string redis = "redis://";
  if (uri.compare(0, sqlite.size(), sqlite) == 0) {
    auto path = uri.substr(sqlite.size());
    if (path.empty())
      return malformed(uri, "no file");
    return open_sqlite(path);
  }
  if (uri.compare(0, redis.size(), redis) != 0)
    return malformed(uri, "unknown kind");
  auto rest = uri.substr(redis.size());
  auto slash = rest.find('/');
  auto address = rest.substr(0, slash);
  auto prefix = slash == std::string::npos ? std::string{"ctxstore"}
                                           : rest.substr(slash + 1);
  if (prefix.empty())
    prefix = "ctxstore";
  auto colon = address.rfind(':');
  auto host = address.substr(0, colon);
  long port = 6379;
  if (colon != std::string::npos) {
    auto digits = address.substr(colon + 1);
    char* end = nullptr;
    port = std::strtol(digits.c_str(), &end, 10);
    if (digits.empty() || *end != '\0' || port <= 0 || port > 65535)
      return malformed(uri, "bad port");
  }
  if (host.empty())
    return malformed(uri, "no host");
  return open_redis(host, static_cast<uint16_t>(port), prefix);
}

} // namespace ctxstore
