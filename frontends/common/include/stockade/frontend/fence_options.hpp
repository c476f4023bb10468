// fence_options.hpp -- THE fence-agents option parser every stockade front-end shares.
//
// Pacemaker's fencer, cman's fenced and people's scripts drive fence agents through one calling
// convention (fence-agents' lib/fencing.py): with no arguments, key=value lines on stdin; with
// arguments, GNU getopt long/short options.  Both must be accepted exactly as fence-agents accepts
// them, or a stockade agent would not be a drop-in replacement.  This file builds the set of
// accepted options for one agent (its ABI parameter table plus the options the front-end itself
// honours), parses either input form into one ParsedInput, and maps it onto the agent's table.
// Nothing here prints or exits: warnings and errors come back as values, in fence-agents' words.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "stockade/registry.hpp"
#include "stockade/result.hpp"

namespace stockade::frontend {

// What a front-end option feeds.  None = an agent parameter only.
enum class Field {
    None,
    Action,
    Plug,
    Nodename,
    Agent,
    PasswordScript,
    Verbose,
    VerboseLevel,
    DebugFile,
    Quiet,
    Help,
    Version,
    Delay,
    LoginTimeout,
    ShellTimeout,
    PowerTimeout,
    PowerWait,
    RetryOn,
    DisableTimeout,
    TotalTimeout,
    Separator,
    PlugSeparator,
    Config, // generic fence_stockade: run a node's levels from a stockade JSON config
};

// One accepted option, after merging the fence-agents name table with the agent's parameters.
struct OptionSpec {
    std::string key;            // stdin / metadata name (fence-agents' internal name when it has one)
    std::string new_key;        // fence-agents' new name (longopt with '_') when it differs from key, else ""
    std::string longopt;        // without the leading "--"
    char short_opt = 0;         // 0 = none
    bool takes_value = true;    // false = a flag (boolean on stdin)
    bool optional_value = false; // agent booleans: --flag or --flag=0
    std::vector<std::string> names; // every accepted stdin name, normalised ('-' -> '_')
    Field field = Field::None;
    const ParamInfo *param = nullptr; // agent parameter fed by this option, if any
    bool secret = false;
    bool in_metadata = true;
    // Metadata.
    std::string content = "string"; // boolean|string|second|integer|select
    std::vector<std::string> choices;
    std::optional<std::string> default_value;
    std::string metavar;
    std::string shortdesc;
    bool required = false;
    int order = 1;
};

// The option set of one front-end invocation.
class OptionTable {
public:
    // agent may be null: the generic front-end before agent= is known (metadata only).
    // generic: the front-end is `fence_stockade` and takes agent=.
    OptionTable(const AgentInfo *agent, bool generic);

    const AgentInfo *agent() const { return agent_; }
    bool generic() const { return generic_; }
    const std::vector<OptionSpec> &specs() const { return specs_; }

    // Lookup by a stdin key: as given, with '-' and '_' equivalent; case-sensitive as fence-agents.
    const OptionSpec *find_stdin(std::string_view name) const;
    // Lookup by long option name: exact, else a unique prefix (GNU getopt); *ambiguous set when
    // the prefix matches several.
    const OptionSpec *find_long(std::string_view name, bool *ambiguous = nullptr) const;
    const OptionSpec *find_short(char c) const;

    // Actions this agent accepts, in fence-agents' metadata order ("on" first).
    std::vector<std::string> actions() const;
    bool accepts_action(std::string_view action) const;
    // "reboot" when the agent can reboot, else "off" (fabric-style agents).
    std::string default_action() const;

private:
    void add(OptionSpec spec);

