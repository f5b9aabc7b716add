// Catch2's main lives alone: it is the slowest unit to compile.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
