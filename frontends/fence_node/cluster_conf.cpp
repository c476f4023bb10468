// cluster_conf.cpp -- see cluster_conf.hpp.  libxml2 parses (no network, no entity expansion);
// the walk below follows cluster.rng's fencing elements and libfence's argument assembly.
#include "cluster_conf.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

#include "libxml_loader.hpp"

#include "stockade/text.hpp"

namespace stockade {

namespace {

using text::ascii_lower;

// Attributes of the fencedevice consumed by stockade itself, never passed to the program.
constexpr std::string_view kTimeoutAttr = "stockade_timeout";

// libxml2, loaded by parse_cluster_conf before any of the functions below runs.
const LibXml &xml() { return *libxml().value(); }

std::string name_of(const xmlNode *n) { return reinterpret_cast<const char *>(n->name); }

bool is(const xmlNode *n, std::string_view name)
{
    return n->type == XML_ELEMENT_NODE && name_of(n) == name;
}

std::vector<const xmlNode *> children(const xmlNode *n, std::string_view name)
{
    std::vector<const xmlNode *> out;
    for (const xmlNode *c = n ? n->children : nullptr; c; c = c->next)
        if (is(c, name))
            out.push_back(c);
    return out;
}

// Every attribute, in document order.
RawParams attributes(const xmlNode *n)
{
    RawParams out;
    for (const xmlAttr *a = n->properties; a; a = a->next) {
        xmlChar *v = xml().node_list_get_string(n->doc, a->children, 1);
        out.emplace_back(reinterpret_cast<const char *>(a->name), v ? reinterpret_cast<const char *>(v) : "");
        xml().free(v);
    }
    return out;
}

std::optional<std::string> attr(const RawParams &attrs, std::string_view name)
{
    for (const auto &[k, v] : attrs)
        if (k == name)
            return v;
    return std::nullopt;
}

RawParams without(const RawParams &attrs, std::string_view name)
{
    RawParams out;
    for (const auto &kv : attrs)
        if (kv.first != name)
            out.push_back(kv);
    return out;
}

Error at(const std::string &source, const xmlNode *n, const std::string &msg)
{
    return make_error(STOCKADE_RC_BAD_CONFIG, "{}:{}: <{}>: {}", source, xml().get_line_no(n), name_of(n), msg);
}

struct Parser {
    const std::string &source;
    ClusterConf out;
    std::map<std::string, RawParams> fencedevice_attrs; // name -> attributes minus name/agent/ours

    // One <device> line of a node: the level entry libfence's make_args amounts to.
    Result<LevelDevice> device_entry(const xmlNode *dev, const std::string &node)
    {
        RawParams attrs = attributes(dev);
        auto name = attr(attrs, "name");
        if (!name || name->empty())
            return at(source, dev, "attribute 'name' is required (the <fencedevice> to use)");
        auto fd = fencedevice_attrs.find(*name);
        if (fd == fencedevice_attrs.end())
            return at(source, dev, "no <fencedevice name=\"" + *name + "\"> in <fencedevices>");
        LevelDevice e;
        e.device = *name;
        e.target = node;
        // The device line's attributes, except those the fencedevice sets too: make_args writes
        // the fencedevice's after them, and the agent keeps the last one.
        for (const auto &[k, v] : without(attrs, "name"))
            if (!attr(fd->second, k) && !(k == "agent"))
                e.params.emplace_back(k, v);
        return e;
    }

    // The dual power supply idiom: first half action=off, second half the same devices with
    // action=on, in the same order.  Returns the first half without the action, or nullopt.
    static std::optional<std::vector<LevelDevice>> collapse_off_on(const std::vector<LevelDevice> &level)
    {
        if (level.size() < 2 || level.size() % 2)
            return std::nullopt;
        size_t half = level.size() / 2;
        std::vector<LevelDevice> out;
        for (size_t i = 0; i < half; ++i) {
            const auto &off = level[i], &on = level[i + half];
            auto a_off = attr(off.params, "action"), a_on = attr(on.params, "action");
            if (!a_off || !a_on || (*a_off != "off" && *a_off != "disable") || (*a_on != "on" && *a_on != "enable"))
                return std::nullopt;
            if (off.device != on.device || without(off.params, "action") != without(on.params, "action"))
                return std::nullopt;
            LevelDevice d = off;
            d.params = without(off.params, "action");
            out.push_back(std::move(d));
        }
        return out;
    }

