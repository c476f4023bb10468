// mangen.cpp -- build-time generator of the fence_stockade[_<agent>](8) manual pages: loads each
// agent from the build tree and writes the page from the option table the program itself uses.
// usage: stockade-mangen OUTDIR VERSION AGENT...   (never installed)
#include <cstdio>
#include <fstream>
#include <string>

#include "stockade/frontend/fence_options.hpp"
#include "stockade/registry.hpp"

int main(int argc, char **argv)
{
    if (argc < 3) {
        std::fprintf(stderr, "usage: %s OUTDIR VERSION AGENT...\n", argv[0]);
        return 2;
    }
    const std::string outdir = argv[1], version = argv[2];
    auto write = [&](const std::string &program, const stockade::frontend::OptionTable &table) {
        std::ofstream f(outdir + "/" + program + ".8");
        f << stockade::frontend::manpage_roff(table, program, version);
        f.close();
        if (!f) {
            std::fprintf(stderr, "%s: cannot write %s/%s.8\n", argv[0], outdir.c_str(), program.c_str());
            return false;
        }
        return true;
    };
    if (!write("fence_stockade", stockade::frontend::OptionTable(nullptr, true)))
        return 1;
    stockade::AgentRegistry registry;
    for (int i = 3; i < argc; ++i) {
        auto agent = registry.find(argv[i]);
        if (!agent) {
            std::fprintf(stderr, "%s: %s\n", argv[0], agent.error().message.c_str());
            return 1;
        }
        if (!write(std::string("fence_stockade_") + argv[i], stockade::frontend::OptionTable(*agent, false)))
            return 1;
    }
    return 0;
}
