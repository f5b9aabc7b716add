#pragma once

// Resident memory of the test process, for specifications that a storage
// returns to its baseline.

#include <fstream>

#include <malloc.h>
#include <unistd.h>

namespace resident_memory {

/// Resident memory of this process in bytes, from /proc/self/statm. Free
/// pages of every malloc arena are returned to the system first: CAF's
/// worker threads allocate from arenas of their own, whose freed memory glibc
/// otherwise keeps resident (and fragmented) indefinitely.
inline long bytes() {
  malloc_trim(0);
  std::ifstream statm{"/proc/self/statm"};
  long pages = 0;
  long resident = 0;
  statm >> pages >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

/// Under the sanitizers resident memory says nothing (ASan quarantines freed
/// memory, TSan's allocator and shadow grew it by 19-40 MiB in CI);
/// LeakSanitizer checks the ASan build for leaks instead.
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr bool meaningful = false;
#else
constexpr bool meaningful = true;
#endif

} // namespace resident_memory
