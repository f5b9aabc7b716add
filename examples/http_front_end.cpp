// Pattern: an HTTP front end (Boost.Beast, header-only in libboost-dev) on
// 127.0.0.1. JSON in and out, written by hand for the example's cart:
//   GET  /contexts/cart/<uuid>         the last committed cart (a snapshot)
//   PUT  /contexts/cart/<uuid>         {"owner":"ann","total":0} stores a cart
//   POST /contexts/cart/<uuid>/update  {"sku":"pear","qty":2} adds in a session
//   POST /shutdown                     stops the server (exit code 0)
// Answers 200 {"type":"cart","id":..,"version":..,"owner":..,"total":..,
// "items":[{"sku":..,"qty":..}]}, or a JSON error {"error":"<code>",
// "message":".."}: 400 bad UUID or body, 404 unknown type, context or path,
// 405 wrong method. One request per connection (Connection: close). Kept
// short on purpose: synchronous reads have no timeout, so a client that
// connects and sends nothing occupies a worker; a real server would use
// Beast's asynchronous API with `beast::tcp_stream` deadlines.
//
// Threads: the main thread accepts; `--threads` workers (default 4) take the
// connections from a queue. A synchronous server has one thread per request
// in progress, so each worker uses a blocking_client: the thread is the
// session holder, and parallel updates of one cart queue at its owner. (An
// asynchronous server would hand each request to an actor with an
// async_client instead: see request_handlers.cpp.)
// Output: "http: listening on 127.0.0.1:<port>", a line per request,
// "http: stopped". Usage: http_front_end [--port N] [--threads N]

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <deque>
#include <functional>
#include <iostream>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/uuid/string_generator.hpp>
#include <boost/uuid/uuid_io.hpp>
#include <caf/all.hpp>

#include "context_types.hpp"
#include "ctxstore/ctxstore.hpp"

namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;
using examples::cart;
using request = http::request<http::string_body>;
using response = http::response<http::string_body>;

namespace {

std::mutex out_mtx; // one line at a time from the workers

std::string quote(const std::string& text) { // a JSON string literal
  std::string out = "\"";
  for (unsigned char c : text)
    if (c == '"' || c == '\\')
      out += {'\\', char(c)};
    else if (c < 0x20)
      out += "\\u00" + std::string{"0123456789abcdef"[c >> 4]}
             + "0123456789abcdef"[c & 15];
    else
      out += char(c);
  return out + "\"";
}

std::string to_json(const ctxstore::context_id& id,
                    const ctxstore::versioned<cart>& v) {
  std::string items;
  for (auto& x : v.value.items)
    items += (items.empty() ? "" : ",") + std::string{"{\"sku\":"}
             + quote(x.sku) + ",\"qty\":" + std::to_string(x.qty) + "}";
  return "{\"type\":\"cart\",\"id\":" + quote(to_string(id)) + ",\"version\":"
         + std::to_string(v.version) + ",\"owner\":" + quote(v.value.owner)
         + ",\"total\":" + std::to_string(v.value.total) + ",\"items\":["
         + items + "]}";
}

// The value of "key" in a flat JSON object: a string's text or a number's
// digits; nothing if it is missing or malformed.
std::optional<std::string> field(const std::string& body,
                                 const std::string& key) {
  auto pos = body.find(quote(key));
  if (pos == std::string::npos)
    return std::nullopt;
  pos = body.find_first_not_of(" \t\r\n", pos + key.size() + 2);
  if (pos == std::string::npos || body[pos] != ':')
    return std::nullopt;
  pos = body.find_first_not_of(" \t\r\n", pos + 1);
  if (pos == std::string::npos)
    return std::nullopt;
  std::string out;
  if (body[pos] != '"') { // a number
    while (pos < body.size()
           && (std::isdigit(static_cast<unsigned char>(body[pos]))
               || body[pos] == '-'))
      out += body[pos++];
    return out.empty() ? std::nullopt : std::optional<std::string>{out};
  }
  for (++pos; pos < body.size() && body[pos] != '"'; ++pos)
    out += body[pos] == '\\' && pos + 1 < body.size() ? body[++pos] : body[pos];
  return pos < body.size() ? std::optional<std::string>{out} : std::nullopt;
}

response reply(http::status status, const std::string& json) {
  response res{status, 11};
  res.set(http::field::content_type, "application/json");
  res.keep_alive(false);
  res.body() = json + "\n";
  res.prepare_payload();
  return res;
}

response fail(http::status status, const std::string& code,
              const std::string& message) {
  return reply(status, "{\"error\":" + quote(code)
                         + ",\"message\":" + quote(message) + "}");
}

int64_t number(const std::optional<std::string>& text) { // throws if bad
  if (!text)
    throw std::invalid_argument{"missing number"};
  return std::stoll(*text);
}

response handle(ctxstore::blocking_client& client, const request& req) {
  std::vector<std::string> parts; // "/contexts/cart/<uuid>[/update]"
  std::string target{req.target()};
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
                "no context type called " + quote(parts[1]));
  ctxstore::context_id id;
  try {
    id = boost::uuids::string_generator{}(parts[2]);
  } catch (const std::exception&) {
    return fail(http::status::bad_request, "bad_request",
                "not a UUID: " + quote(parts[2]));
  }
  auto verb = req.method();
  try {
    if (update && verb == http::verb::post) {
      auto sku = field(req.body(), "sku");
      auto qty = number(field(req.body(), "qty"));
      if (!sku || qty < 1 || qty > 1000)
        throw std::invalid_argument{"need a sku and a qty in 1..1000"};
      auto s = client.acquire<cart>(id); // waits for other updates
      s->items.push_back({*sku, static_cast<int>(qty)});
      s->total += qty;
      ctxstore::versioned<cart> after{*s, s.version() + 1}; // release: +1
      s.release();
      return reply(http::status::ok, to_json(id, after));
    }
    if (!update && verb == http::verb::put) {
      auto owner = field(req.body(), "owner");
      auto total = field(req.body(), "total");
      if (!owner)
        throw std::invalid_argument{"need an owner"};
      client.store<cart>(id, cart{*owner, {}, {}, total ? number(total) : 0});
    }
    if (!update && (verb == http::verb::get || verb == http::verb::put))
      return reply(http::status::ok,
                   to_json(id, client.snapshot_versioned<cart>(id)));
    return fail(http::status::method_not_allowed, "method_not_allowed",
                std::string{req.method_string()} + " " + target);
  } catch (const ctxstore::error& e) {
    auto code = e.code(); // e.g. the nil UUID is a bad_request
    auto status = code == ctxstore::errc::no_such_context
                    ? http::status::not_found
                  : code == ctxstore::errc::bad_request
                    ? http::status::bad_request
                    : http::status::service_unavailable;
    return fail(status, ctxstore::to_string(code), e.what());
  } catch (const std::exception& e) { // a malformed body
    return fail(http::status::bad_request, "bad_request", e.what());
  }
}

