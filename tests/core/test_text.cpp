// test_text.cpp -- the shared text rules of stockade/text.hpp: host lists, lower-casing, XML.
#include <catch2/catch.hpp>

#include "stockade/text.hpp"

using namespace stockade::text;
using V = std::vector<std::string>;

TEST_CASE("a host list splits at spaces, tabs, line breaks, commas and semicolons", "[core][text]")
{
    CHECK(split_list("a;b") == V{"a", "b"}); // once one host for three agents, two for two others
    CHECK(split_list("a, b\tc\r\nd ;; e") == V{"a", "b", "c", "d", "e"});
    CHECK(split_list(" ,; \n").empty());
    CHECK(split_list("").empty());
    CHECK(split_list("node1:vm1 node2:vm2") == V{"node1:vm1", "node2:vm2"}); // ':' belongs to the entry
    CHECK(split_list("a|b|c", "|") == V{"a", "b", "c"});
}

TEST_CASE("names lower-case and compare by ASCII only", "[core][text]")
{
    CHECK(ascii_lower("Node-1.EXAMPLE") == "node-1.example");
    CHECK(ascii_lower("\xc3\x89T\xc3\x89") == "\xc3\x89t\xc3\x89"); // bytes above 0x7f untouched
    CHECK(iequals("NODE1", "node1"));
    CHECK_FALSE(iequals("node1", "node10"));
    CHECK_FALSE(iequals("node[", "node{")); // '[' + 0x20 is '{': only letters fold
}

TEST_CASE("xml_escape leaves text that every XML parser accepts", "[core][text]")
{
    CHECK(xml_escape(R"(a&b<c>"d"'e')") == "a&amp;b&lt;c&gt;&quot;d&quot;&apos;e&apos;");
    CHECK(xml_escape("tab\tlf\ncr\r") == "tab\tlf\ncr\r");
    CHECK(xml_escape(std::string("bell\x07" "esc\x1b" "nul", 12)) == "bell esc nul");
    CHECK(xml_escape(std::string("x\0y", 3)) == "x y");
}

TEST_CASE("has_nul finds a NUL anywhere", "[core][text]")
{
    CHECK(has_nul(std::string("n1\0evil", 7)));
    CHECK(has_nul(std::string("\0", 1)));
    CHECK_FALSE(has_nul("n1"));
}
