// The one translation unit that holds Catch2's main (keeps every other test file quick to build).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
