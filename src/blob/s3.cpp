// blob/s3.cpp — placeholder until the S3 backend lands.
#include "blob/backend.h"

namespace tcfs::blob {

Result<std::unique_ptr<Blobber>> open_s3(const std::string& bucket, const std::string&, const BlobberOptions&) {
  return Status::error(ENOTSUP, "s3://" + bucket + ": S3 blobbers are not built yet");
}

}  // namespace tcfs::blob
