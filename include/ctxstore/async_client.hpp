#pragma once

#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <utility>

#include <caf/event_based_actor.hpp>
#include <caf/message.hpp>

#include "ctxstore/async_session.hpp"
#include "ctxstore/context_id.hpp"
#include "ctxstore/context_types.hpp"
#include "ctxstore/detail/async_request.hpp"
#include "ctxstore/error.hpp"
#include "ctxstore/messages/protocol.hpp"
#include "ctxstore/pending.hpp"
#include "ctxstore/shared_value.hpp"
#include "ctxstore/storage.hpp"
#include "ctxstore/storage_stats.hpp"
#include "ctxstore/versioned.hpp"

namespace ctxstore {

/// Access to a storage from an event-based actor: every operation is a
/// request whose answer arrives later, in the actor (`pending::then`); the
/// actor never blocks. Use it only inside the actor given to it.
///
/// Reentrancy: the holder of a session is the actor. While it holds a session
/// on a key, its nested `acquire`, `store`, `erase` and `snapshot` of that key
/// proceed at once; a nested acquire shares the holder's working copy.
class async_client {
public:
  /// A client that sends its requests as `self` to storage `st`.
  async_client(caf::event_based_actor* self, storage st)
      : self_(self), home_(std::make_shared<const storage>(std::move(st))) {
    // nop
  }

  /// A client of the same actor and storage. (Copied, never moved from: a
  /// moved-from client still names its storage.)
  async_client(const async_client&) = default;

  /// Makes this a copy of `other` (see the copy constructor).
  async_client& operator=(const async_client& other) = default;

  /// The last committed value with its version; never waits for a session.
  /// A storage in this process answers from its board of last commits (no
  /// other actor involved); the answer still arrives later, like any other.
  template <class T>
  pending<versioned<T>> snapshot_versioned(const context_id& id) {
    return read<T, versioned<T>>(
      id, [](messages::versioned_value& x, const auto& on_ok) {
        on_ok(versioned<T>{x.value.value.template get_as<T>(0), x.version});
      });
  }

  /// The last committed value; never waits for a session. A handler that
  /// takes `const T&` reads the stored value in place (no copy).
  template <class T>
  pending<T> snapshot(const context_id& id) {
    return read<T, T>(id, [](messages::versioned_value& x, const auto& on_ok) {
      on_ok(x.value.value.template get_as<T>(0)); // borrowed: no copy
    });
  }

  /// Creates or replaces the context; answers its new version. Waits behind
  /// a session held by another actor; from the holder it proceeds at once and
  /// also replaces the holder's working copy.
  template <class T>
  pending<uint64_t> store(const context_id& id, T value) {
    return store(id, shared_value<T>{std::move(value)});
  }

  /// `store` without a copy of `T`: the context shares `value` (see
  /// `shared_value`); so does the holder's working copy until its next write.
  template <class T>
  pending<uint64_t> store(const context_id& id, const shared_value<T>& value) {
    auto self = self_;
    auto home = home_;
    auto msg = value.message(); // every route shares it, nobody copies it
    return pending<uint64_t>{[=](auto on_ok, auto on_err) {
      const storage& st = *home;
      const caf::actor& dest = st.registry();
      auto key = key_of<T>(dest, id, on_err);
      if (key.type.empty())
        return;
      auto held = detail::find_async_held(self, dest, key);
      auto on_version = [held, msg, on_ok](uint64_t version) {
        if (held && held->open) {
          held->working = msg;
          held->version = version;
        }
        on_ok(version);
      };
      // The holder of a direct session, or a free context in this process:
      // stored under the cell's lock, answered through our own mailbox.
      detail::owner_route route;
      if (auto version = detail::direct_store(st, key, held.get(), msg, route))
        return detail::respond_later(self, std::move(on_version),
                                     forward_error(on_err), *version);
      auto ticket = route.ticket;
      detail::request_routed(
        self, route.owner, dest,
        [ticket, on_version](uint64_t version) {
          end_count(ticket);
          on_version(version);
        },
        counted_error{ticket, forward_error(on_err)},
        messages::store_atom::value, key, messages::payload{msg},
        held && !held->cell ? held->token : uint64_t{0});
    }};
  }

