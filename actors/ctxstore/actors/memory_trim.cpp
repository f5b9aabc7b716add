#include "ctxstore/actors/memory_trim.hpp"

#if defined(__GLIBC__)
#  include <malloc.h>
#endif

namespace ctxstore::actors {

void give_back_free_memory() noexcept {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

} // namespace ctxstore::actors
