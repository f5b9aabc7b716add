#pragma once

#include <cstddef>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <caf/error.hpp>
#include <caf/event_based_actor.hpp>

namespace ctxstore::detail {

/// Answers of an actor's requests that needed no other actor (a snapshot read
/// from the board, a free context taken under its mutex), waiting to run.
///
/// One response message of the actor to itself runs a batch of them (a
/// message per answer would cost a response handler, a mailbox element and
/// CAF's dispatch each): an answer that becomes ready while the batch runs (a
/// handler that releases, then acquires again) joins it if nothing else waits
/// in the actor's mailbox, so it runs where its own message would have run
/// next. Otherwise it goes into the mailbox: answers and messages run in the
/// order they reached the actor. A batch runs at most `answer_batch` answers
/// before the actor reads its mailbox again, and a handler never runs inside
/// the call that asked for it.
using answer_list = std::vector<std::function<void()>>;

/// How many answers one message runs at most before the actor reads its
/// mailbox again.
constexpr size_t answer_batch = 16;

/// The batch that the calling thread runs for `self` if nothing else waits in
/// `self`'s mailbox, else null.
answer_list* batch_to_join(caf::event_based_actor* self) noexcept;

/// Sends `self` one message that runs `answers` in order (see above).
void post_answers(caf::event_based_actor* self, answer_list answers);

/// Answers a request of `self` that needs no other actor: `on_value(xs...)`,
/// or `on_error(err)` if the answer is one `caf::error`, runs later in
/// `self` (see `answer_list`), never inside this call. Call it only from
/// inside `self`.
template <class OnValue, class OnError, class... Ts>
void respond_later(caf::event_based_actor* self, OnValue on_value,
                   OnError on_error, Ts&&... xs) {
  std::function<void()> answer;
  if constexpr (sizeof...(Ts) == 1
                && (std::is_same_v<std::decay_t<Ts>, caf::error> && ...)) {
    answer = [on_error = std::move(on_error),
              err = caf::error{std::forward<Ts>(xs)...}]() mutable {
      on_error(err);
    };
  } else {
    answer = [on_value = std::move(on_value),
              args = std::make_tuple(std::forward<Ts>(xs)...)]() mutable {
      std::apply(on_value, args);
    };
  }
  if (auto* batch = batch_to_join(self)) {
    batch->push_back(std::move(answer));
    return;
  }
  answer_list answers;
  answers.push_back(std::move(answer));
  post_answers(self, std::move(answers));
}

} // namespace ctxstore::detail
