// manpage.cpp -- a fence_stockade_<agent>(8) manual page (roff) from the same option table that
// `-o metadata` and `-h` print, so the page can never disagree with what the program accepts.
// packaging/man runs it at build time for every installed agent.
#include <string>

#include <fmt/format.h>

#include "stockade/frontend/fence_options.hpp"
#include "stockade/registry.hpp"

namespace stockade::frontend {

namespace {

// roff-safe text: backslashes doubled, a leading '.' or '\'' guarded, '-' as a real hyphen-minus.
std::string roff(std::string_view s)
{
    std::string out;
    for (char c : s) {
        if (c == '\\')
            out += "\\e";
        else if (c == '-')
            out += "\\-";
        else
            out += c;
    }
    if (!out.empty() && (out[0] == '.' || out[0] == '\''))
        out.insert(0, "\\&");
    return out;
}

} // namespace

std::string manpage_roff(const OptionTable &table, std::string_view program_name, std::string_view version)
{
    const AgentInfo *a = table.agent();
    std::string out;
    out += fmt::format(".TH {} 8 \"\" \"stockade {}\" \"System Administration\"\n", roff(program_name), version);
    out += ".SH NAME\n";
    out += fmt::format("{} \\- {}\n", roff(program_name),
                       roff(a ? a->summary : "any stockade agent through the fence-agents calling convention"));
    out += ".SH SYNOPSIS\n";
    out += fmt::format(".B {}\n[\\fIOPTIONS\\fR]\n.br\n.B {}\n< \\fIkey=value lines\\fR\n", roff(program_name),
                       roff(program_name));
    out += ".SH DESCRIPTION\n";
    if (a && !a->description.empty())
        out += roff(a->description) + "\n.PP\n";
    out += "A fence-agents program for pacemaker-fenced and cman's fenced: with arguments, GNU-style options; "
           "with none, key=value lines on stdin (the names in \\fBSTDIN PARAMETERS\\fR).  Exit 0 on success, "
           "1 on failure, and for \\fBstatus\\fR 0 on, 2 off, 1 unknown.  The XML description "
           "(\\fB\\-o metadata\\fR) lists the same parameters.\n";
    out += ".SH ACTIONS\n";
    std::string actions;
    for (const auto &act : table.actions())
        actions += (actions.empty() ? "" : ", ") + ("\\fB" + roff(act) + "\\fR");
    out += actions + "\n";
    out += fmt::format(".PP\nDefault action: \\fB{}\\fR.\n", roff(table.default_action()));
    out += ".SH OPTIONS\n";
    for (const auto &s : table.specs()) {
        if (!s.in_metadata)
            continue;
        std::string head;
        if (s.short_opt)
            head += fmt::format("\\fB\\-{}\\fR, ", s.short_opt);
        head += "\\fB\\-\\-" + roff(s.longopt) + "\\fR";
        if (s.takes_value)
            head += "=\\fI" + roff(s.metavar.empty() ? s.content : s.metavar) + "\\fR";
        out += ".TP\n" + head + "\n";
        std::string text = s.shortdesc;
        if (!s.choices.empty()) {
            std::string choices;
            for (const auto &c : s.choices)
                choices += (choices.empty() ? "" : "|") + c;
            text += " (one of " + choices + ")";
        }
        if (!text.empty() && text.back() != '.')
            text += '.';
        if (s.default_value && !s.default_value->empty())
            text += " Default: " + *s.default_value + ".";
        if (s.required)
            text += " Required.";
        if (s.secret)
            text += " Secret: never logged; prefer stdin or a password file over the command line.";
        out += roff(text) + "\n";
    }
    out += ".SH STDIN PARAMETERS\n";
    out += "On stdin, each option is \\fIname\\fR=\\fIvalue\\fR with any of these names:\n";
    for (const auto &s : table.specs()) {
        if (!s.in_metadata || s.names.empty())
            continue;
        std::string names;
        for (const auto &n : s.names)
            names += (names.empty() ? "" : ", ") + roff(n);
        out += ".TP\n\\fB" + roff(s.key) + "\\fR\n" + names + "\n";
    }
    out += ".SH EXAMPLES\n.nf\n";
    out += fmt::format("{} \\-o metadata\n", roff(program_name));
    out += fmt::format("stonith_admin \\-\\-register dev1 \\-\\-agent {} \\-o pcmk_host_list=node1\n", roff(program_name));
    out += ".fi\n";
    out += ".SH SEE ALSO\n\\fBstockade\\fR(8), \\fBstockade.json\\fR(5), \\fBstonith_admin\\fR(8), "
           "\\fBpacemaker\\-fenced\\fR(7)\n";
    return out;
}

} // namespace stockade::frontend
