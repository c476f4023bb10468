// metadata_xml.cpp -- fence-agents metadata (`-o metadata`) and usage (`-h`) from the option table.
//
// Pacemaker decides from this XML which actions a device supports (reboot/list/status drive its
// host checks and reboot remapping) and which parameter carries the target (plug/port), and
// pcs/crmsh show it to administrators.  The shape follows fence-agents' lib/metadata.rng: renamed
// options are listed twice (old name deprecated="1", new name obsoletes="old"), unique="0",
// content types boolean|string|second|integer|select.  The schema allows no extra attributes, so
// secret parameters are not flagged in the XML (fence-agents does not flag its passwords either);
// their defaults are never shown.
#include <algorithm>
#include <tuple>

#include <fmt/format.h>

#include "stockade/frontend/fence_options.hpp"
#include "stockade/text.hpp"

namespace stockade::frontend {

namespace {

using text::xml_escape;

std::string getopt_mixed(const OptionSpec &s)
{
    std::string out = s.short_opt ? fmt::format("-{}, --{}", s.short_opt, s.longopt) : "--" + s.longopt;
    if (s.takes_value)
        out += "=[" + (s.metavar.empty() ? s.key : s.metavar) + "]";
    return out;
}

struct Entry {
    std::string name;
    const OptionSpec *spec;
    std::string extra; // deprecated / obsoletes attribute
};

} // namespace

std::string metadata_xml(const OptionTable &table, std::string_view program_name)
{
    const AgentInfo *a = table.agent();
    std::string shortdesc = a ? a->summary : "stockade fencing agent (choose it with agent=)";
    std::string longdesc = a ? (a->description.empty() ? a->summary : a->description)
                             : "Runs any stockade agent through the fence-agents calling convention; "
                               "the agent is chosen with agent=.";
    if (a)
        longdesc += fmt::format(" (stockade agent '{}' {})", a->name, a->version);
    // An agent that states its own need (time_needed) needs a device setting under Pacemaker that
    // only the cluster configuration can carry (the fencer passes no pcmk_* to the agent); one whose
    // work is waiting (STOCKADE_CAP_WAITS) also one attempt only.
    if (a && a->time_needed && a->can(STOCKADE_CAP_WAITS))
        longdesc += " Under Pacemaker give this device pcmk_off_timeout (and pcmk_reboot_timeout) at least what "
                    "-o validate-all prints, and pcmk_off_retries=1 (pcmk_reboot_retries=1): a retry would start "
                    "its wait again.";
    else if (a && a->time_needed)
        longdesc += " Under Pacemaker give this device pcmk_off_timeout (and pcmk_reboot_timeout) at least what "
                    "-o validate-all prints.";

    std::vector<Entry> entries;
    for (const auto &s : table.specs()) {
        if (!s.in_metadata)
            continue;
        if (s.new_key.empty()) {
            entries.push_back({s.key, &s, ""});
        } else {
            entries.push_back({s.key, &s, " deprecated=\"1\""});
            entries.push_back({s.new_key, &s, fmt::format(" obsoletes=\"{}\"", xml_escape(s.key))});
        }
        // Every other name the option accepts (an agent's aliases: libvirt's connect_timeout under
        // login_timeout, cluster-glue names) is listed too, as fence-agents lists an old name:
        // deprecated, same content.  pcmk_* names are Pacemaker's own and never listed.
        for (const auto &n : s.names) {
            if (n == s.key || n == s.new_key || n.rfind("pcmk_", 0) == 0 || table.find_stdin(n) != &s)
                continue;
            if (std::none_of(entries.begin(), entries.end(), [&](const Entry &e) { return e.name == n; }))
                entries.push_back({n, &s, " deprecated=\"1\""});
        }
    }
    std::stable_sort(entries.begin(), entries.end(), [](const Entry &x, const Entry &y) {
        return std::tie(x.spec->order, x.name) < std::tie(y.spec->order, y.name);
    });

    std::string out = "<?xml version=\"1.0\" ?>\n";
    out += fmt::format("<resource-agent name=\"{}\" shortdesc=\"{}\" >\n", xml_escape(program_name),
                       xml_escape(shortdesc));
    out += fmt::format("<longdesc>{}</longdesc>\n", xml_escape(longdesc));
    out += "<vendor-url></vendor-url>\n<parameters>\n";
    for (const auto &e : entries) {
        const OptionSpec &s = *e.spec;
        out += fmt::format("\t<parameter name=\"{}\" unique=\"0\" required=\"{}\"{}>\n", xml_escape(e.name),
                           s.required ? 1 : 0, e.extra);
        out += fmt::format("\t\t<getopt mixed=\"{}\" />\n", xml_escape(getopt_mixed(s)));
        std::string dflt = s.default_value && !s.secret
                               ? fmt::format("default=\"{}\" ", xml_escape(*s.default_value))
                               : std::string();
        if (s.content == "select") {
            out += fmt::format("\t\t<content type=\"select\" {} >\n", dflt);
            for (const auto &c : s.choices)
                out += fmt::format("\t\t\t<option value=\"{}\" />\n", xml_escape(c));
            out += "\t\t</content>\n";
        } else {
            out += fmt::format("\t\t<content type=\"{}\" {} />\n", s.content, dflt);
        }
        out += fmt::format("\t\t<shortdesc lang=\"en\">{}</shortdesc>\n", xml_escape(s.shortdesc));
        out += "\t</parameter>\n";
    }
    out += "</parameters>\n<actions>\n";
    for (const auto &act : table.actions()) {
        // An unfencing "on" runs by itself when a node joins, on that node (as fence_scsi's).
        if (act == "on" && a && a->can(STOCKADE_CAP_UNFENCE))
            out += "\t<action name=\"on\" on_target=\"1\" automatic=\"1\"/>\n";
        else if (act == "on")
            out += "\t<action name=\"on\" automatic=\"0\"/>\n";
        else
            out += fmt::format("\t<action name=\"{}\" />\n", act);
    }
    out += "</actions>\n</resource-agent>\n";
    return out;
}

std::string usage_text(const OptionTable &table, std::string_view program_name)
{
    std::string out = fmt::format("Usage:\n\t{} [options]\nOptions:\n", program_name);
    std::vector<const OptionSpec *> specs;
    for (const auto &s : table.specs())
        specs.push_back(&s);
    std::stable_sort(specs.begin(), specs.end(),
                     [](const OptionSpec *x, const OptionSpec *y) { return std::tie(x->order, x->key) < std::tie(y->order, y->key); });
    for (const OptionSpec *s : specs) {
        std::string opt = getopt_mixed(*s);
        std::string desc = s->shortdesc;
        if (s->field == Field::Action)
            desc = "Action: " + fmt::format("{}", fmt::join(table.actions(), ", ")) + " (default " +
                   table.default_action() + ")";
        if (s->default_value && !s->secret && s->field != Field::Action)
            desc += " (default " + *s->default_value + ")";
        out += fmt::format("   {:<34} {}\n", opt, desc);
    }
    out += "\nWith no arguments, options are read from stdin as key=value lines (fence-agents convention).\n";
    return out;
}

} // namespace stockade::frontend
