#include "answer_queue.hpp"

#include "caf_internals.hpp"

#include <memory>

#include <caf/atom.hpp>
#include <caf/behavior.hpp>
#include <caf/message_priority.hpp>

namespace ctxstore::detail {

namespace {

/// The batch this thread runs, and for which actor.
struct running {
  const caf::event_based_actor* self = nullptr;
  answer_list* answers = nullptr;
};

thread_local running current;

bool stopping(const caf::event_based_actor* self) {
  return self->getf(caf::abstract_actor::is_terminated_flag
                    | caf::abstract_actor::is_shutting_down_flag);
}

/// Runs up to `answer_batch` answers of `list`, starting at `list[0]`; those
/// that the answers add run in the same batch. What is left goes on in
/// another message (unless the actor is stopping: then it is dropped, as CAF
/// drops the mailbox of a stopped actor).
void run_batch(caf::event_based_actor* self, answer_list list) {
  size_t next = 0;
  auto outer = current;
  current = running{self, &list};
  auto rest = [&] {
    current = outer;
    list.erase(list.begin(), list.begin() + static_cast<ptrdiff_t>(next));
    if (!list.empty() && !stopping(self))
      post_answers(self, std::move(list));
  };
  try {
    while (next < list.size() && next < answer_batch && !stopping(self)) {
      auto answer = std::move(list[next++]); // `list` may grow meanwhile
      answer();
    }
  } catch (...) {
    rest(); // the others are still answered (if the actor lives on)
    throw;
  }
  rest();
}

} // namespace

answer_list* batch_to_join(caf::event_based_actor* self) noexcept {
  if (current.self != self || !self->mailbox().empty())
    return nullptr;
  return current.answers;
}

void post_answers(caf::event_based_actor* self, answer_list answers) {
  // A response to ourselves: it runs from CAF's dispatch of responses, which
  // no behavior of the actor (nor `become`) can intercept.
  auto rid = new_response_id(self);
  auto box = std::make_shared<answer_list>(std::move(answers));
  on_own_response(
    self, rid,
    caf::behavior{
      [self, box](caf::ok_atom) { run_batch(self, std::move(*box)); },
      [](caf::error&) {}});
  respond_ok_to_self(self, rid);
}

} // namespace ctxstore::detail
