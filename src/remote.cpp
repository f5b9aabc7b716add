#include "ctxstore/remote.hpp"

#include <memory>

#include <caf/all.hpp>
#include <caf/io/middleman.hpp>
#include <caf/openssl/manager.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "ctxstore/actors/gateway.hpp"
#include "ctxstore/actors/peer_limits.hpp"
#include "ctxstore/actors/registry.hpp"
#include "caf_internals.hpp"
#include "guarded_port.hpp"
#include "remote_guard.hpp"
#include "ctxstore/error.hpp"

namespace ctxstore {

namespace {

caf::error need_middleman() {
  return make_error(errc::storage_down,
                    "the actor system has no middleman: call "
                    "cfg.load<caf::io::middleman>() before creating it");
}

/// Sets `name` to `value` unless the config already has a value for it.
template <class T>
void set_unless_present(caf::actor_system_config& cfg, const char* name,
                        T value) {
  if (caf::get_if(&cfg.content, name) == nullptr)
    cfg.set(name, std::move(value));
}

std::string openssl_errors() {
  std::string result;
  while (auto code = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof(buf));
    if (!result.empty())
      result += "; ";
    result += buf;
  }
  return result.empty() ? std::string{"no detail from OpenSSL"} : result;
}

int passphrase_of(char* buf, int size, int, void* user) {
  auto& text = *static_cast<const std::string*>(user);
  if (size <= 0 || text.size() >= static_cast<size_t>(size))
    return 0;
  text.copy(buf, text.size());
  buf[text.size()] = '\0';
  return static_cast<int>(text.size());
}

/// Loads what CAF's OpenSSL module loads for each connection (its session
/// throws inside CAF's I/O thread when that fails, which ends the process):
/// a bad file is an error here instead.
caf::error check_tls_files(const caf::actor_system_config& cfg) {
  auto bad = [](std::string what) {
    return make_error(errc::bad_request, "TLS: " + std::move(what));
  };
  if (cfg.openssl_certificate.empty() || cfg.openssl_key.empty())
    return bad("set both openssl.certificate and openssl.key (a peer without "
               "a certificate is refused: TLS here is mutual)");
  if (cfg.openssl_cafile.empty() && cfg.openssl_capath.empty())
    return bad("set openssl.cafile or openssl.capath: the CA that every "
               "peer's certificate must chain to");
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx{
    SSL_CTX_new(TLS_method()), SSL_CTX_free};
  if (!ctx)
    return bad("cannot create an OpenSSL context: " + openssl_errors());
  auto passphrase = cfg.openssl_passphrase;
  SSL_CTX_set_default_passwd_cb(ctx.get(), passphrase_of);
  SSL_CTX_set_default_passwd_cb_userdata(ctx.get(), &passphrase);
  ERR_clear_error();
  if (SSL_CTX_use_certificate_chain_file(ctx.get(),
                                         cfg.openssl_certificate.c_str())
      != 1)
    return bad("cannot load openssl.certificate " + cfg.openssl_certificate
               + ": " + openssl_errors());
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), cfg.openssl_key.c_str(),
                                  SSL_FILETYPE_PEM)
      != 1)
    return bad("cannot load openssl.key " + cfg.openssl_key
               + " (wrong openssl.passphrase, or not the key of "
                 "openssl.certificate?): "
               + openssl_errors());
  if (SSL_CTX_check_private_key(ctx.get()) != 1)
    return bad("openssl.key does not belong to openssl.certificate: "
               + openssl_errors());
  auto cafile
    = cfg.openssl_cafile.empty() ? nullptr : cfg.openssl_cafile.c_str();
  auto capath
    = cfg.openssl_capath.empty() ? nullptr : cfg.openssl_capath.c_str();
  if (SSL_CTX_load_verify_locations(ctx.get(), cafile, capath) != 1)
    return bad("cannot load the CA (openssl.cafile / openssl.capath): "
               + openssl_errors());
  return caf::none;
}

/// Whether `publish` or `connect` (`what`) uses TLS on `sys`; an error if
/// the configuration asks for something it cannot have.
caf::expected<bool> use_tls(caf::actor_system& sys, const char* what) {
  if (!tls_configured(sys)) {
    if (caf::get_or(sys.config(), "ctxstore.require-tls", false))
      return make_error(errc::forbidden,
                        std::string{"ctxstore.require-tls is set: a plain "}
                          + what
                          + " is refused (set openssl.certificate, "
                            "openssl.key and openssl.cafile, and call "
                            "ctxstore::load_tls(cfg))");
    return false;
  }
  if (!sys.has_openssl_manager())
    return make_error(errc::bad_request,
                      "openssl.* options are set but CAF's OpenSSL module is "
                      "not loaded: call ctxstore::load_tls(cfg) after "
                      "cfg.load<caf::io::middleman>()");
  if (auto err = check_tls_files(sys.config()))
    return err;
  return true;
}

} // namespace

namespace detail {
int tls_error_queue_guard(); // tls_error_queue.cpp
} // namespace detail

void load_tls(caf::actor_system_config& cfg) {
  // Keeps the fix of tls_error_queue.cpp in a statically linked program.
  static volatile int keep = detail::tls_error_queue_guard();
  (void)keep;
  cfg.load<caf::openssl::manager>();
}

bool tls_configured(const caf::actor_system& sys) {
  auto& cfg = sys.config();
  return !cfg.openssl_certificate.empty() || !cfg.openssl_key.empty()
         || !cfg.openssl_passphrase.empty() || !cfg.openssl_cafile.empty()
         || !cfg.openssl_capath.empty();
}

