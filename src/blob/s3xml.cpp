// blob/s3xml.cpp — decoding S3's XML answers (s3xml.h).
#include "blob/s3xml.h"

#include <cstdlib>

namespace tcfs::blob {

std::string xml_unescape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '&') {
      out += s[i];
      continue;
    }
    size_t semi = s.find(';', i);
    if (semi == std::string_view::npos || semi - i > 10) {
      out += s[i];
      continue;
    }
    std::string_view ent = s.substr(i + 1, semi - i - 1);
    unsigned long cp = 0;
    bool ok = true;
    if (ent == "amp") cp = '&';
    else if (ent == "lt") cp = '<';
    else if (ent == "gt") cp = '>';
    else if (ent == "quot") cp = '"';
    else if (ent == "apos") cp = '\'';
    else if (ent.size() > 1 && ent[0] == '#') {
      std::string num(ent.substr(ent[1] == 'x' || ent[1] == 'X' ? 2 : 1));
      char* end = nullptr;
      cp = std::strtoul(num.c_str(), &end, ent[1] == 'x' || ent[1] == 'X' ? 16 : 10);
      ok = !num.empty() && end && *end == '\0' && cp <= 0x10FFFF;
    } else {
      ok = false;
    }
    if (!ok) {
      out += s[i];
      continue;
    }
    if (cp < 0x80) {  // UTF-8 encode
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
    i = semi;
  }
  return out;
}

// The raw text of the next <tag>...</tag> (or <tag/>) at or after pos in
// doc; pos moves past it. S3's elements carry no attributes below the root.
bool xml_next(std::string_view doc, std::string_view tag, size_t& pos, std::string_view& out) {
  std::string open = "<" + std::string(tag) + ">", empty = "<" + std::string(tag) + "/>";
  std::string close = "</" + std::string(tag) + ">";
  size_t a = doc.find(open, pos), e = doc.find(empty, pos);
  if (e != std::string_view::npos && (a == std::string_view::npos || e < a)) {
    out = {};
    pos = e + empty.size();
    return true;
  }
  if (a == std::string_view::npos) return false;
  a += open.size();
  size_t b = doc.find(close, a);
  if (b == std::string_view::npos) return false;
  out = doc.substr(a, b - a);
  pos = b + close.size();
  return true;
}

std::string xml_get(std::string_view doc, std::string_view tag) {
  size_t pos = 0;
  std::string_view v;
  return xml_next(doc, tag, pos, v) ? xml_unescape(v) : std::string();
}

std::string xml_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '&') out += "&amp;";
    else if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else out += c;
  }
  return out;
}

ListPage parse_listing(std::string_view body, std::string_view strip, bool* truncated) {
  ListPage page;
  size_t pos = 0;
  std::string_view item;
  while (xml_next(body, "Contents", pos, item)) {
    std::string k = xml_get(item, "Key");
    std::string sz = xml_get(item, "Size");
    if (k.compare(0, strip.size(), strip) != 0) continue;
    ObjectInfo oi;
    oi.key = k.substr(strip.size());
    oi.size = std::strtoull(sz.c_str(), nullptr, 10);
    page.items.push_back(std::move(oi));
  }
  *truncated = xml_get(body, "IsTruncated") == "true";
  if (*truncated) page.next = xml_get(body, "NextContinuationToken");
  return page;
}

}  // namespace tcfs::blob
