// template_main.cpp -- Catch2's main for fork_template_tests: forks the agent template first, as
// every front-end does, so that every isolated session in these tests is forked from it.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>

#include "stockade/session.hpp"

int main(int argc, char **argv)
{
    if (auto t = stockade::start_fork_template(); !t) {
        std::fprintf(stderr, "fork_template_tests: the template did not start: %s\n", t.error().message.c_str());
        return 1;
    }
    return Catch::Session().run(argc, argv);
}
