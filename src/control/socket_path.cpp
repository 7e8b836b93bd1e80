// control/socket_path.cpp — the control socket's path (socket_path.h).
#include "control/socket_path.h"

#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tcfs/protocol.h"

namespace tcfs::control {
namespace {

std::string store_id(const std::string& store) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_Digest(store.data(), store.size(), md, &len, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string id;
  for (unsigned i = 0; i < 16 && i < len; ++i) {
    id += hex[md[i] >> 4];
    id += hex[md[i] & 15];
  }
  return id;
}

}  // namespace

std::string socket_path(const std::string& store, uid_t daemon_uid) {
  if (daemon_uid != 0) return store + "/" + protocol::kSocketName;  // P2
  return std::string(kRunDir) + "/" + store_id(store) + ".sock";  // P1
}

Result<std::string> prepare_socket_path(const std::string& store) {
  std::string path = socket_path(store, geteuid());
  if (geteuid() != 0) return path;
  if (mkdir(kRunDir, 0755) != 0 && errno != EEXIST) return Status::from_errno(std::string("create ") + kRunDir);
  struct stat st;
  if (lstat(kRunDir, &st) != 0) return Status::from_errno(std::string("stat ") + kRunDir);
  // P1: only root may have put anything in it.
  if (!S_ISDIR(st.st_mode) || st.st_uid != 0 || (st.st_mode & 022) != 0)
    return Status::error(EPERM, std::string(kRunDir) + " is not a directory of root's closed to writes by others; "
                                                      "refusing to serve the control socket of " + store + " in it");
  return path;
}

}  // namespace tcfs::control
