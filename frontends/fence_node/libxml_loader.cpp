// libxml_loader.cpp -- see libxml_loader.hpp.
#include "libxml_loader.hpp"

#include <dlfcn.h>

namespace stockade {

namespace {

constexpr const char *kLibXml = "libxml2.so.2";

template <class F>
bool find(void *lib, const char *name, F &fn)
{
    fn = reinterpret_cast<F>(::dlsym(lib, name));
    return fn != nullptr;
}

Result<const LibXml *> load()
{
    static LibXml api;
    void *lib = ::dlopen(kLibXml, RTLD_NOW | RTLD_LOCAL); // never dlclosed
    if (!lib)
        return make_error(STOCKADE_RC_INTERNAL, "cluster.conf support needs {}: {}", kLibXml, ::dlerror());
    void *free_var = ::dlsym(lib, "xmlFree");
    bool ok = find(lib, "xmlNewParserCtxt", api.new_parser_ctxt) && find(lib, "xmlFreeParserCtxt", api.free_parser_ctxt) &&
              find(lib, "xmlCtxtReadMemory", api.ctxt_read_memory) &&
              find(lib, "xmlSetStructuredErrorFunc", api.set_structured_error_func) &&
              find(lib, "xmlDocGetRootElement", api.doc_get_root_element) && find(lib, "xmlFreeDoc", api.free_doc) &&
              find(lib, "xmlGetLineNo", api.get_line_no) && find(lib, "xmlNodeListGetString", api.node_list_get_string) &&
              free_var;
    if (!ok)
        return make_error(STOCKADE_RC_INTERNAL, "{} lacks a function the cluster.conf parser needs", kLibXml);
    api.free = *static_cast<xmlFreeFunc *>(free_var);
    return &api;
}

} // namespace

Result<const LibXml *> libxml()
{
    static const Result<const LibXml *> loaded = load();
    return loaded;
}

} // namespace stockade
