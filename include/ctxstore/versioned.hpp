#pragma once

#include <cstdint>

namespace ctxstore {

/// A committed value with the version it was committed as.
template <class T>
struct versioned {
  T value;              ///< The committed value.
  uint64_t version = 0; ///< Its version: each store or commit adds 1.
};

} // namespace ctxstore
