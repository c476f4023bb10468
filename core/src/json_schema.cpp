// json_schema.cpp -- a small JSON Schema validator; see json_schema.hpp for the subset.
#include "stockade/json_schema.hpp"

#include <cmath>
#include <map>
#include <optional>
#include <regex>

namespace stockade {

namespace {

using json = nlohmann::json;

std::string type_of(const json &v)
{
    if (v.is_null()) return "null";
    if (v.is_boolean()) return "boolean";
    if (v.is_number_integer() || v.is_number_unsigned()) return "integer";
    if (v.is_number()) return "number";
    if (v.is_string()) return "string";
    if (v.is_array()) return "array";
    return "object";
}

bool type_matches(const std::string &want, const json &v)
{
    std::string t = type_of(v);
    if (want == t)
        return true;
    if (want == "number" && t == "integer")
        return true;
    if (want == "integer" && v.is_number_float()) {
        // Whole and within long long: casting a double outside that range is undefined (found by
        // tests/fuzz/fuzz_config with -1e308).
        double d = v.get<double>();
        return std::isfinite(d) && d >= -9.2e18 && d <= 9.2e18 && d == std::trunc(d);
    }
    return false;
}

std::string describe_types(const json &t)
{
    if (t.is_string())
        return t.get<std::string>() == "object" ? "an object" : t.get<std::string>() == "array" ? "an array"
                                                                                              : "a " + t.get<std::string>();
    std::string out;
    for (size_t i = 0; i < t.size(); ++i) {
        if (i)
            out += i + 1 == t.size() ? " or " : ", ";
        out += t[i].get<std::string>();
    }
    return out;
}

std::string short_value(const json &v)
{
    std::string s = v.dump();
    return s.size() > 40 ? s.substr(0, 37) + "..." : s;
}

class Validator {
public:
    explicit Validator(const json &root) : root_(root) {}

