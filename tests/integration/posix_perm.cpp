// posix_perm.cpp — ownership and permission checks as unprivileged users.
// Each operation runs in a forked child that switched to another uid/gid
// (run_as) and reports 0 or errno back.
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <utime.h>

#include <fstream>

#include "posix_util.h"

using namespace pt;

namespace {

// Create `path` as c; write one byte into it unless write_it is false (a
// write by a non-root caller would clear setgid).
int create_as(const Cred& c, const std::string& path, mode_t mode = 0644, bool write_it = true) {
  return run_as(c, [&] {
    int fd = open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, mode);
    if (fd < 0) return errno;
    int r = !write_it || write(fd, "u", 1) == 1 ? 0 : errno;
    close(fd);
    return r;
  });
}
int open_as(const Cred& c, const std::string& path, int flags) {
  return run_as(c, [&] {
    int fd = open(path.c_str(), flags | O_CLOEXEC);
    if (fd < 0) return errno;
    close(fd);
    return 0;
  });
}
// A 1777 directory, like /tmp.
std::string sticky_dir(const TestDir& t) {
  std::string d = t / "tmp";
  REQUIRE_SYS(mkdir(d.c_str(), 0777));
  REQUIRE_SYS(chmod(d.c_str(), 01777));
  return d;
}


// The system.posix_acl_access value of a minimal ACL (user::, group::,
// other:: only) with these permissions (each 0..7), in the kernel's
// little-endian xattr format (version 2; tag, perm, id per entry).
std::string minimal_acl(unsigned u, unsigned g, unsigned o) {
  std::string v;
  auto le = [&](uint64_t x, int n) {
    for (int i = 0; i < n; ++i) v += static_cast<char>((x >> (8 * i)) & 0xff);
  };
  le(2, 4);
  for (auto [tag, perm] : {std::pair{0x01u, u}, {0x04u, g}, {0x20u, o}}) {
    le(tag, 2);
    le(perm, 2);
    le(0xffffffffu, 4);
  }
  return v;
}

}  // namespace