void apply_remote_defaults(caf::actor_system_config& cfg) {
  set_unless_present(cfg, "middleman.workers", size_t{0});
  set_unless_present(cfg, "work-stealing.moderate-poll-attempts", size_t{0});
}

caf::expected<uint16_t> publish(caf::actor_system& sys, const storage& st,
                                uint16_t port, const std::string& address) {
  publish_options opts;
  opts.address = address;
  return publish(sys, st, port, opts);
}

caf::expected<uint16_t> publish(caf::actor_system& sys, const storage& st,
                                uint16_t port, const publish_options& opts) {
  if (!sys.has_middleman())
    return need_middleman();
  auto tls = use_tls(sys, "publish");
  if (!tls)
    return std::move(tls.error());
  if (!st)
    return make_error(errc::storage_down, "no storage behind this handle");
  // The default storage lives (hidden) until the system is destroyed, so a
  // gateway to it would outlive the system's actors: see gateway.hpp.
  if (actors::is_default_storage(sys, st.registry()))
    return make_error(errc::bad_request,
                      "publish a storage from spawn_storage, not the default "
                      "storage");
  auto& address = opts.address;
  if (!*tls && !detail::is_loopback(address) && !opts.allow_plain_remote
      && !caf::get_or(sys.config(), "ctxstore.allow-plain-remote", false))
    return make_error(errc::forbidden,
                      "a plain publication on " + address
                        + " is refused: it is reachable from other machines "
                          "without TLS (set the openssl.* options, or allow it "
                          "with publish_options::allow_plain_remote or "
                          "ctxstore.allow-plain-remote)");
  actors::gateway_options limits;
  limits.read_only = opts.read_only;
  if (st.board())
    limits.max_value_bytes = st.board()->defaults().max_value_bytes;
  auto gateway = actors::spawn_gateway(sys, st.registry(), st.board(), limits);
  // Guarded against unauthenticated peers (guarded_port.hpp); a TLS port
  // also lets nobody without a certificate reach BASP.
  auto result = detail::publish_guarded(
    sys, gateway, port, address,
    detail::port_limits_from(sys, limits.max_value_bytes), *tls);
  if (!result) {
    caf::anon_send_exit(gateway, caf::exit_reason::user_shutdown);
    return make_error(errc::storage_down,
                      std::string{"cannot publish on "} + address + ":"
                        + std::to_string(port) + (*tls ? " (TLS)" : "") + ": "
                        + sys.render(result.error()));
  }
  // Peers that stopped reading must not keep the node's shutdown waiting.
  actors::spawn_stop_sweeper(sys, st.registry());
  return *result;
}

caf::expected<storage> connect(caf::actor_system& sys, const std::string& host,
                               uint16_t port) {
  if (!sys.has_middleman())
    return need_middleman();
  auto tls = use_tls(sys, "connect");
  if (!tls)
    return std::move(tls.error());
  auto max_value = caf::get_or(sys.config(), "ctxstore.max-value-bytes",
                               int64_t{0});
  auto result = detail::connect_guarded(
    sys, host, port,
    detail::port_limits_from(
      sys, max_value > 0 ? static_cast<size_t>(max_value) : 0),
    *tls);
  if (!result)
    return make_error(errc::storage_down, "cannot connect to " + host + ":"
                                            + std::to_string(port)
                                            + (*tls ? " (TLS)" : "") + ": "
                                            + sys.render(result.error()));
  return storage{std::move(*result)};
}

namespace detail {

namespace {

class request_watch : public caf::attachable {
public:
  static constexpr size_t token_type = 0x63747873; // "ctxs"

  request_watch(const caf::strong_actor_ptr& requester, caf::message_id mid)
      : requester_(caf::actor_cast<caf::weak_actor_ptr>(requester)), mid_(mid) {
    // nop
  }

  void actor_exited(const caf::error& reason,
                    caf::execution_unit* host) override {
    auto who = caf::actor_cast<caf::strong_actor_ptr>(requester_);
    if (!who)
      return;
    auto err
      = make_error(errc::storage_down, "lost the connection to the storage ("
                                         + caf::to_string(reason) + ")");
    // The handle's id is already the response id (mixin/requester.hpp).
    auto rid = mid_.is_response() ? mid_ : mid_.response_id();
    enqueue_error(who, nullptr, rid, std::move(err), host);
  }

  bool matches(const token& what) override {
    return what.subtype == token_type && what.ptr == this;
  }

private:
  caf::weak_actor_ptr requester_;
  caf::message_id mid_;
};

} // namespace

remote_guard::remote_guard(const caf::actor& dest,
                           const caf::strong_actor_ptr& requester,
                           caf::message_id mid)
    : dest_(dest) {
  auto watch = new request_watch(requester, mid);
  watch_ = watch;
  // Attaching to an actor that is already gone runs the watch at once.
  caf::actor_cast<caf::abstract_actor*>(dest_)->attach(
    caf::attachable_ptr{watch});
}

remote_guard::~remote_guard() {
  caf::actor_cast<caf::abstract_actor*>(dest_)->detach(
    caf::attachable::token{request_watch::token_type, watch_});
}

std::shared_ptr<remote_guard>
remote_guard::make(const caf::actor& dest,
                   const caf::strong_actor_ptr& requester,
                   caf::message_id mid) {
  if (!dest || !requester || dest->node() == requester->node())
    return nullptr;
  return std::make_shared<remote_guard>(dest, requester, mid);
}

} // namespace detail

} // namespace ctxstore