    // Appends every problem of `v` (at pointer `path`) to `out`.  A value of the wrong type gets
    // that one error: the keywords for the right type would only repeat it.
    void check(const json &schema, const json &v, const std::string &path, std::vector<Error> &out) const
    {
        const std::string at = path.empty() ? "/" : path;
        auto fail = [&](const std::string &msg) { out.push_back(field_error(STOCKADE_RC_BAD_CONFIG, at, msg)); };
        if (schema.is_boolean()) {
            if (!schema.get<bool>())
                fail("is not allowed here");
            return;
        }
        if (!schema.is_object())
            return;
        if (auto r = schema.find("$ref"); r != schema.end()) {
            const json *target = resolve(r->get<std::string>());
            if (!target)
                return fail("schema error: unresolved $ref " + r->get<std::string>());
            size_t before = out.size();
            check(*target, v, path, out);
            if (out.size() != before)
                return;
        }
        if (auto t = schema.find("type"); t != schema.end()) {
            bool ok = false;
            if (t->is_string())
                ok = type_matches(t->get<std::string>(), v);
            else
                for (const auto &x : *t)
                    ok = ok || type_matches(x.get<std::string>(), v);
            if (!ok)
                return fail("must be " + describe_types(*t) + ", not " + type_of(v));
        }
        if (auto e = schema.find("enum"); e != schema.end()) {
            bool ok = false;
            for (const auto &x : *e)
                ok = ok || x == v;
            if (!ok) {
                std::string opts;
                for (const auto &x : *e)
                    opts += (opts.empty() ? "" : ", ") + x.dump();
                fail("must be one of " + opts + ", not " + short_value(v));
            }
        }
        if (auto c = schema.find("const"); c != schema.end() && *c != v)
            fail("must be " + c->dump());
        if (v.is_number()) {
            double d = v.get<double>();
            if (auto m = schema.find("minimum"); m != schema.end() && d < m->get<double>())
                fail("must be >= " + m->dump());
            if (auto m = schema.find("maximum"); m != schema.end() && d > m->get<double>())
                fail("must be <= " + m->dump());
            if (auto m = schema.find("exclusiveMinimum"); m != schema.end() && d <= m->get<double>())
                fail("must be > " + m->dump());
            if (auto m = schema.find("exclusiveMaximum"); m != schema.end() && d >= m->get<double>())
                fail("must be < " + m->dump());
        }
        if (v.is_string()) {
            const auto &s = v.get_ref<const std::string &>();
            if (auto m = schema.find("minLength"); m != schema.end() && s.size() < m->get<size_t>())
                fail(m->get<size_t>() == 1 ? "must not be empty" : "is too short");
            if (auto m = schema.find("maxLength"); m != schema.end() && s.size() > m->get<size_t>())
                fail("is longer than " + m->dump() + " characters");
            if (auto p = schema.find("pattern"); p != schema.end())
                if (!std::regex_search(s, compiled(p->get_ref<const std::string &>())))
                    fail("'" + s + "' does not match " + p->get<std::string>());
        }
        if (v.is_array()) {
            if (auto m = schema.find("minItems"); m != schema.end() && v.size() < m->get<size_t>())
                fail("needs at least " + m->dump() + (m->get<size_t>() == 1 ? " item" : " items"));
            if (auto m = schema.find("maxItems"); m != schema.end() && v.size() > m->get<size_t>())
                fail("has more than " + m->dump() + " items");
            if (auto it = schema.find("items"); it != schema.end())
                for (size_t i = 0; i < v.size(); ++i)
                    check(*it, v[i], path + "/" + std::to_string(i), out);
        }
        if (v.is_object()) {
            if (auto m = schema.find("minProperties"); m != schema.end() && v.size() < m->get<size_t>())
                fail("needs at least " + m->dump() + (m->get<size_t>() == 1 ? " entry" : " entries"));
            if (auto req = schema.find("required"); req != schema.end())
                for (const auto &k : *req)
                    if (!v.contains(k.get<std::string>()))
                        fail("missing required field '" + k.get<std::string>() + "'");
            const json *props = nullptr;
            if (auto p = schema.find("properties"); p != schema.end())
                props = &*p;
            auto names = schema.find("propertyNames");
            auto extra = schema.find("additionalProperties");
            for (auto it = v.begin(); it != v.end(); ++it) {
                std::string sub = path + "/" + json_pointer_token(it.key());
                if (names != schema.end()) {
                    std::vector<Error> bad;
                    check(*names, json(it.key()), sub, bad);
                    if (!bad.empty()) {
                        out.push_back(field_error(STOCKADE_RC_BAD_CONFIG, sub, "invalid name: " + bad.front().problem));
                        continue;
                    }
                }
                if (props && props->contains(it.key())) {
                    check((*props)[it.key()], it.value(), sub, out);
                } else if (extra != schema.end()) {
                    if (extra->is_boolean() && !extra->get<bool>())
                        out.push_back(field_error(STOCKADE_RC_BAD_CONFIG, sub, "unknown field '" + it.key() + "'"));
                    else
                        check(*extra, it.value(), sub, out);
                }
            }
        }
        if (auto one = schema.find("oneOf"); one != schema.end()) {
            int matches = 0;
            std::optional<std::vector<Error>> best;
            for (const auto &alt : *one) {
                std::vector<Error> errs;
                check(alt, v, path, errs);
                if (errs.empty())
                    ++matches;
                else if (!best || branch_fits_type(alt, v))
                    best = std::move(errs); // the alternative whose type fits says what is wrong
            }
            if (matches == 0) {
                if (best)
                    out.insert(out.end(), best->begin(), best->end());
                else
                    fail("matches none of the allowed forms");
            }
            if (matches > 1)
                fail("is ambiguous (matches several allowed forms)");
        }
        if (auto any = schema.find("anyOf"); any != schema.end()) {
            std::optional<std::vector<Error>> first;
            bool ok = false;
            for (const auto &alt : *any) {
                std::vector<Error> errs;
                check(alt, v, path, errs);
                if (errs.empty()) {
                    ok = true;
                    break;
                }
                if (!first)
                    first = std::move(errs);
            }
            if (!ok) {
                if (first)
                    out.insert(out.end(), first->begin(), first->end());
                else
                    fail("matches none of the allowed forms");
            }
        }
    }

private:
    bool branch_fits_type(const json &alt, const json &v) const
    {
        const json *a = &alt;
        if (alt.is_object() && alt.contains("$ref"))
            a = resolve(alt["$ref"].get<std::string>());
        if (!a || !a->is_object() || !a->contains("type"))
            return false;
        const json &t = (*a)["type"];
        if (t.is_string())
            return type_matches(t.get<std::string>(), v);
        for (const auto &x : t)
            if (type_matches(x.get<std::string>(), v))
                return true;
        return false;
    }

    const json *resolve(const std::string &ref) const
    {
        if (ref.rfind("#/", 0) != 0)
            return nullptr;
        try {
            return &root_.at(json::json_pointer(ref.substr(1)));
        } catch (const std::exception &) {
            return nullptr;
        }
    }

    // A schema's pattern compiled once per validation, not once per value it checks (a config
    // with 256 devices checked every device's patterns again: ~10 % of `stockade status`'s CPU).
    const std::regex &compiled(const std::string &pattern) const
    {
        auto it = patterns_.find(pattern);
        if (it == patterns_.end())
            it = patterns_.emplace(pattern, std::regex(pattern)).first;
        return it->second;
    }

    const json &root_;
    mutable std::map<std::string, std::regex> patterns_;
};

} // namespace

std::vector<Error> validate_json_all(const nlohmann::json &schema, const nlohmann::json &instance)
{
    std::vector<Error> out;
    try {
        Validator(schema).check(schema, instance, "", out);
    } catch (const std::exception &e) {
        out.push_back(make_error(STOCKADE_RC_INTERNAL, "schema validation failed: {}", e.what()));
    }
    return out;
}

Status validate_json(const nlohmann::json &schema, const nlohmann::json &instance)
{
    auto errors = validate_json_all(schema, instance);
    if (errors.empty())
        return {};
    return errors.front();
}

} // namespace stockade
