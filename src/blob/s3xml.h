// blob/s3xml.h — the few XML forms the s3:// blobber reads and writes
// (internal to blob/): S3's answers are decoded here, from the response
// body bytes alone, so they can be tested and fuzzed without a server.
//
// Contract:
//  * xml_next() finds the next <tag>...</tag> (or <tag/>) at or after pos
//    and gives its raw text; xml_get() the first one's text, unescaped (""
//    when absent). S3's elements carry no attributes below the root.
//  * xml_unescape() resolves the five predefined entities and numeric
//    character references (as UTF-8); anything else is kept as written.
//    xml_unescape(xml_escape(s)) == s.
//  * parse_listing() reads a ListObjectsV2 body: every <Contents> whose
//    <Key> starts with strip, strip removed, with its <Size>; *truncated
//    says whether <IsTruncated> is "true" (page.next is then the
//    <NextContinuationToken>, possibly empty: the caller refuses that).
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "blob/blobber.h"

namespace tcfs::blob {

std::string xml_unescape(std::string_view s);
bool xml_next(std::string_view doc, std::string_view tag, size_t& pos, std::string_view& out);
std::string xml_get(std::string_view doc, std::string_view tag);
std::string xml_escape(std::string_view s);
ListPage parse_listing(std::string_view body, std::string_view strip, bool* truncated);

}  // namespace tcfs::blob
