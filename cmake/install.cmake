# `cmake --install`: the public headers (include/ctxstore and
# messages/ctxstore/messages, one tree), the library, the CMake package
# ctxstore::ctxstore and ctxstore.pc. Included from the top-level CMakeLists.

include(CMakePackageConfigHelpers)

set(CTXSTORE_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/ctxstore)

install(DIRECTORY include/ctxstore messages/ctxstore
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.hpp")
install(TARGETS ctxstore EXPORT ctxstoreTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(EXPORT ctxstoreTargets NAMESPACE ctxstore::
        DESTINATION ${CTXSTORE_CMAKE_DIR})

configure_package_config_file(cmake/ctxstoreConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/ctxstoreConfig.cmake
  INSTALL_DESTINATION ${CTXSTORE_CMAKE_DIR})
write_basic_package_version_file(
  ${CMAKE_CURRENT_BINARY_DIR}/ctxstoreConfigVersion.cmake
  COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/ctxstoreConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/ctxstoreConfigVersion.cmake
              cmake/ctxstoreCAF.cmake
        DESTINATION ${CTXSTORE_CMAKE_DIR})

# ctxstore.pc: relocatable (paths relative to the file itself), so that
# `cmake --install --prefix <dir>` gives a working file. CAF and Boost ship no
# .pc on Debian: their flags go into Cflags and Libs; -I and -L only where
# the compiler would not look anyway.
set(CTXSTORE_PC_DIR ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
function(ctxstore_pc_path out dir)
  if(IS_ABSOLUTE "${dir}")
    set(${out} "${dir}" PARENT_SCOPE)
  else()
    set(${out} "\${prefix}/${dir}" PARENT_SCOPE)
  endif()
endfunction()
file(RELATIVE_PATH CTXSTORE_PC_TO_PREFIX /prefix/${CTXSTORE_PC_DIR} /prefix)
string(REGEX REPLACE "/$" "" CTXSTORE_PC_TO_PREFIX "${CTXSTORE_PC_TO_PREFIX}")
ctxstore_pc_path(CTXSTORE_PC_INCLUDEDIR ${CMAKE_INSTALL_INCLUDEDIR})
ctxstore_pc_path(CTXSTORE_PC_LIBDIR ${CMAKE_INSTALL_LIBDIR})
set(CTXSTORE_PC_EXTRA_CFLAGS "")
foreach(dir IN ITEMS ${CAF_INCLUDE_DIR} ${Boost_INCLUDE_DIRS})
  if(NOT dir IN_LIST CMAKE_CXX_IMPLICIT_INCLUDE_DIRECTORIES)
    string(APPEND CTXSTORE_PC_EXTRA_CFLAGS " -I${dir}")
  endif()
endforeach()
set(CTXSTORE_PC_EXTRA_LIBS "")
get_filename_component(caf_lib_dir "${CAF_CORE_LIBRARY}" DIRECTORY)
if(NOT caf_lib_dir IN_LIST CMAKE_CXX_IMPLICIT_LINK_DIRECTORIES)
  string(APPEND CTXSTORE_PC_EXTRA_LIBS " -L${caf_lib_dir}")
endif()
configure_file(cmake/ctxstore.pc.in ${CMAKE_CURRENT_BINARY_DIR}/ctxstore.pc
               @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/ctxstore.pc
        DESTINATION ${CTXSTORE_PC_DIR})
