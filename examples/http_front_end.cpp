// Pattern: an HTTP front end (Boost.Beast, header-only in libboost-dev) on
// 127.0.0.1, JSON in and out. This file is the server; the routes are in
// http_routes.hpp, the JSON (nlohmann/json) in http_json.hpp.
//   GET  /contexts/cart/<uuid>         the last committed cart (a snapshot)
//   GET  /metrics                      the storage's metrics (Prometheus)
//   PUT  /contexts/cart/<uuid>         {"owner":"ann","total":0} stores a cart
//   POST /contexts/cart/<uuid>/update  {"sku":"pear","qty":2} adds in a session
//   POST /shutdown                     stops accepting; once the connections
//                                      it has are done, exits with code 0
// Answers 200 {"type":"cart","id":..,"version":..,"owner":..,"total":..,
// "items":[{"sku":..,"qty":..}]}, or a JSON error {"error":"<code>",
// "message":"<what is wrong>"}: 400 bad UUID, body or request (`qty` is an
// integer in 1..1000, `total` in 0..10^15, no other fields), 403 /shutdown
// from a peer other than 127.0.0.1 or ::1 (another 127.x address counts as
// foreign), 404 unknown type, context or path, 405 wrong method, 413 a body
// over 1 MiB (answered, then closed). One request per connection.
//
// Limits, so that no client can hold up the others: a connection has
// `--timeout` seconds (default 5) from its accept to deliver its whole
// request, headers and body; one that is idle, sends a byte a second or
// less body than its Content-Length is closed then, unanswered. Writing the
// answer has the same deadline. Out of file descriptors (EMFILE), the accept
// loop retries every 100 ms instead of spinning.
//
// Threads: the main thread does all the I/O, asynchronously: it accepts,
// reads and writes with deadlines and never blocks. A complete request goes to
// one of `--threads` workers (default 4), which handle it with a
// blocking_client: the thread is the session holder, and parallel updates of
// one cart queue at its owner. The answer goes back to the main thread. (An
// actor-based server would hand each request to an actor with an
// async_client instead: see request_handlers.cpp.)
// Output: "http: listening on 127.0.0.1:<port>", a line per request,
// "http: stopped". Usage: http_front_end [--port N] [--threads N] [--timeout S]

#include <array>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <caf/all.hpp>

#include "ctxstore/ctxstore.hpp"
#include "http_routes.hpp"

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;
using examples::fail;
using examples::reply;
using examples::response;

namespace {

constexpr size_t max_body = 1024 * 1024; // larger: 413
constexpr auto accept_retry = std::chrono::milliseconds(100);
constexpr auto max_linger = std::chrono::seconds(1);

void log_line(const std::string& line) { // one line at a time from all threads
  static std::mutex mtx;
  std::lock_guard<std::mutex> guard{mtx};
  std::cout << "http: " << line << std::endl;
}

// Beast's errors for what a client sent, not the socket's.
bool is_parse_error(const beast::error_code& ec) {
  return ec.category()
         == http::make_error_code(http::error::bad_target).category();
}

// Whom POST /shutdown obeys: the addresses a local `curl` uses by default.
bool may_shut_down(boost::asio::ip::address peer) {
  if (peer.is_v6() && peer.to_v6().is_v4_mapped())
    peer = boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped,
                                            peer.to_v6());
  return peer == boost::asio::ip::make_address("127.0.0.1")
         || peer == boost::asio::ip::make_address("::1");
}

class connection;

// A complete request for the workers. Its guard keeps the I/O loop running
// until the answer was handed back to it.
struct job {
  std::shared_ptr<connection> conn;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> io;
};

// Jobs from the I/O thread to the workers; an empty optional: stop.
struct job_queue {
  std::mutex mtx;
  std::condition_variable cv;
  std::deque<std::optional<job>> items;
  void push(std::optional<job> x) {
    std::lock_guard<std::mutex> guard{mtx};
    items.push_back(std::move(x));
    cv.notify_all(); // the stop mark is for every worker
  }
  std::optional<job> pop() {
    std::unique_lock<std::mutex> guard{mtx};
    cv.wait(guard, [this] { return !items.empty(); });
    auto x = std::move(items.front());
    if (x)
      items.pop_front(); // leave the stop mark for the other workers
    return x;
  }
};

