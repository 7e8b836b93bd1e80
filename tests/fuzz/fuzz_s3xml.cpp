// fuzz_s3xml — S3's XML answers as the s3:// blobber decodes them
// (blob/s3xml.cpp): an error body's Code and Message, a multipart
// upload's UploadId, a ListObjectsV2 page under a key prefix. The first
// input byte picks the prefix; the rest is the body.
// Checks: no crash, leak or hang; only a truncated page carries a
// continuation token; unescape undoes escape.
#include "blob/s3xml.h"
#include "fuzz_input.h"

using namespace tcfs;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Input in(data, size);
  static const char* const strips[] = {"", "pre/", "n/j/"};
  const std::string strip = strips[in.u8() % 3];
  const std::string body = in.rest();
  (void)blob::xml_get(body, "Code");
  (void)blob::xml_get(body, "Message");
  (void)blob::xml_get(body, "UploadId");
  bool truncated = false;
  blob::ListPage page = blob::parse_listing(body, strip, &truncated);
  if (!truncated) FUZZ_CHECK(page.next.empty());
  FUZZ_CHECK(page.items.size() <= body.size());
  FUZZ_CHECK(blob::xml_unescape(blob::xml_escape(body)) == body);
  return 0;
}
