#pragma once

#include <cstddef>

namespace ctxstore::detail {

/// Largest buffer or spare value that a thread keeps for reuse after it is
/// done with it (1 MiB). Reuse saves allocations on the next operation of the
/// same size; above this size the saving is small next to the copy itself,
/// and a buffer kept at its peak size holds memory for as long as its thread
/// lives (one 200 MiB value once held the middleman's thread at 400 MB for
/// good). Larger ones are released after use.
inline constexpr size_t kept_buffer_bytes = size_t{1} << 20;

} // namespace ctxstore::detail