    const AgentInfo *agent_;
    bool generic_;
    std::vector<OptionSpec> specs_;
};

// Everything one invocation asked for.
struct ParsedInput {
    std::map<Field, std::string> fields;    // front-end options that were given (last one wins)
    RawParams agent_params;                 // canonical agent parameter names -> values, in order
    std::vector<std::string> warnings;      // fence-agents' wording, e.g. "Parse error: Ignoring unknown option 'x=1'"
    std::vector<std::string> errors;        // lines that must stop the run before any action (a NUL byte)
    int verbose_count = 0;                  // -v given n times (argv), or verbose=1 (stdin)
    // argv only: where secret values sit, so the caller can scrub them from its own argv
    // (argument index, offset of the value in that argument).
    std::vector<std::pair<size_t, size_t>> secret_spans;

    std::optional<std::string> get(Field f) const;
    bool has(Field f) const { return fields.count(f) != 0; }
};

// The stdin grammar: strip each line, skip '#' comments and empty lines, split at the first '='
// (no '=' = empty value), strip one pair of surrounding double quotes, '-'/'_' equivalent keys,
// last one wins, unknown keys warned and ignored, flags take 1|yes|on|true / 0|no|off|false.
// A line holding a NUL byte is an error naming its key (in.errors): the caller runs nothing.
ParsedInput parse_stdin(std::string_view text, const OptionTable &table);

// GNU getopt over args (argv without argv[0]): long options (--name=v, --name v, unique
// prefixes), short clusters (-vvv, -aHOST, -a HOST), "--" ends options, operands anywhere are
// warned as unused.  Errors are fence-agents' "Parse error: ..." line.
Result<ParsedInput> parse_argv(const std::vector<std::string> &args, const OptionTable &table);

// The value of `agent=` / `--agent` before the table is known (the generic front-end picks its
// agent from it).  "fence_stockade_sim" and "sim" both give "sim".
std::optional<std::string> peek_agent_stdin(std::string_view text);
std::optional<std::string> peek_agent_argv(const std::vector<std::string> &args);
std::string agent_from_program_name(std::string_view argv0); // "" for the generic front-end
inline constexpr std::string_view kProgramPrefix = "fence_stockade_";
inline constexpr std::string_view kGenericProgram = "fence_stockade";

// Front-end settings after defaults and checks.
struct FrontendSettings {
    std::string action;
    std::vector<std::string> targets; // plug split by plug_separator, else nodename; may be empty
    int delay_s = 0;
    int login_timeout_s = 5;
    int shell_timeout_s = 3;
    int power_timeout_s = 20;
    int power_wait_s = 0;
    int retry_on = 1;
    int total_timeout_s = 55;
    bool total_timeout_set = false; // given by the caller: a limit the agent's own need must fit
    bool disable_timeout_requested = false;
    int verbose_level = 0;
    bool quiet = false;
    std::string debug_file;
    std::string separator = ",";
    std::optional<std::string> password_script;
};

// Checks types and choices the way fence-agents' check_input does and fills defaults.  Every
// problem is one line in fence-agents' words ("Failed: The value you have entered for
// --power-timeout is not a valid time in seconds").  Action is lower-cased; meta-data -> metadata.
Result<FrontendSettings> settle(const ParsedInput &in, const OptionTable &table, std::vector<std::string> *problems);

// The agent parameters to open the device with: the parsed ones, host-supplied parameters filled
// from the target, then resolved against the agent's table (types, defaults, required).
// `missing` (optional) collects fence-agents-style lines for required parameters left unset.
Result<ParamList> agent_params(const ParsedInput &in, const FrontendSettings &s, const OptionTable &table,
                               std::vector<std::string> *missing = nullptr);

// The parameter a password_script result goes into: "password" by name or alias, else the first
// secret parameter; null when the agent has none.
const ParamInfo *password_param(const AgentInfo &agent);

// fence-agents metadata XML (validates against fence-agents' metadata.rng).
std::string metadata_xml(const OptionTable &table, std::string_view program_name);

// Usage text for -h.
std::string usage_text(const OptionTable &table, std::string_view program_name);
// The program's manual page (roff, section 8) from the same table (manpage.cpp).
std::string manpage_roff(const OptionTable &table, std::string_view program_name, std::string_view version);

// fence-agents' truthy / falsy words.
std::optional<bool> parse_flag_value(std::string_view v);

} // namespace stockade::frontend
