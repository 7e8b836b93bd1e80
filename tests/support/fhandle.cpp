// fhandle — save a file handle to a file and open it again later (after a
// cache drop, a remount), for tests of handles that outlive the kernel's
// inode cache.
//
//   fhandle save PATH OUT        name_to_handle_at(PATH) -> OUT (raw bytes)
//   fhandle cat MNT IN           open_by_handle_at, print the content
//   fhandle ino MNT IN           open_by_handle_at, print st_ino
//   fhandle parent MNT IN        open_by_handle_at (a directory), print the
//                                st_ino of its ".."
// MNT: any path on the mount the handle is for. On failure prints the errno
// name (e.g. ESTALE) on stdout and exits 1; usage errors exit 2.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

namespace {

int fail(const char* what) {
  const char* n = strerrorname_np(errno);
  printf("%s\n", n ? n : "E?");
  fprintf(stderr, "fhandle: %s: %s\n", what, strerror(errno));
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: fhandle save PATH OUT | cat|ino|parent MNT IN\n");
    return 2;
  }
  std::string cmd = argv[1];
  alignas(file_handle) char buf[sizeof(file_handle) + MAX_HANDLE_SZ];
  auto* fh = reinterpret_cast<file_handle*>(buf);
  if (cmd == "save") {
    fh->handle_bytes = MAX_HANDLE_SZ;
    int mount_id;
    if (name_to_handle_at(AT_FDCWD, argv[2], fh, &mount_id, 0) != 0) return fail("name_to_handle_at");
    FILE* f = fopen(argv[3], "wb");
    if (!f || fwrite(buf, 1, sizeof(file_handle) + fh->handle_bytes, f) != sizeof(file_handle) + fh->handle_bytes ||
        fclose(f) != 0)
      return fail("write");
    return 0;
  }
  FILE* f = fopen(argv[3], "rb");
  if (!f) return fail("read handle");
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  if (n < sizeof(file_handle) || n != sizeof(file_handle) + fh->handle_bytes) {
    fprintf(stderr, "fhandle: %s: not a handle\n", argv[3]);
    return 2;
  }
  int m = open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (m < 0) return fail("open mount");
  int fd = open_by_handle_at(m, fh, (cmd == "cat" ? O_RDONLY : O_PATH) | O_CLOEXEC);
  if (fd < 0) return fail("open_by_handle_at");
  struct stat st;
  if (cmd == "cat") {
    char b[4096];
    ssize_t r;
    while ((r = read(fd, b, sizeof b)) > 0) fwrite(b, 1, static_cast<size_t>(r), stdout);
    if (r < 0) return fail("read");
  } else if (cmd == "ino") {
    if (fstat(fd, &st) != 0) return fail("fstat");
    printf("%llu\n", static_cast<unsigned long long>(st.st_ino));
  } else if (cmd == "parent") {
    if (fstatat(fd, "..", &st, 0) != 0) return fail("stat ..");
    printf("%llu\n", static_cast<unsigned long long>(st.st_ino));
  } else {
    fprintf(stderr, "fhandle: unknown command %s\n", cmd.c_str());
    return 2;
  }
  return 0;
}
