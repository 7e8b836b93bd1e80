// control/socket_path.h — where the control socket of a store lives, for
// the daemon that serves it and for the clients that find it from a mount.
//
// Invariants (checks in socket_path.cpp name them):
//  P1 A daemon running as root serves on /run/tcfs/<id>.sock, <id> the
//     first 32 hex digits of the SHA-256 of the store's absolute path (the
//     mount's source in /proc/self/mountinfo). The store directory is 0700
//     (store/store.h), so the socket cannot live in it; /run/tcfs is root's
//     and 0755, so no other user can put a socket there for root's clients
//     to trust. A run directory that is not a root-owned directory closed
//     to writes by others is refused, never used.
//  P2 A daemon running as another user serves on <store>/control.sock: its
//     mount serves that user alone, whose store it is.
//  P3 A client needs only the mount: its source and the user_id= of its
//     superblock options (the daemon's uid) name the socket.
//
// Thread-safety: pure functions, but prepare_socket_path() creates the run
// directory (safe to race: mkdir is atomic and the checks follow it).
#pragma once

#include <sys/types.h>

#include <string>

#include "tcfs/status.h"

namespace tcfs::control {

constexpr const char* kRunDir = "/run/tcfs";

// The socket of the store at `store` (absolute) served by a daemon of uid.
std::string socket_path(const std::string& store, uid_t daemon_uid);
// The socket this process (its effective uid) serves `store` on, with the
// run directory made and checked (P1); an error naming the path otherwise.
Result<std::string> prepare_socket_path(const std::string& store);

}  // namespace tcfs::control