  /// Opens (or, for the holder actor, re-enters) an exclusive session; the
  /// answer arrives when it is granted. `wait` bounds the time spent queued
  /// (`errc::timeout`; zero: try once); negative: wait as long as it takes.
  template <class T>
  pending<async_session<T>> acquire(const context_id& id,
                                    std::chrono::milliseconds wait
                                    = std::chrono::milliseconds{-1}) {
    auto self = self_;
    auto home = home_;
    int64_t wait_ms = wait.count() < 0 ? -1 : wait.count();
    return pending<async_session<T>>{[=](auto on_ok, auto on_err) {
      const caf::actor& dest = home->registry();
      auto key = key_of<T>(dest, id, on_err);
      if (key.type.empty())
        return;
      // A nested acquire of the actor's direct session: that level at once.
      // One of a session the owner granted goes to the owner, which knows
      // the holder (it must not queue behind its own session).
      auto nested_at_owner = false;
      if (auto held = detail::find_async_held(self, dest, key)) {
        nested_at_owner = !held->cell;
        if (held->cell && detail::direct_open(*held))
          return detail::respond_later(
            self,
            [held, on_ok](caf::ok_atom) {
              on_ok(async_session<T>{held, false});
            },
            forward_error(on_err), caf::ok_atom::value);
        if (held->cell) { // revoked by its lease: done with it
          held->open = false;
          detail::forget_async_held(held.get());
        }
      }
      // A free context in this process is taken like a free futex; a held
      // one is waited for in its cell's queue, like a thread waits.
      auto direct = detail::direct_acquire(self, home, key, typeid(T),
                                           wait_ms < 0 && !nested_at_owner);
      if (auto held = std::move(direct.held))
        return detail::respond_later(
          self,
          [held, on_ok](caf::ok_atom) {
            on_ok(async_session<T>{held, true});
          },
          forward_error(on_err), caf::ok_atom::value);
      if (direct.waiter_error)
        return detail::respond_later(self, [](caf::ok_atom) {},
                                     forward_error(on_err),
                                     std::move(direct.waiter_error));
      if (direct.waiter)
        return detail::await_turn(
          self, std::move(direct.waiter), home,
          [on_ok, on_err](std::shared_ptr<detail::async_held> held,
                          caf::error& err) {
            if (!held)
              return forward_error(on_err)(err);
            on_ok(async_session<T>{std::move(held), true});
          });
      auto ticket = direct.route.ticket;
      detail::request_routed(
        self, direct.route.owner, dest,
        [=](messages::grant& g) {
          end_count(ticket);
          auto held = detail::find_async_held(self, dest, key);
          if (held && held->token == g.token)
            return on_ok(async_session<T>{held, false}); // nested level
          if (!g.value.value.template match_elements<T>()) {
            self->send(g.owner, messages::abort_atom::value, key, g.token);
            return fail(on_err, errc::type_mismatch,
                        "the stored value does not have the requested type");
          }
          held = std::make_shared<detail::async_held>();
          held->self = self;
          held->holder = self->address();
          held->home = home;
          held->owner = g.owner ? std::move(g.owner) : dest;
          held->key = key;
          held->token = g.token;
          held->version = g.version;
          held->working = std::move(g.value.value);
          detail::register_async_held(held);
          on_ok(async_session<T>{std::move(held), true});
        },
        counted_error{ticket, forward_error(on_err)},
        messages::acquire_atom::value, key, wait_ms);
    }};
  }

  /// Runs `fn(T&)` in a session and releases it; answers the new version.
  /// If `fn` throws, the session is aborted and the exception propagates (by
  /// CAF's default, that stops the actor).
  template <class T, class F>
  pending<uint64_t> update(const context_id& id, F fn) {
    auto inner = std::make_shared<pending<async_session<T>>>(acquire<T>(id));
    return pending<uint64_t>{[inner, fn](auto on_ok, auto on_err) mutable {
      inner->then(
        [fn, on_ok, on_err](async_session<T> s) mutable {
          try {
            fn(*s);
          } catch (...) {
            s.abort().then([](uint64_t) {}, [](caf::error&) {});
            throw;
          }
          s.release().then(on_ok, on_err);
        },
        on_err);
    }};
  }

  /// Removes the context (waits behind a session like `store`); answers
  /// false if there was nothing to remove. From the holder it also ends the
  /// holder's session.
  template <class T>
  pending<bool> erase(const context_id& id) {
    auto self = self_;
    auto home = home_;
    return pending<bool>{[=](auto on_ok, auto on_err) {
      const storage& st = *home;
      const caf::actor& dest = st.registry();
      auto key = key_of<T>(dest, id, on_err);
      if (key.type.empty())
        return;
      auto held = detail::find_async_held(self, dest, key);
      if (held && held->cell) {
        // The holder of a direct session erases it on the cell; that also
        // ends its session (a revoked one is not ours any more).
        if (detail::direct_open(*held)) {
          held->open = false;
          detail::forget_async_held(held.get());
          return detail::answer_later(
            self, [on_ok](bool existed) { on_ok(existed); },
            forward_error(on_err), detail::direct_erase(*held));
        }
        held->open = false;
        detail::forget_async_held(held.get());
        held = nullptr;
      }
      auto route = detail::route_to_owner(st, key);
      auto ticket = route.ticket;
      detail::request_routed(
        self, route.owner, dest,
        [held, on_ok, ticket](bool existed) {
          end_count(ticket);
          if (held) {
            held->open = false; // the holder's erase ends its session
            detail::forget_async_held(held.get());
          }
          on_ok(existed);
        },
        counted_error{ticket, forward_error(on_err)},
        messages::erase_atom::value, key, held ? held->token : uint64_t{0});
    }};
  }

