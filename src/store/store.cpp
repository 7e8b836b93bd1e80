#include "store/store.h"

#include "sync/sync.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <random>

#include "util/fault.h"

#ifndef XFS_SUPER_MAGIC
#define XFS_SUPER_MAGIC 0x58465342
#endif

namespace tcfs::store {
namespace {

// Layout entries: name, mode.
struct Sub {
  const char* name;
  mode_t mode;
};
constexpr Sub kSubdirs[] = {{"root", 0755}, {"txn", 0700}, {"meta", 0700}, {"journal", 0700}};

std::string random_uuid() {
  std::random_device rd;
  std::string s;
  const char* hex = "0123456789abcdef";
  for (int i = 0; i < 32; ++i) {
    s += hex[rd() & 15];
    if (i == 7 || i == 11 || i == 15 || i == 19) s += '-';
  }
  return s;
}

std::string read_small(int fd) {
  char buf[64] = {};
  ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

}  // namespace

std::string fs_type_name(int fd) {
  struct statfs sf {};
  if (fstatfs(fd, &sf) != 0) return "unknown";
  switch (static_cast<unsigned long>(sf.f_type)) {
    case XFS_SUPER_MAGIC: return "xfs";
    case BTRFS_SUPER_MAGIC: return "btrfs";
    case EXT4_SUPER_MAGIC: return "ext4";
    case TMPFS_MAGIC: return "tmpfs";
    default: {
      char b[32];
      snprintf(b, sizeof b, "0x%lx", static_cast<unsigned long>(sf.f_type));
      return b;
    }
  }
}

bool probe_reflink(int dirfd) {
  int a = openat(dirfd, ".", O_TMPFILE | O_RDWR, 0600);
  if (a < 0) return false;
  int b = openat(dirfd, ".", O_TMPFILE | O_RDWR, 0600);
  bool ok = false;
  if (b >= 0) {
    char block[4096];
    memset(block, 'r', sizeof block);
    ok = pwrite(a, block, sizeof block, 0) == static_cast<ssize_t>(sizeof block) &&
         ioctl(b, FICLONE, a) == 0;
    close(b);
  }
  close(a);
  return ok;
}

Result<pid_t> lock_holder(const std::string& dir) {
  int fd = open((dir + "/lock").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return pid_t{0};
    return Status::from_errno("open " + dir + "/lock");
  }
  pid_t pid = 0;
  if (flock(fd, LOCK_SH | LOCK_NB) != 0) {
    pid = static_cast<pid_t>(atoi(read_small(fd).c_str()));
    if (pid <= 0) pid = -1;  // held, holder unknown
  }
  close(fd);
  return pid;
}

Result<std::unique_ptr<Store>> Store::open(const std::string& dir, OpenOptions opts) {
  std::unique_ptr<Store> s(new Store());
  std::error_code ec;
  s->path_ = std::filesystem::absolute(dir, ec).lexically_normal().string();
  if (s->path_.size() > 1 && s->path_.back() == '/') s->path_.pop_back();
  if (opts.create) {
    std::filesystem::create_directories(std::filesystem::path(s->path_).parent_path(), ec);
    if (ec) return Status::error(ec.value(), "create the parent of store directory " + s->path_);
    if (mkdir(s->path_.c_str(), 0700) != 0 && errno != EEXIST)  // I1: closed from the start
      return Status::from_errno("create store directory " + s->path_);
  }
  s->dir_fd_ = ::open(s->path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (s->dir_fd_ < 0) return Status::from_errno("open store " + s->path_);
  TCFS_TRY(s->make_private());
  TCFS_TRY(s->take_lock());
  TCFS_TRY(s->open_dirs(opts.create));
  TCFS_TRY(s->open_meta());
  s->probe_filesystem();
  return s;
}

Store::~Store() {
  meta_.reset();
  for (int fd : {root_fd_, txn_fd_, dir_fd_, lock_fd_})
    if (fd >= 0) close(fd);
}

Status Store::take_lock() {
  if (int f = fault::check("store.lock")) return Status::error(f, "lock store " + path_);
  lock_fd_ = openat(dir_fd_, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd_ < 0) return Status::from_errno("create lock file in store " + path_);
  if (flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) return Status::from_errno("lock store " + path_);
    std::string holder = read_small(lock_fd_);
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    return Status::error(EBUSY, "store " + path_ + " is in use by another tcfs process" +
                                    (holder.empty() ? std::string() : " (pid " + holder + ")"));
  }
  std::string pid = std::to_string(getpid()) + "\n";
  if (ftruncate(lock_fd_, 0) != 0 || pwrite(lock_fd_, pid.data(), pid.size(), 0) < 0)
    return Status::from_errno("write lock file of store " + path_);
  return {};
}

// I1: the store is the daemon's alone. root/ holds the tree with its
// set-ID bits and file capabilities on a path that is not the nosuid
// mount, txn/ the undo images, meta/ the records, sync/ staged data; users
// reach the tree through the mount only. An older store left open to
// other users is closed here, before anything in it is touched.
Status Store::make_private() {
  struct stat st;
  if (fstat(dir_fd_, &st) != 0) return Status::from_errno("stat store " + path_);
  if ((st.st_mode & 07077) == 0) return {};
  if (fchmod(dir_fd_, st.st_mode & 0700) != 0)
    return Status::from_errno("store " + path_ + " is open to other users and cannot be closed (chmod 0700 it)");
  spdlog::info("store {}: closed to other users (mode {:o} -> 700)", path_, st.st_mode & 07777);
  return {};
}

Status Store::open_dirs(bool create) {
  for (const Sub& sub : kSubdirs) {
    if (create && mkdirat(dir_fd_, sub.name, sub.mode) != 0 && errno != EEXIST)
      return Status::from_errno("create " + path_ + "/" + sub.name);
  }
  root_fd_ = openat(dir_fd_, "root", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root_fd_ < 0) return Status::from_errno("open " + path_ + "/root (not a tcfs store?)");
  txn_fd_ = openat(dir_fd_, "txn", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (txn_fd_ < 0) return Status::from_errno("open " + path_ + "/txn");
  return {};
}

Status Store::open_meta() {
  auto env = meta::Env::open(path_ + "/meta", {"store", "rr", sync::kFilesDb, sync::kIdsDb, sync::kEntriesDb,
                                                sync::kBlocksDb, sync::kSyncDb, sync::kRestoreDb});
  if (!env) return env.status();
  meta_ = std::move(env.value());
  auto txn = meta::Txn::begin(*meta_, true);
  if (!txn) return txn.status();
  MDB_dbi db = meta_->db("store");
  auto fmt = txn->get(db, "format");
  if (!fmt) return fmt.status();
  if (!fmt.value()) {
    uuid_ = random_uuid();
    TCFS_TRY(txn->put(db, "format", std::to_string(kFormatVersion)));
    TCFS_TRY(txn->put(db, "uuid", uuid_));
    TCFS_TRY(txn->put(db, "created", std::to_string(time(nullptr))));
    return txn->commit();
  }
  if (*fmt.value() != std::to_string(kFormatVersion))
    return Status::error(EPROTO, "store " + path_ + " has format " + *fmt.value() + ", this tcfs reads format " +
                                     std::to_string(kFormatVersion));
  auto uuid = txn->get(db, "uuid");
  if (!uuid) return uuid.status();
  uuid_ = uuid.value().value_or("");
  return {};
}

void Store::probe_filesystem() {
  fs_type_ = fs_type_name(root_fd_);
  reflink_ = probe_reflink(txn_fd_);
  if (!reflink_)
    spdlog::warn("store {} is on {} without reflink: undo images will be full copies; "
                 "XFS (mkfs.xfs -m reflink=1) or btrfs is the recommended home",
                 path_, fs_type_);
}

}  // namespace tcfs::store