TEST_SUITE("ownership") {

TEST_CASE("objects an unprivileged user creates are owned by it") {
  TestDir t;
  std::string d = sticky_dir(t);
  CHECK_ERRNO(create_as(kUser, d + "/file"), 0);
  CHECK_ERRNO(run_as(kUser, [&] { return err_of(mkdir((d + "/dir").c_str(), 0755)); }), 0);
  CHECK_ERRNO(run_as(kUser, [&] { return err_of(symlink("file", (d + "/link").c_str())); }), 0);
  CHECK_ERRNO(run_as(kUser, [&] { return err_of(mkfifo((d + "/fifo").c_str(), 0600)); }), 0);
  CHECK_ERRNO(run_as(kUser, [&] { return err_of(mknod((d + "/sock").c_str(), S_IFSOCK | 0600, 0)); }), 0);
  CHECK_ERRNO(run_as(kUser, [&] { return err_of(link((d + "/file").c_str(), (d + "/hard").c_str())); }), 0);
  CHECK_ERRNO(create_as(kNobody, d + "/nobody"), 0);
  for (const char* n : {"file", "dir", "link", "fifo", "sock", "hard"}) {
    CAPTURE(n);
    struct stat st = must_lstat(d + "/" + n);
    CHECK(st.st_uid == kUser.uid);
    CHECK(st.st_gid == kUser.gid);
  }
  CHECK((must_lstat(d + "/file").st_mode & 07777) == 0644);
  CHECK((must_lstat(d + "/dir").st_mode & 07777) == 0755);
  CHECK(must_lstat(d + "/nobody").st_uid == kNobody.uid);
  CHECK(must_lstat(d + "/nobody").st_gid == kNobody.gid);
  CHECK(read_file(d + "/file") == "u");
  // Things created inside the user's own directory too.
  CHECK_ERRNO(create_as(kUser, d + "/dir/inner"), 0);
  CHECK(must_lstat(d + "/dir/inner").st_uid == kUser.uid);
  // Renaming keeps the owner.
  CHECK_ERRNO(run_as(kUser, [&] { return err_of(rename((d + "/dir/inner").c_str(), (d + "/moved").c_str())); }), 0);
  CHECK(must_lstat(d + "/moved").st_uid == kUser.uid);
}

TEST_CASE("chown and chgrp by a non-root owner") {
  TestDir t;
  std::string d = sticky_dir(t);
  Cred member{kUser.uid, kUser.gid, {kGroup}};
  CHECK_ERRNO(create_as(member, d + "/f"), 0);
  CHECK_ERRNO(run_as(member, [&] { return err_of(chown((d + "/f").c_str(), 0, static_cast<gid_t>(-1))); }), EPERM);
  CHECK_ERRNO(run_as(member, [&] { return err_of(chown((d + "/f").c_str(), kUser2.uid, static_cast<gid_t>(-1))); }), EPERM);
  CHECK_ERRNO(run_as(member, [&] { return err_of(chown((d + "/f").c_str(), static_cast<uid_t>(-1), 0)); }), EPERM);
  // To a group it is a member of: allowed.
  CHECK_ERRNO(run_as(member, [&] { return err_of(chown((d + "/f").c_str(), static_cast<uid_t>(-1), kGroup)); }), 0);
  CHECK(must_stat(d + "/f").st_gid == kGroup);
  // No-op chown of its own file to itself is allowed.
  CHECK_ERRNO(run_as(member, [&] { return err_of(chown((d + "/f").c_str(), kUser.uid, kGroup)); }), 0);
  // Someone else's file.
  write_file(t / "rootfile", "r", 0666);
  CHECK_ERRNO(run_as(member, [&] { return err_of(chown((t / "rootfile").c_str(), kUser.uid, kUser.gid)); }), EPERM);
  CHECK(must_stat(t / "rootfile").st_uid == 0);
}

TEST_CASE("chmod of another user's file is refused") {
  TestDir t;
  write_file(t / "rootfile", "r", 0666);
  REQUIRE_SYS(chmod((t / "rootfile").c_str(), 0666));
  CHECK_ERRNO(run_as(kUser, [&] { return err_of(chmod((t / "rootfile").c_str(), 0777)); }), EPERM);
  CHECK((must_stat(t / "rootfile").st_mode & 07777) == 0666);
  std::string d = sticky_dir(t);
  CHECK_ERRNO(create_as(kUser, d + "/mine"), 0);
  CHECK_ERRNO(run_as(kUser2, [&] { return err_of(chmod((d + "/mine").c_str(), 0600)); }), EPERM);
  CHECK_ERRNO(run_as(kUser, [&] { return err_of(chmod((d + "/mine").c_str(), 0600)); }), 0);
  CHECK((must_stat(d + "/mine").st_mode & 07777) == 0600);
  // A non-member setting setgid on its file with a foreign group: the bit
  // is silently dropped.
  REQUIRE_SYS(chown((d + "/mine").c_str(), kUser.uid, kGroup));
  CHECK_ERRNO(run_as(kUser, [&] { return err_of(chmod((d + "/mine").c_str(), 02755)); }), 0);
  CHECK((must_stat(d + "/mine").st_mode & 07777) == 0755);
}

TEST_CASE("writes by a non-owner clear setuid") {
  TestDir t;
  write_file(t / "suid", "original", 0644);
  REQUIRE_SYS(chmod((t / "suid").c_str(), 06777));
  CHECK_ERRNO(run_as(kUser, [&] {
    int fd = open((t / "suid").c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    int r = write(fd, "X", 1) == 1 ? 0 : errno;
    close(fd);
    return r;
  }), 0);
  CHECK((must_stat(t / "suid").st_mode & 06000) == 0);
  CHECK(read_file(t / "suid") == "Xriginal");
  write_file(t / "suid2", "original", 0644);
  REQUIRE_SYS(chmod((t / "suid2").c_str(), 04777));
  CHECK_ERRNO(run_as(kUser, [&] { return err_of(truncate((t / "suid2").c_str(), 2)); }), 0);
  CHECK((must_stat(t / "suid2").st_mode & 07777) == 0777);
  CHECK(must_stat(t / "suid2").st_size == 2);
}

TEST_CASE("an access ACL sets the mode at once, and clears setgid as the kernel does") {
  TestDir t;
  REQUIRE_SYS(chmod(t.path().c_str(), 0777));
  write_file(t / "f", "x", 0640);
  CHECK((must_stat(t / "f").st_mode & 07777) == 0640);  // cached by the kernel now
  std::string acl = minimal_acl(7, 7, 7);
  int rc = setxattr((t / "f").c_str(), "system.posix_acl_access", acl.data(), acl.size(), 0);
  if (rc != 0 && errno == EOPNOTSUPP) {
    MESSAGE("no POSIX ACLs here: skipped");
    return;
  }
  REQUIRE_SYS(rc);
  CHECK((must_stat(t / "f").st_mode & 07777) == 0777);
  // A setgid file of a group its owner is not in: setting an ACL as the
  // owner (no CAP_FSETID) drops setgid, as chmod would.
  write_file(t / "g", "x", 0644);
  REQUIRE_SYS(chown((t / "g").c_str(), kUser.uid, kGroup));
  REQUIRE_SYS(chmod((t / "g").c_str(), 02755));
  CHECK((must_stat(t / "g").st_mode & 07777) == 02755);
  CHECK_ERRNO(run_as(kUser, [&] {
    return err_of(setxattr((t / "g").c_str(), "system.posix_acl_access", acl.data(), acl.size(), 0));
  }), 0);
  CHECK((must_stat(t / "g").st_mode & 07777) == 0777);
  // Root keeps it (CAP_FSETID).
  REQUIRE_SYS(chmod((t / "g").c_str(), 02755));
  REQUIRE_SYS(setxattr((t / "g").c_str(), "system.posix_acl_access", acl.data(), acl.size(), 0));
  CHECK((must_stat(t / "g").st_mode & 07777) == 02777);
  // Another user may not set the ACL of a file it does not own.
  CHECK_ERRNO(run_as(kUser2, [&] {
    return err_of(setxattr((t / "g").c_str(), "system.posix_acl_access", acl.data(), acl.size(), 0));
  }), EPERM);
  // Removing the ACL keeps the mode it gave.
  REQUIRE_SYS(removexattr((t / "f").c_str(), "system.posix_acl_access"));
  CHECK((must_stat(t / "f").st_mode & 0777) == 0777);
}

}  // TEST_SUITE ownership

TEST_SUITE("permissions") {

TEST_CASE("permission bits are enforced for a non-root user") {
  TestDir t;
  write_file(t / "r644", "secret", 0644);
  write_file(t / "r600", "secret", 0600);
  REQUIRE_SYS(mkdir((t / "d755").c_str(), 0755));
  write_file(t / "d755/inner", "in", 0644);
  REQUIRE_SYS(mkdir((t / "d700").c_str(), 0700));
  write_file(t / "d700/hidden", "h", 0644);
  // Writing a 0644 root file.
  CHECK_ERRNO(open_as(kUser, t / "r644", O_WRONLY), EACCES);
  CHECK_ERRNO(open_as(kUser, t / "r644", O_RDWR), EACCES);
  CHECK_ERRNO(open_as(kUser, t / "r644", O_WRONLY | O_TRUNC), EACCES);
  CHECK_ERRNO(open_as(kUser, t / "r644", O_WRONLY | O_APPEND), EACCES);
  CHECK_ERRNO(run_as(kUser, [&] { return err_of(truncate((t / "r644").c_str(), 0)); }), EACCES);
  CHECK_ERRNO(open_as(kUser, t / "r644", O_RDONLY), 0);
  // Reading a 0600 root file.
  CHECK_ERRNO(open_as(kUser, t / "r600", O_RDONLY), EACCES);
  // Creating, linking and removing in a 0755 root directory.
  CHECK_ERRNO(create_as(kUser, t / "d755/new"), EACCES);
  CHECK_ERRNO(run_as(kUser, [&] { return err_of(mkdir((t / "d755/newdir").c_str(), 0755)); }), EACCES);
  CHECK_ERRNO(run_as(kUser, [&] { return err_of(symlink("x", (t / "d755/sl").c_str())); }), EACCES);
  CHECK_ERRNO(run_as(kUser, [&] { return err_of(mkfifo((t / "d755/p").c_str(), 0644)); }), EACCES);
  CHECK_ERRNO(run_as(kUser, [&] { return err_of(unlink((t / "d755/inner").c_str())); }), EACCES);
  CHECK_ERRNO(run_as(kUser, [&] { return err_of(rename((t / "d755/inner").c_str(), (t / "d755/x").c_str())); }), EACCES);
  CHECK_ERRNO(run_as(kUser, [&] { return err_of(rmdir((t / "d755").c_str())); }), EACCES);
  CHECK(list_names(t / "d755") == std::vector<std::string>{"inner"});
  // Search permission.
  CHECK_ERRNO(run_as(kUser, [&] {
    struct stat st{};
    return err_of(stat((t / "d700/hidden").c_str(), &st));
  }), EACCES);
  CHECK_ERRNO(run_as(kUser, [&] {
    DIR* d = opendir((t / "d700").c_str());
    if (!d) return errno;
    closedir(d);
    return 0;
  }), EACCES);
  // access() tells the same story.
  CHECK_ERRNO(run_as(kUser, [&] { return err_of(access((t / "r644").c_str(), W_OK)); }), EACCES);
  CHECK_ERRNO(run_as(kUser, [&] { return err_of(access((t / "r644").c_str(), R_OK)); }), 0);
  CHECK_ERRNO(run_as(kUser, [&] { return err_of(access((t / "r600").c_str(), R_OK)); }), EACCES);
  CHECK_ERRNO(run_as(kUser, [&] { return err_of(access((t / "d755").c_str(), W_OK)); }), EACCES);
  CHECK_ERRNO(run_as(kUser, [&] { return err_of(access((t / "d755").c_str(), X_OK)); }), 0);
  // Owner bits apply to the owner even when others would allow.
  write_file(t / "own", "o", 0644);
  REQUIRE_SYS(chown((t / "own").c_str(), kUser.uid, kUser.gid));
  REQUIRE_SYS(chmod((t / "own").c_str(), 0077));
  CHECK_ERRNO(open_as(kUser, t / "own", O_RDONLY), EACCES);
  CHECK_ERRNO(open_as(kUser2, t / "own", O_RDONLY), 0);
  // Mknod of a device needs privilege.
  std::string d = sticky_dir(t);
  CHECK_ERRNO(run_as(kUser, [&] { return err_of(mknod((d + "/dev").c_str(), S_IFCHR | 0644, makedev(1, 3))); }), EPERM);
  CHECK_FALSE(exists(d + "/dev"));
}

TEST_CASE("times and xattrs as a non-owner") {
  TestDir t;
  write_file(t / "w666", "x", 0666);
  REQUIRE_SYS(chmod((t / "w666").c_str(), 0666));
  write_file(t / "r644", "x", 0644);
  const timespec explicit_ts[2] = {{1000, 0}, {2000, 0}};
  // UTIME_NOW needs write access; explicit times need ownership.
  CHECK_ERRNO(run_as(kUser, [&] { return err_of(utimensat(AT_FDCWD, (t / "w666").c_str(), nullptr, 0)); }), 0);
  CHECK_ERRNO(run_as(kUser, [&] { return err_of(utimensat(AT_FDCWD, (t / "w666").c_str(), explicit_ts, 0)); }), EPERM);
  CHECK_ERRNO(run_as(kUser, [&] { return err_of(utimensat(AT_FDCWD, (t / "r644").c_str(), nullptr, 0)); }), EACCES);
  CHECK_ERRNO(run_as(kUser, [&] { return err_of(utimensat(AT_FDCWD, (t / "r644").c_str(), explicit_ts, 0)); }), EPERM);
  // user.* xattrs need write access to set, read access to get.
  REQUIRE_SYS(setxattr((t / "r644").c_str(), "user.k", "v", 1, 0));
  CHECK_ERRNO(run_as(kUser, [&] { return err_of(setxattr((t / "r644").c_str(), "user.x", "v", 1, 0)); }), EACCES);
  CHECK_ERRNO(run_as(kUser, [&] { return err_of(removexattr((t / "r644").c_str(), "user.k")); }), EACCES);
  CHECK_ERRNO(run_as(kUser, [&] {
    char b[8];
    return getxattr((t / "r644").c_str(), "user.k", b, sizeof b) == 1 ? 0 : errno;
  }), 0);
  CHECK_ERRNO(run_as(kUser, [&] { return err_of(setxattr((t / "w666").c_str(), "user.x", "v", 1, 0)); }), 0);
  CHECK_ERRNO(run_as(kUser, [&] { return err_of(setxattr((t / "w666").c_str(), "trusted.x", "v", 1, 0)); }), EPERM);
  char b[8];
  CHECK(getxattr((t / "w666").c_str(), "user.x", b, sizeof b) == 1);
}

TEST_CASE("sticky directory: users cannot remove each other's files") {
  TestDir t;
  std::string d = sticky_dir(t);
  CHECK_ERRNO(create_as(kUser, d + "/a"), 0);
  CHECK_ERRNO(run_as(kUser, [&] { return err_of(mkdir((d + "/adir").c_str(), 0777)); }), 0);
  CHECK_ERRNO(run_as(kUser2, [&] { return err_of(unlink((d + "/a").c_str())); }), EPERM);
  CHECK_ERRNO(run_as(kUser2, [&] { return err_of(rename((d + "/a").c_str(), (d + "/b").c_str())); }), EPERM);
  CHECK_ERRNO(run_as(kUser2, [&] { return err_of(rmdir((d + "/adir").c_str())); }), EPERM);
  CHECK_ERRNO(create_as(kUser2, d + "/b"), 0);
  CHECK_ERRNO(run_as(kUser2, [&] { return err_of(rename((d + "/b").c_str(), (d + "/a").c_str())); }), EPERM);
  CHECK(must_stat(d + "/a").st_uid == kUser.uid);
  CHECK(read_file(d + "/b") == "u");
  // The owner of the file can, and so can root.
  CHECK_ERRNO(run_as(kUser, [&] { return err_of(unlink((d + "/a").c_str())); }), 0);
  CHECK_SYS(unlink((d + "/b").c_str()));
  CHECK(list_names(d) == std::vector<std::string>{"adir"});
  // The owner of the directory can remove anything in it.
  REQUIRE_SYS(chown(d.c_str(), kUser2.uid, kUser2.gid));
  CHECK_ERRNO(run_as(kUser2, [&] { return err_of(rmdir((d + "/adir").c_str())); }), 0);
}

TEST_CASE("supplementary group grants write access") {
  TestDir t;
  std::string g = t / "group";
  REQUIRE_SYS(mkdir(g.c_str(), 0775));
  REQUIRE_SYS(chown(g.c_str(), 0, kGroup));
  REQUIRE_SYS(chmod(g.c_str(), 0775));
  Cred member{kUser.uid, kUser.gid, {kGroup}};
  CHECK_ERRNO(create_as(member, g + "/f"), 0);
  CHECK_ERRNO(run_as(member, [&] { return err_of(mkdir((g + "/d").c_str(), 0755)); }), 0);
  CHECK_ERRNO(create_as(kUser, g + "/denied"), EACCES);
  struct stat st = must_stat(g + "/f");
  CHECK(st.st_uid == kUser.uid);
  CHECK(st.st_gid == kUser.gid);  // not a setgid directory
  CHECK(read_file(g + "/f") == "u");
  // Group-writable file, written by a supplementary member.
  write_file(t / "gfile", "g", 0664);
  REQUIRE_SYS(chown((t / "gfile").c_str(), 0, kGroup));
  REQUIRE_SYS(chmod((t / "gfile").c_str(), 0664));
  CHECK_ERRNO(open_as(member, t / "gfile", O_WRONLY), 0);
  CHECK_ERRNO(open_as(kUser, t / "gfile", O_WRONLY), EACCES);
  // Group bits apply to group members even when others would allow.
  REQUIRE_SYS(chmod((t / "gfile").c_str(), 0606));
  CHECK_ERRNO(open_as(member, t / "gfile", O_RDONLY), EACCES);
  CHECK_ERRNO(open_as(kUser, t / "gfile", O_RDONLY), 0);
}

TEST_CASE("setgid directory: group and setgid bit are inherited") {
  TestDir t;
  std::string s = t / "sgid";
  REQUIRE_SYS(mkdir(s.c_str(), 0777));
  REQUIRE_SYS(chown(s.c_str(), 0, kGroup));
  REQUIRE_SYS(chmod(s.c_str(), 02777));
  REQUIRE((must_stat(s).st_mode & 07777) == 02777);
  CHECK_ERRNO(create_as(kUser, s + "/f"), 0);
  CHECK_ERRNO(run_as(kUser, [&] { return err_of(mkdir((s + "/sub").c_str(), 0755)); }), 0);
  CHECK_ERRNO(run_as(kUser, [&] { return err_of(mkfifo((s + "/p").c_str(), 0644)); }), 0);
  CHECK_ERRNO(run_as(kUser, [&] { return err_of(symlink("f", (s + "/l").c_str())); }), 0);
  struct stat f = must_stat(s + "/f");
  CHECK(f.st_uid == kUser.uid);
  CHECK(f.st_gid == kGroup);
  CHECK((f.st_mode & 07777) == 0644);
  struct stat sub = must_stat(s + "/sub");
  CHECK(sub.st_uid == kUser.uid);
  CHECK(sub.st_gid == kGroup);
  CHECK((sub.st_mode & 07777) == 02755);
  CHECK(must_lstat(s + "/p").st_gid == kGroup);
  CHECK(must_lstat(s + "/l").st_gid == kGroup);
  // Inherited further down.
  CHECK_ERRNO(create_as(kUser, s + "/sub/deep"), 0);
  CHECK(must_stat(s + "/sub/deep").st_gid == kGroup);
  // Root's creations inherit too.
  write_file(s + "/rootf", "r");
  CHECK(must_stat(s + "/rootf").st_gid == kGroup);
  CHECK(must_stat(s + "/rootf").st_uid == 0);
  // A non-member asking for a setgid+group-exec file in it loses the bit.
  CHECK_ERRNO(create_as(kUser, s + "/sgidfile", 02755, false), 0);
  CHECK((must_stat(s + "/sgidfile").st_mode & 07777) == 0755);
  CHECK(must_stat(s + "/sgidfile").st_gid == kGroup);
  // A member keeps it.
  Cred member{kUser.uid, kUser.gid, {kGroup}};
  CHECK_ERRNO(create_as(member, s + "/sgidfile2", 02755, false), 0);
  CHECK((must_stat(s + "/sgidfile2").st_mode & 07777) == 02755);
  // A write by the (unprivileged) owner then clears it.
  CHECK_ERRNO(open_as(member, s + "/sgidfile2", O_WRONLY), 0);
  CHECK_ERRNO(run_as(member, [&] {
    int fd = open((s + "/sgidfile2").c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    int r = write(fd, "w", 1) == 1 ? 0 : errno;
    close(fd);
    return r;
  }), 0);
  CHECK((must_stat(s + "/sgidfile2").st_mode & 07777) == 0755);
}

TEST_CASE("hard links to others' files need protected_hardlinks rights") {
  int protect = 0;
  std::ifstream("/proc/sys/fs/protected_hardlinks") >> protect;
  if (protect != 1) {
    MESSAGE("fs.protected_hardlinks is not 1: skipped");
    return;
  }
  TestDir t;
  std::string d = sticky_dir(t);
  write_file(t / "rootonly", "r", 0600);
  write_file(t / "rootrw", "r", 0666);
  REQUIRE_SYS(chmod((t / "rootrw").c_str(), 0666));
  CHECK_ERRNO(run_as(kUser, [&] { return err_of(link((t / "rootonly").c_str(), (d + "/l1").c_str())); }), EPERM);
  CHECK_ERRNO(run_as(kUser, [&] { return err_of(link((t / "rootrw").c_str(), (d + "/l2").c_str())); }), 0);
  CHECK(must_stat(t / "rootrw").st_nlink == 2);
  CHECK(must_stat(d + "/l2").st_uid == 0);
}

}  // TEST_SUITE permissions