    Status parse(const xmlNode *root)
    {
        if (!is(root, "cluster"))
            return at(source, root, "the root element must be <cluster>");
        RawParams cattrs = attributes(root);
        out.config.source = source;
        out.config.cluster_name = attr(cattrs, "name").value_or("");

        auto fds = children(root, "fencedevices");
        for (const xmlNode *fdlist : fds)
            for (const xmlNode *fd : children(fdlist, "fencedevice")) {
                RawParams a = attributes(fd);
                auto name = attr(a, "name");
                auto agent = attr(a, "agent");
                if (!name || name->empty())
                    return at(source, fd, "attribute 'name' is required");
                if (!agent || agent->empty())
                    return at(source, fd, "fencedevice '" + *name + "': attribute 'agent' is required");
                if (std::isdigit(static_cast<unsigned char>((*name)[0])))
                    return at(source, fd, "fencedevice '" + *name + "': a name must not start with a digit");
                if (out.config.devices.count(*name))
                    return at(source, fd, "fencedevice '" + *name + "' is defined twice");
                DeviceConfig d;
                d.name = *name;
                d.agent = std::string(kClusterConfAgent);
                d.params.emplace_back("agent", *agent);
                if (auto t = attr(a, kTimeoutAttr)) {
                    char *end = nullptr;
                    long s = std::strtol(t->c_str(), &end, 10);
                    if (t->empty() || *end || s <= 0 || s > 86400)
                        return at(source, fd, "fencedevice '" + *name + "': " + std::string(kTimeoutAttr) + "='" + *t +
                                                  "' is not a number of seconds");
                    d.timeout = std::chrono::milliseconds(s * 1000);
                }
                RawParams pass;
                for (const auto &[k, v] : a)
                    if (k != "name" && k != "agent" && k != kTimeoutAttr)
                        pass.emplace_back(k, v);
                d.params.insert(d.params.end(), pass.begin(), pass.end());
                fencedevice_attrs[*name] = pass;
                out.config.devices.emplace(*name, std::move(d));
            }

        for (const xmlNode *list : children(root, "clusternodes"))
            for (const xmlNode *cn : children(list, "clusternode")) {
                RawParams a = attributes(cn);
                auto name = attr(a, "name");
                if (!name || name->empty())
                    return at(source, cn, "attribute 'name' is required");
                if (!attr(a, "nodeid"))
                    return at(source, cn, "clusternode '" + *name + "': attribute 'nodeid' is required");
                if (out.config.find_node(*name))
                    return at(source, cn, "clusternode '" + *name + "' is defined twice");
                NodeConfig node;
                node.name = *name;
                node.action = PowerAction::Reboot; // fence-agents' default action, as fenced
                std::vector<std::string> method_names;
                for (const xmlNode *fence : children(cn, "fence"))
                    for (const xmlNode *m : children(fence, "method")) {
                        auto mname = attr(attributes(m), "name");
                        if (!mname)
                            return at(source, m, "clusternode '" + *name + "': attribute 'name' is required");
                        if (std::find(method_names.begin(), method_names.end(), *mname) != method_names.end())
                            return at(source, m, "clusternode '" + *name + "': two methods named '" + *mname +
                                                     "' (libfence finds devices by method name)");
                        method_names.push_back(*mname);
                        std::vector<LevelDevice> level;
                        for (const xmlNode *dev : children(m, "device")) {
                            auto e = device_entry(dev, *name);
                            if (!e)
                                return e.error();
                            level.push_back(std::move(e.value()));
                        }
                        if (level.empty()) {
                            out.warnings.push_back(fmt::format("{}:{}: clusternode '{}' method '{}' has no device "
                                                               "(libfence: error no device); skipped",
                                                               source, xml().get_line_no(m), *name, *mname));
                            continue;
                        }
                        if (auto c = collapse_off_on(level))
                            level = std::move(*c);
                        node.levels.push_back(std::move(level));
                    }
                std::vector<LevelDevice> unf;
                for (const xmlNode *u : children(cn, "unfence"))
                    for (const xmlNode *dev : children(u, "device")) {
                        auto e = device_entry(dev, *name);
                        if (!e)
                            return e.error();
                        unf.push_back(std::move(e.value()));
                    }
                if (!unf.empty())
                    out.unfence[*name] = std::move(unf);
                out.config.nodes.push_back(std::move(node));
            }
        return {};
    }
};

} // namespace

const std::vector<LevelDevice> *ClusterConf::find_unfence(std::string_view node) const
{
    for (const auto &[k, v] : unfence)
        if (ascii_lower(k) == ascii_lower(node))
            return &v;
    return nullptr;
}

std::string ClusterConf::program_of(const std::string &device) const
{
    auto it = config.devices.find(device);
    if (it == config.devices.end())
        return "none";
    for (const auto &[k, v] : it->second.params)
        if (k == "agent")
            return v;
    return "none";
}

Result<ClusterConf> parse_cluster_conf(std::string_view text, const std::string &source)
{
    // The first error is the one that names the culprit (later ones are consequences, such as
    // "Premature end of data" at the end of the file); collect it through a structured handler.
    struct FirstError {
        bool seen = false;
        int line = 0;
        std::string message;
    } first;
    if (auto api = libxml(); !api)
        return make_error(api.error().rc, "{}: {}", source, api.error().message);
    xmlParserCtxtPtr ctxt = xml().new_parser_ctxt();
    if (!ctxt)
        return make_error(STOCKADE_RC_INTERNAL, "{}: out of memory creating the XML parser", source);
    xml().set_structured_error_func(&first, [](void *user, xmlErrorPtr e) {
        auto *f = static_cast<FirstError *>(user);
        if (f->seen || !e || e->level < XML_ERR_ERROR)
            return;
        f->seen = true;
        f->line = e->line;
        f->message = e->message ? e->message : "";
    });
    xmlDocPtr doc = xml().ctxt_read_memory(ctxt, text.data(), int(text.size()), source.c_str(), nullptr, XML_PARSE_NONET);
    xml().set_structured_error_func(nullptr, nullptr);
    bool well_formed = ctxt->wellFormed;
    xml().free_parser_ctxt(ctxt);
    if (!doc || !well_formed) {
        if (doc)
            xml().free_doc(doc);
        std::string msg = first.seen ? first.message : "not well-formed XML";
        while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' '))
            msg.pop_back();
        for (auto &c : msg)
            if (c == '\n')
                c = ' ';
        return make_error(STOCKADE_RC_BAD_CONFIG, "{}:{}: malformed XML: {}", source, first.line, msg);
    }
    Parser p{source, {}, {}};
    Status s = p.parse(xml().doc_get_root_element(doc));
    xml().free_doc(doc);
    if (!s)
        return s.error();
    return std::move(p.out);
}

Result<ClusterConf> load_cluster_conf(const std::string &path)
{
    std::ifstream f(path);
    if (!f)
        return make_error(STOCKADE_RC_BAD_CONFIG, "{}: cannot read the file", path);
    std::stringstream ss;
    ss << f.rdbuf();
    return parse_cluster_conf(ss.str(), path);
}

} // namespace stockade