// What the I/O thread owns: the listening socket and the accept loop.
struct server {
  explicit server(std::chrono::seconds t) : timeout{t} {}
  std::chrono::seconds timeout;
  boost::asio::io_context ioc;
  tcp::acceptor acceptor{ioc};
  boost::asio::steady_timer retry{ioc}; // accept again after an error
  bool accept_failing = false;
  job_queue jobs;
  void accept();
  void stop() { // no more connections; run() returns after the last one
    beast::error_code ignored;
    acceptor.close(ignored);
    retry.cancel();
  }
};

// One connection, one request. Everything but `serve` runs on the I/O thread.
class connection : public std::enable_shared_from_this<connection> {
public:
  connection(tcp::socket sock, server& srv)
      : stream_{std::move(sock)}, srv_{srv} {
    beast::error_code ec;
    peer_ = stream_.socket().remote_endpoint(ec).address();
    parser_.body_limit(max_body);
  }

  void start() {
    // One deadline for the whole request, not for each read: a client that
    // sends a byte a second would otherwise hold its connection for ever.
    stream_.expires_after(srv_.timeout);
    http::async_read(stream_, buf_, parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       self->on_read(ec);
                     });
  }

  // On a worker thread: the store may make it wait (a cart in a session).
  void serve(ctxstore::blocking_client& client) {
    auto res = examples::handle(client, parser_.get());
    boost::asio::post(stream_.get_executor(), [self = shared_from_this(),
                                               res{std::move(res)}]() mutable {
      self->answer(std::move(res));
    });
  }

private:
  void on_read(beast::error_code ec) {
    if (ec == beast::error::timeout) // the stream closed the socket
      return log_line("closed a connection from " + peer_.to_string()
                      + ": no complete request within "
                      + std::to_string(srv_.timeout.count()) + " s");
    if (ec == http::error::body_limit)
      return answer(fail(http::status::payload_too_large, "too_large",
                         "the body is larger than 1 MiB"));
    if (ec == http::error::end_of_stream || ec == http::error::partial_message)
      return; // the client left
    if (is_parse_error(ec))
      return answer(fail(http::status::bad_request, "bad_request",
                         "malformed HTTP request: " + ec.message()));
    if (ec)
      return; // e.g. reset by the client
    auto& req = parser_.get();
    if (req.target() != "/shutdown" || req.method() != http::verb::post) {
      srv_.jobs.push(
        job{shared_from_this(), boost::asio::make_work_guard(srv_.ioc)});
    } else if (!may_shut_down(peer_)) {
      answer(fail(http::status::forbidden, "forbidden",
                  "POST /shutdown is accepted from 127.0.0.1 and ::1 only, not "
                    + peer_.to_string()));
    } else {
      srv_.stop();
      answer(reply(http::status::ok, "{\"stopping\":true}"));
    }
  }

  void answer(response res) {
    auto& req = parser_.get(); // its request line, if one came
    log_line(req.method_string().empty()
               ? "(no request line) -> " + std::to_string(res.result_int())
               : std::string{req.method_string()} + " "
                   + std::string{req.target()} + " -> "
                   + std::to_string(res.result_int()));
    res_ = std::move(res); // must live until written
    stream_.expires_after(srv_.timeout);
    http::async_write(
      stream_, res_, [self = shared_from_this()](beast::error_code ec, size_t) {
        if (!ec)
          self->linger();
      });
  }

  // Closes politely: closing a socket with unread input (the rest of a body
  // over 1 MiB) resets the connection, and the client may lose the answer.
  // So: stop sending, and discard what comes until the client closes, for at
  // most `max_linger`. The socket closes with the last reference to `this`.
  void linger() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(max_linger);
    discard();
  }

  void discard() {
    stream_.async_read_some(
      boost::asio::buffer(scratch_),
      [self = shared_from_this()](beast::error_code ec, size_t) {
        if (!ec)
          self->discard();
      });
  }

  beast::tcp_stream stream_;
  server& srv_;
  boost::asio::ip::address peer_;
  beast::flat_buffer buf_;
  http::request_parser<http::string_body> parser_;
  response res_;
  std::array<char, 4096> scratch_;
};

