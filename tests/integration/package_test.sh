#!/usr/bin/env bash
# package_test.sh — the Debian packages build, install, work and purge
# cleanly (issue 15, packaging). Runs as root. Skipped (77): without dpkg,
# when a tcfs package is already installed on this machine (the test would
# replace and purge it), and in the ASan pass of tools/run-tests
# (TCFS_ASAN=1: the packages are built from the tree, not from that build;
# building them twice would only cost time).
#
# Checked:
#  - tools/package --fast --lintian builds tcfs, libtcfs-client0 and
#    libtcfs-client-dev, and lintian reports no error;
#  - dpkg -i installs them: /usr/sbin/tcfs runs, the unit, man pages and
#    the pkg-config file are where Debian keeps them;
#  - an fstab line (in a private mount namespace, so the host's fstab is
#    untouched) mounts a store with `mount -a` through mount.fuse3 and the
#    installed /usr/sbin/tcfs;
#  - a tiny C++ program built with `pkg-config --cflags --libs tcfs-client`
#    against the installed headers and library sends a compound to that
#    mount, and it takes effect;
#  - dpkg --purge leaves nothing of the packages' files, and the store is
#    exactly as it was.
. "$(dirname "$0")/mount_harness.sh"
harness_needs_root package_test
if [[ -n ${TCFS_ASAN:-} ]]; then
  echo "package_test: the ASan pass: the packages are built and tested once, in the main pass; skipped"
  exit 77
fi
command -v dpkg > /dev/null || { echo "package_test: no dpkg; skipped"; exit 77; }
for p in tcfs libtcfs-client0 libtcfs-client-dev; do
  if dpkg-query -W -f='${Status}' "$p" 2> /dev/null | grep -q 'install ok installed'; then
    echo "package_test: the package $p is installed on this machine already: not replacing it; skipped"
    exit 77
  fi
done
harness_init package_test package
repo=$(cd "$(dirname "$0")/../.." && pwd)
fs=$work/fs store=$work/fs/store mp=$work/mnt
installed=0

test_cleanup() {
  stop_tcfs "$mp" "$store"
  ((installed)) && dpkg --purge libtcfs-client-dev tcfs libtcfs-client0 > /dev/null 2>&1
  umount "$fs" 2>/dev/null || umount -l "$fs" 2>/dev/null
}
mkdir -p "$fs" "$mp"
mount -t tmpfs -o size=256M tmpfs "$fs" || { echo "FAIL - tmpfs for the store"; exit 1; }

if ! timeout 1500 "$repo/tools/package" --out "$work/dist" --fast --lintian > "$work/package.log" 2>&1; then
  fail "tools/package builds the packages, lintian without errors"
  tail -30 "$work/package.log"
  exit 1
fi
pass "tools/package builds the packages, lintian without errors"
grep -E '^[WE]: ' "$work/package.log" | sed 's/^/lintian: /'
debs=("$work"/dist/tcfs_*.deb "$work"/dist/libtcfs-client0_*.deb "$work"/dist/libtcfs-client-dev_*.deb)
check "three packages" test -f "${debs[0]}" -a -f "${debs[1]}" -a -f "${debs[2]}"

installed=1
check "dpkg -i installs them" dpkg -i "${debs[@]}"
check "/usr/sbin/tcfs runs" bash -c '/usr/sbin/tcfs --version | grep -q "^tcfs "'
for f in /usr/sbin/tcfs-undo /usr/bin/tcfs-batch /lib/systemd/system/tcfs@.service /usr/share/man/man8/tcfs.8.gz \
  /usr/include/tcfs/client.h /usr/lib/x86_64-linux-gnu/pkgconfig/tcfs-client.pc; do
  check "installed: $f" test -e "$f"
done
files=$(dpkg -L tcfs libtcfs-client0 libtcfs-client-dev | sort -u)

# fstab + mount -a, and a client program, in a namespace of their own.
cat > "$work/prog.cpp" <<'EOF'
#include <tcfs/client.h>
#include <cstdio>
int main(int argc, char** argv) {
  if (argc != 2) return 2;
  auto c = tcfs::Client::for_path(argv[1]);
  if (!c) { std::fprintf(stderr, "%s\n", c.status().message().c_str()); return 1; }
  auto a = c->relative(std::string(argv[1]) + "/from-client"), b = c->relative(std::string(argv[1]) + "/from-client/b");
  if (!a || !b) return 1;
  tcfs::Compound k;
  k.mkdir(*a).mkdir(*b);
  auto r = c->submit(k);
  if (!r) { std::fprintf(stderr, "%s\n", r.status().message().c_str()); return 1; }
  std::printf("%s\n", tcfs::outcome_name(r->outcome));
  if (r->outcome != tcfs::Outcome::Committed) std::fprintf(stderr, "%s\n", r->message.c_str());
  return r->outcome == tcfs::Outcome::Committed ? 0 : 1;
}
EOF
echo "$store $mp fuse.tcfs defaults 0 0" > "$work/fstab"
out=$(unshare -m --propagation private bash -c "
  set -e
  mount --bind '$work/fstab' /etc/fstab
  mount -a -t fuse.tcfs
  awk -v m='$mp' '\$2 == m && \$3 == \"fuse.tcfs\" { f = 1 } END { exit !f }' /proc/mounts || { echo 'not mounted'; exit 1; }
  pid=\$(head -c 32 '$store/lock' | tr -dc 0-9)
  echo exe=\$(readlink /proc/\$pid/exe)
  echo hello > '$mp/hello'
  g++ -std=c++20 -o '$work/prog' '$work/prog.cpp' \$(pkg-config --cflags --libs tcfs-client)
  echo outcome=\$('$work/prog' '$mp')
  test -d '$mp/from-client/b' && echo dirs=yes
  umount '$mp'
  for _ in \$(seq 100); do kill -0 \$pid 2>/dev/null || break; sleep 0.1; done
  kill -0 \$pid 2>/dev/null && echo 'daemon lingers' || echo exited
" 2>&1)
echo "$out" | sed 's/^/  | /'
check "fstab + mount -a mounts through the installed /usr/sbin/tcfs" grep -qx "exe=/usr/sbin/tcfs" <<< "$out"
check "a program built with pkg-config tcfs-client commits a compound" grep -qx "outcome=committed" <<< "$out"
check "the compound took effect on the mount" grep -qx "dirs=yes" <<< "$out"
check "umount ends the daemon" grep -qx "exited" <<< "$out"

snap() { (cd "$store" && find . -path ./lock -prune -o -printf '%p %s %m\n' | sort); }
before=$(snap)
check "dpkg --purge removes the packages" dpkg --purge libtcfs-client-dev tcfs libtcfs-client0
installed=0
check "dpkg -L: none of them is installed any more" bash -c '! dpkg -L tcfs > /dev/null 2>&1 && ! dpkg -L libtcfs-client0 > /dev/null 2>&1'
left=$(while read -r f; do [[ ! -d $f ]] && [[ -e $f || -L $f ]] && echo "$f"; done <<< "$files")  # files, not dirs (/lib -> usr/lib)
expect "no file of the packages is left" "" "$left"
expect "the store is untouched by the purge" "$before" "$(snap)"
check "the store's file is still there" test -f "$store/root/hello"

harness_summary package_test