  /// Counts of the storage.
  pending<storage_stats> stats() {
    auto self = self_;
    auto home = home_;
    return pending<storage_stats>{[=](auto on_ok, auto on_err) {
      const caf::actor& dest = home->registry();
      if (!dest)
        return fail(on_err, errc::storage_down,
                    "no storage behind this handle");
      detail::request_then(
        self, dest, [on_ok](storage_stats& x) { on_ok(x); },
        forward_error(on_err), messages::stats_atom::value);
    }};
  }

  /// The storage this client talks to.
  const storage& target() const noexcept {
    return *home_;
  }

private:
  /// A snapshot of `id`, answered by `answer(versioned_value&, on_ok)`.
  template <class T, class R, class Answer>
  pending<R> read(const context_id& id, Answer answer) {
    auto self = self_;
    auto home = home_;
    return pending<R>{[=](auto on_ok, auto on_err) {
      const caf::actor& dest = home->registry();
      const auto& board = home->board();
      auto key = key_of<T>(dest, id, on_err);
      if (key.type.empty())
        return;
      // In this process the owner's last commit is on the board: the answer
      // goes straight into our own mailbox, no other actor involved. A miss
      // (unknown key, storage stopped) asks the storage, which answers with
      // the right error.
      if (board) {
        if (auto hit = detail::read_board(*board, key)) {
          auto on_value = [answer, on_ok = std::move(on_ok)](
                            messages::versioned_value& x) { answer(x, on_ok); };
          if (hit->value.value.template match_elements<T>())
            detail::respond_later(self, std::move(on_value),
                                  forward_error(std::move(on_err)),
                                  std::move(*hit));
          else
            detail::respond_later(self, std::move(on_value),
                                  forward_error(std::move(on_err)),
                                  type_mismatch());
          return;
        }
      }
      // Counted while out, like any request on the key: a store of this
      // actor sent after it cannot create the context first.
      detail::inbound_ticket_ptr ticket;
      if (board)
        ticket = std::make_shared<detail::inbound_ticket>(board, key, nullptr);
      auto on_value
        = [answer, on_ok, on_err, ticket](messages::versioned_value& x) {
            end_count(ticket);
            if (!x.value.value.template match_elements<T>()) {
              auto err = type_mismatch();
              return on_err(err);
            }
            answer(x, on_ok);
          };
      detail::request_then(self, dest, std::move(on_value),
                           counted_error{ticket, forward_error(on_err)},
                           messages::snapshot_atom::value, key);
    }};
  }

  static caf::error type_mismatch() {
    return make_error(errc::type_mismatch,
                      "the stored value does not have the requested type");
  }

  static void fail(const detail::error_callback& on_err, errc code,
                   const char* what) {
    auto err = make_error(code, what);
    on_err(err);
  }

  /// Hands a failure to `on_err` as a ctxstore error.
  struct error_forwarder {
    detail::error_callback on_err;
    void operator()(caf::error& err) const {
      auto e = detail::to_ctxstore_error(std::move(err));
      on_err(e);
    }
  };

  static error_forwarder forward_error(detail::error_callback on_err) {
    return error_forwarder{std::move(on_err)};
  }

  /// The answer to a counted request arrived (see detail::inbound_ticket).
  static void end_count(const detail::inbound_ticket_ptr& ticket) {
    if (ticket)
      ticket->done();
  }

  /// `error_forwarder` of a counted request.
  struct counted_error {
    detail::inbound_ticket_ptr ticket;
    error_forwarder forward;
    void operator()(caf::error& err) const {
      end_count(ticket);
      forward(err);
    }
  };

  /// The key of `id`, or an empty key after reporting an unregistered type.
  template <class T>
  static messages::context_key key_of(const caf::actor& dest,
                                      const context_id& id,
                                      const detail::error_callback& on_err) {
    if (!dest) {
      fail(on_err, errc::storage_down, "no storage behind this handle");
      return messages::context_key{};
    }
    try {
      return messages::context_key{detail::type_name_of<T>(), id};
    } catch (const error& e) {
      fail(on_err, e.code(), e.what());
      return messages::context_key{};
    }
  }

  caf::event_based_actor* self_;
  // Shared by this client's requests and sessions: copying it touches a count
  // only this actor uses, whereas copies of the storage handle would bounce
  // the counts that every actor of the process shares between the cores.
  std::shared_ptr<const storage> home_;
};

} // namespace ctxstore
