#pragma once

#include <chrono>
#include <thread>

// For what a storage or another process does on its own time (a timer that
// passivates a context, a node that notices a dead peer): nothing to await,
// so the condition is polled, bounded.

/// Waits until `pred()` holds, at most `bound`; false if it never did.
template <class Pred>
bool eventually(Pred pred,
                std::chrono::milliseconds bound = std::chrono::seconds{10}) {
  auto until = std::chrono::steady_clock::now() + bound;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > until)
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds{1});
  }
  return true;
}
