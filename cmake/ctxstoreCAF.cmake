# Finds Debian's CAF 0.17 (libcaf-dev ships no CMake config) and defines the
# imported targets CAF::core and CAF::io. Used by the build and, installed next
# to ctxstoreConfig.cmake, by projects that find the installed package.
# Needs Threads::Threads. Sets CTXSTORE_CAF_FOUND; the caller reports failure.

set(CTXSTORE_CAF_FOUND TRUE)
if(NOT TARGET CAF::core OR NOT TARGET CAF::io)
  find_path(CAF_INCLUDE_DIR caf/all.hpp)
  find_library(CAF_CORE_LIBRARY NAMES caf_core)
  find_library(CAF_IO_LIBRARY NAMES caf_io)
  if(NOT CAF_INCLUDE_DIR OR NOT CAF_CORE_LIBRARY OR NOT CAF_IO_LIBRARY)
    set(CTXSTORE_CAF_FOUND FALSE)
  else()
    add_library(CAF::core UNKNOWN IMPORTED)
    set_target_properties(CAF::core PROPERTIES
      IMPORTED_LOCATION "${CAF_CORE_LIBRARY}"
      INTERFACE_INCLUDE_DIRECTORIES "${CAF_INCLUDE_DIR}"
      INTERFACE_LINK_LIBRARIES Threads::Threads)
    add_library(CAF::io UNKNOWN IMPORTED)
    set_target_properties(CAF::io PROPERTIES
      IMPORTED_LOCATION "${CAF_IO_LIBRARY}"
      INTERFACE_LINK_LIBRARIES CAF::core)
  endif()
endif()
