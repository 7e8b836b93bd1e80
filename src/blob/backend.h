// blob/backend.h — what the blobber backends share (internal to blob/).
//
// Contract: open_dir()/open_s3() build the two backends open_blobber()
// dispatches to; injected() is the fault seam every backend call asks first
// (blobber.h): it returns the error to fail the call with, or OK.
//
// Thread-safety: free functions, safe from any thread.
#pragma once

#include <memory>
#include <string>

#include "blob/blobber.h"

namespace tcfs::blob {

// dir://PATH backend; PATH must be absolute.
Result<std::unique_ptr<Blobber>> open_dir(const std::string& path, const BlobberOptions& opt);
// s3://BUCKET[/PREFIX] backend. prefix is "" or ends without '/'; keys are
// stored as PREFIX/KEY.
Result<std::unique_ptr<Blobber>> open_s3(const std::string& bucket, const std::string& prefix,
                                         const BlobberOptions& opt);

// fault::check("blob.<op>") then, when index >= 0, fault::check("blob<index>.<op>");
// the first errno found becomes an error naming url, op and key.
Status injected(const char* op, int index, const std::string& url, const std::string& key);

}  // namespace tcfs::blob
