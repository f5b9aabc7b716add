#pragma once

// What the specifications (tests/) see of the library's insides, beyond the
// installed API: the private headers below. Not installed; a user's program
// never includes it.

#include "answer_queue.hpp"   // answer_batch
#include "async_request.hpp"  // request_routed
#include "async_sessions.hpp" // find_async_held
#include "fast_path.hpp"      // local_owner, owners_kept, read_board
