# Distributed examples: a storage node and a client in another process.
# Included from examples/CMakeLists.txt:
#   include(${CMAKE_CURRENT_SOURCE_DIR}/remote.cmake)

add_executable(ctxstore_node ${CMAKE_CURRENT_LIST_DIR}/node.cpp)
target_link_libraries(ctxstore_node PRIVATE ctxstore::ctxstore)
ctxstore_warnings(ctxstore_node)

add_executable(remote_client ${CMAKE_CURRENT_LIST_DIR}/remote_client.cpp)
target_link_libraries(remote_client PRIVATE ctxstore::ctxstore)
ctxstore_warnings(remote_client)

# Starts the node on a free port, runs the client's demo against it, stops the
# node with SIGTERM; prints "example_node_and_client: ok" only if all of it
# worked (the script bounds each step with `timeout` and reaps its children).
add_test(NAME example_node_and_client
  COMMAND ${CMAKE_CURRENT_LIST_DIR}/run_node_and_client.sh
          $<TARGET_FILE:ctxstore_node> $<TARGET_FILE:remote_client>)
set_tests_properties(example_node_and_client PROPERTIES
  PASS_REGULAR_EXPRESSION "example_node_and_client: ok"
  FAIL_REGULAR_EXPRESSION "example_node_and_client: FAILED"
  TIMEOUT 60)
