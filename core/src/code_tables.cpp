// code_tables.cpp -- lookups over the constexpr tables of code_tables.hpp.
#include "stockade/code_tables.hpp"

namespace stockade {

std::optional<PowerAction> parse_power_action(std::string_view name)
{
    for (const auto &i : kPowerActions)
        if (i.name == name)
            return i.action;
    if (name == "reset" || name == "reboot")
        return PowerAction::Reboot;
    return std::nullopt;
}

const ParamTypeInfo *param_type_info(uint32_t type)
{
    for (const auto &i : kParamTypes)
        if (i.type == type)
            return &i;
    return nullptr;
}

} // namespace stockade