// Connections from the acceptor to the workers; an empty optional: stop.
struct queue {
  std::mutex mtx;
  std::condition_variable cv;
  std::deque<std::optional<tcp::socket>> items;
  void push(std::optional<tcp::socket> x) {
    std::lock_guard<std::mutex> guard{mtx};
    items.push_back(std::move(x));
    cv.notify_all(); // the stop mark is for every worker
  }
  std::optional<tcp::socket> pop() {
    std::unique_lock<std::mutex> guard{mtx};
    cv.wait(guard, [this] { return !items.empty(); });
    auto x = std::move(items.front());
    if (x)
      items.pop_front(); // leave the stop mark for the other workers
    return x;
  }
};

// A worker: serves one connection at a time until the queue says stop;
// `on_shutdown` runs after the answer to POST /shutdown went out.
void serve(queue& conns, ctxstore::blocking_client client,
           const std::function<void()>& on_shutdown) {
  while (auto sock = conns.pop()) {
    boost::beast::flat_buffer buf;
    boost::beast::error_code ec;
    request req;
    http::read(*sock, buf, req, ec);
    if (ec)
      continue; // closed or garbage: drop the connection
    bool stop = req.target() == "/shutdown" && req.method() == http::verb::post;
    auto res = stop ? reply(http::status::ok, "{\"stopping\":true}")
                    : handle(client, req);
    {
      std::lock_guard<std::mutex> guard{out_mtx};
      std::cout << "http: " << req.method_string() << " " << req.target()
                << " -> " << res.result_int() << std::endl;
    }
    http::write(*sock, res, ec);
    sock->shutdown(tcp::socket::shutdown_both, ec);
    if (stop)
      on_shutdown();
  }
}

} // namespace

int main(int argc, char** argv) {
  unsigned short port = 0;
  int n_workers = 4;
  try {
    for (int i = 1; i < argc; i += 2) {
      std::string arg = argv[i];
      if (i + 1 == argc || (arg != "--port" && arg != "--threads"))
        throw std::invalid_argument{arg};
      auto value = std::stoi(argv[i + 1]);
      if (value < (arg == "--port" ? 0 : 1) || value > 65535)
        throw std::out_of_range{arg};
      if (arg == "--port")
        port = static_cast<unsigned short>(value);
      else
        n_workers = value;
    }
  } catch (const std::exception&) {
    std::cerr << "usage: http_front_end [--port N] [--threads N]\n";
    return 2;
  }
  {
    caf::actor_system_config cfg; // must outlive the actor system
    examples::add_example_types(cfg);
    caf::actor_system sys{cfg};
    auto st = ctxstore::spawn_storage(sys);
    auto localhost = boost::asio::ip::make_address("127.0.0.1");
    boost::asio::io_context ioc;
    tcp::acceptor acceptor{ioc};
    boost::beast::error_code ec;
    acceptor.open(tcp::v4(), ec);
    if (!ec)
      acceptor.bind({localhost, port}, ec);
    if (!ec)
      acceptor.listen(boost::asio::socket_base::max_listen_connections, ec);
    if (ec) {
      std::cerr << "http: cannot listen on port " << port << ": "
                << ec.message() << std::endl;
      return 1; // `st` goes before `sys`
    }
    port = acceptor.local_endpoint().port();
    std::cout << "http: listening on 127.0.0.1:" << port << std::endl;
    queue conns;
    std::atomic<bool> stopping{false};
    auto on_shutdown = [&] { // a connection wakes the blocked accept below
      boost::beast::error_code ignored;
      if (!stopping.exchange(true))
        tcp::socket{ioc}.connect({localhost, port}, ignored);
    };
    std::vector<std::thread> workers;
    for (int w = 0; w < n_workers; ++w)
      workers.emplace_back(serve, std::ref(conns),
                           ctxstore::blocking_client{sys, st},
                           std::cref(on_shutdown));
    while (!stopping) {
      tcp::socket sock{ioc};
      acceptor.accept(sock, ec);
      if (!ec && !stopping)
        conns.push(std::move(sock));
    }
    conns.push(std::nullopt);
    for (auto& w : workers)
      w.join(); // their clients are gone before `st` and `sys`
  }
  std::cout << "http: stopped" << std::endl;
  return 0;
}
