# Finds Debian's CAF 0.17 (libcaf-dev ships no CMake config) and defines the
# imported targets CAF::core, CAF::io and CAF::openssl (with OpenSSL's libssl
# and libcrypto, which libcaf_openssl and ctxstore's TLS checks use). Used by the build and, installed next
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
if(CTXSTORE_CAF_FOUND AND NOT TARGET CAF::openssl)
  find_library(CAF_OPENSSL_LIBRARY NAMES caf_openssl)
  find_library(CTXSTORE_SSL_LIBRARY NAMES ssl)
  find_library(CTXSTORE_CRYPTO_LIBRARY NAMES crypto)
  find_path(CTXSTORE_OPENSSL_INCLUDE_DIR openssl/ssl.h)
  if(NOT CAF_OPENSSL_LIBRARY OR NOT CTXSTORE_SSL_LIBRARY
     OR NOT CTXSTORE_CRYPTO_LIBRARY OR NOT CTXSTORE_OPENSSL_INCLUDE_DIR)
    set(CTXSTORE_CAF_FOUND FALSE)
  else()
    add_library(CAF::openssl UNKNOWN IMPORTED)
    set_target_properties(CAF::openssl PROPERTIES
      IMPORTED_LOCATION "${CAF_OPENSSL_LIBRARY}"
      INTERFACE_INCLUDE_DIRECTORIES "${CTXSTORE_OPENSSL_INCLUDE_DIR}"
      INTERFACE_LINK_LIBRARIES
        "CAF::io;${CTXSTORE_SSL_LIBRARY};${CTXSTORE_CRYPTO_LIBRARY}")
  endif()
endif()
