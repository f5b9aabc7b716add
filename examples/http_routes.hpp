#pragma once

// The routes of the HTTP example (http_front_end.cpp): a complete request in,
// its answer out, with a blocking_client (the calling thread may wait for a
// cart that is in another request's session). No I/O here: the server reads
// and writes. Routes, bodies and answers: see http_front_end.cpp.

#include <cstdint>
#include <string>
#include <vector>

#include <boost/beast/http.hpp>
#include <boost/uuid/string_generator.hpp>

#include "context_types.hpp"
#include "ctxstore/blocking_client.hpp"
#include "ctxstore/error.hpp"
#include "http_json.hpp"

namespace examples {

namespace http = boost::beast::http;
using request = http::request<http::string_body>;
using response = http::response<http::string_body>;

/// The largest `total` a PUT may set: far enough below INT64_MAX that adding
/// quantities of at most 1000 to it cannot overflow (it would take 9 * 10^15
/// updates).
constexpr int64_t max_total = 1'000'000'000'000'000;

/// An answer with `json` as its body; the connection closes after it.
inline response reply(http::status status, const std::string& json) {
  response res{status, 11};
  res.set(http::field::content_type, "application/json");
  res.keep_alive(false);
  res.body() = json + "\n";
  res.prepare_payload();
  return res;
}

/// An error answer: {"error":"<code>","message":"<what is wrong>"}.
inline response fail(http::status status, const std::string& code,
                     const std::string& message) {
  return reply(status, error_json(code, message));
}

/// GET /metrics: the storage's metrics for Prometheus (text format 0.0.4).
inline response metrics(ctxstore::blocking_client& client, const request& req) {
  if (req.method() != http::verb::get)
    return fail(http::status::method_not_allowed, "method_not_allowed",
                std::string{req.method_string()} + " /metrics");
  try {
    response res{http::status::ok, 11};
    res.set(http::field::content_type, "text/plain; version=0.0.4");
    res.keep_alive(false);
    res.body() = client.metrics();
    res.prepare_payload();
    return res;
  } catch (const ctxstore::error& e) {
    return fail(http::status::service_unavailable, ctxstore::to_string(e.code()),
                e.what());
  }
}

/// The answer to `req` (any route but POST /shutdown, which is the server's).
inline response handle(ctxstore::blocking_client& client, const request& req) {
  std::vector<std::string> parts; // "/contexts/cart/<uuid>[/update]"
  std::string target{req.target()};
  if (target == "/metrics")
    return metrics(client, req);
  for (size_t pos = 0; pos != std::string::npos;) {
    auto next = target.find('/', pos + 1);
    parts.push_back(target.substr(pos + 1, next - pos - 1));
    pos = next;
  }
  bool update = parts.size() == 4 && parts[3] == "update";
  if (parts.size() < 3 || parts.size() > 4 || parts[0] != "contexts"
      || (parts.size() == 4 && !update))
    return fail(http::status::not_found, "not_found", "no route " + target);
  if (parts[1] != "cart")
    return fail(http::status::not_found, "unknown_type",
                "no context type called " + dump(parts[1]));
  ctxstore::context_id id;
  try {
    id = boost::uuids::string_generator{}(parts[2]);
  } catch (const std::exception&) {
    return fail(http::status::bad_request, "bad_request",
                "not a UUID: " + dump(parts[2]));
  }
  auto verb = req.method();
  try {
    if (update && verb == http::verb::post) {
      auto body = parse_object(req.body(), {"sku", "qty"});
      auto sku = string_field(body, "sku");
      auto qty = integer_field(body, "qty", 1, 1000);
      if (sku.empty())
        throw bad_body{"field \"sku\" must not be empty"};
      auto s = client.acquire<cart>(id); // waits for other updates
      s->items.push_back({sku, static_cast<int>(qty)});
      s->total += qty;
      ctxstore::versioned<cart> after{*s, s.version() + 1}; // release: +1
      s.release();
      return reply(http::status::ok, cart_json(id, after));
    }
    if (!update && verb == http::verb::put) {
      auto body = parse_object(req.body(), {"owner", "total"});
      cart c;
      c.owner = string_field(body, "owner");
      c.total = integer_field(body, "total", 0, max_total, 0); // 0 if missing
      client.store<cart>(id, std::move(c));
    }
    if (!update && (verb == http::verb::get || verb == http::verb::put))
      return reply(http::status::ok,
                   cart_json(id, client.snapshot_versioned<cart>(id)));
    return fail(http::status::method_not_allowed, "method_not_allowed",
                std::string{req.method_string()} + " " + target);
  } catch (const bad_body& e) {
    return fail(http::status::bad_request, "bad_request", e.what());
  } catch (const ctxstore::error& e) {
    auto code = e.code(); // e.g. the nil UUID is a bad_request
    auto status = code == ctxstore::errc::no_such_context
                    ? http::status::not_found
                  : code == ctxstore::errc::bad_request
                    ? http::status::bad_request
                    : http::status::service_unavailable;
    return fail(status, ctxstore::to_string(code), e.what());
  } catch (const std::exception& e) {
    return fail(http::status::internal_server_error, "internal", e.what());
  }
}

} // namespace examples
