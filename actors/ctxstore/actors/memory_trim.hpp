#pragma once

#include <cstdint>

namespace ctxstore::actors {

/// Passivations between two `give_back_free_memory` calls of a storage.
inline constexpr uint64_t passivations_per_trim = 4096;

/// Returns the memory that the process's allocator keeps free to the
/// system. Why: glibc gives memory freed by a thread back to the malloc
/// arena it came from, and an arena returns it to the system only when its
/// top is free. Durable contexts that come and go (activation, passivation)
/// are allocated and freed by different CAF workers, so a storage bounded by
/// `max_resident` grew by what the workers' arenas kept (docs/performance.md,
/// group `resident`). A storage calls this once per
/// `passivations_per_trim` passivations, outside any lock. Nothing with
/// another allocator than glibc's.
void give_back_free_memory() noexcept;

} // namespace ctxstore::actors