void server::accept() {
  acceptor.async_accept([this](beast::error_code ec, tcp::socket sock) {
    if (!acceptor.is_open())
      return; // stopped
    if (ec) {
      // Out of file descriptors (EMFILE) or memory: the connection stays in
      // the backlog, and accepting again at once fails again at once, which
      // would spin a core until a descriptor is free. Wait a little instead.
      if (!accept_failing)
        log_line("cannot accept (" + ec.message() + "), retrying every 100 ms");
      accept_failing = true;
      retry.expires_after(accept_retry);
      retry.async_wait([this](beast::error_code e) {
        if (!e)
          accept();
      });
      return;
    }
    if (accept_failing)
      log_line("accepting again");
    accept_failing = false;
    std::make_shared<connection>(std::move(sock), *this)->start();
    accept();
  });
}

void work(job_queue& jobs, ctxstore::blocking_client client) {
  while (auto j = jobs.pop())
    j->conn->serve(client); // then `j` lets go of the I/O loop
}

// Reads a whole decimal number in [min, max] into `x`; false if there is none.
bool read_number(const char* text, int min, int max, int& x) {
  auto end = text + std::strlen(text);
  auto [last, ec] = std::from_chars(text, end, x);
  return ec == std::errc{} && last == end && x >= min && x <= max;
}

} // namespace

int main(int argc, char** argv) {
  int port = 0;
  int n_workers = 4;
  int timeout = 5;
  bool ok = argc % 2 == 1;
  for (int i = 1; ok && i < argc; i += 2) {
    std::string arg = argv[i];
    ok = arg == "--port"      ? read_number(argv[i + 1], 0, 65535, port)
         : arg == "--threads" ? read_number(argv[i + 1], 1, 256, n_workers)
         : arg == "--timeout" ? read_number(argv[i + 1], 1, 3600, timeout)
                              : false;
  }
  if (!ok) {
    std::cerr << "usage: http_front_end [--port 0..65535] [--threads 1..256] "
                 "[--timeout 1..3600 (seconds)]\n";
    return 2;
  }
  {
    caf::actor_system_config cfg; // must outlive the actor system
    examples::add_example_types(cfg);
    caf::actor_system sys{cfg};
    auto st = ctxstore::spawn_storage(sys);
    server srv{std::chrono::seconds{timeout}};
    tcp::endpoint local{boost::asio::ip::make_address("127.0.0.1"),
                        static_cast<unsigned short>(port)};
    beast::error_code ec;
    srv.acceptor.open(local.protocol(), ec);
    if (!ec)
      srv.acceptor.bind(local, ec);
    if (!ec)
      srv.acceptor.listen(boost::asio::socket_base::max_listen_connections, ec);
    if (ec) {
      std::cerr << "http: cannot listen on port " << port << ": "
                << ec.message() << std::endl;
      return 1; // `st` goes before `sys`
    }
    log_line("listening on 127.0.0.1:"
             + std::to_string(srv.acceptor.local_endpoint().port()));
    std::vector<std::thread> workers;
    for (int w = 0; w < n_workers; ++w)
      workers.emplace_back(work, std::ref(srv.jobs),
                           ctxstore::blocking_client{sys, st});
    srv.accept();
    srv.ioc.run(); // until POST /shutdown and the end of the last connection
    srv.jobs.push(std::nullopt);
    for (auto& w : workers)
      w.join(); // their clients are gone before `st` and `sys`
  }
  std::cout << "http: stopped" << std::endl;
  return 0;
}
