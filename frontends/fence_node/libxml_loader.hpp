// libxml_loader.hpp -- libxml2 for the cluster.conf parser, loaded with dlopen() the first time a
// cluster.conf is parsed.  The `stockade` command links the parser, but most of its runs read a
// JSON configuration: linking libxml2 made every one of them load libxml2 and the ICU libraries it
// depends on (about 35 MB mapped, measurable start-up time; see bench/RESULTS.md).  Only the nine
// functions the parser calls are looked up; the headers are used for types and constants only.
#pragma once

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>

#include "stockade/result.hpp"

namespace stockade {

struct LibXml {
    decltype(&::xmlNewParserCtxt) new_parser_ctxt;
    decltype(&::xmlFreeParserCtxt) free_parser_ctxt;
    decltype(&::xmlCtxtReadMemory) ctxt_read_memory;
    decltype(&::xmlSetStructuredErrorFunc) set_structured_error_func;
    decltype(&::xmlDocGetRootElement) doc_get_root_element;
    decltype(&::xmlFreeDoc) free_doc;
    decltype(&::xmlGetLineNo) get_line_no;
    decltype(&::xmlNodeListGetString) node_list_get_string;
    xmlFreeFunc free; // the value of libxml2's `xmlFree` variable
};

// Loaded once per process (thread-safe); the error names the library and what was missing.
Result<const LibXml *> libxml();

} // namespace stockade
