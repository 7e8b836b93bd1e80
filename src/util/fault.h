// util/fault.h — fault-injection seam and named crash points.
//
// Contract:
//  * fault::check(site) returns an errno that the caller must treat as the
//    result of the syscall or blobber call named `site` (0 = no fault). Sites
//    are short names such as "store.lock" or "meta.commit". Faults come from
//    the TCFS_FAULT environment variable, read once at first use, as a comma
//    list of `site=errno[:nth[:count]]` (errno by name, e.g. EIO, ENOSPC; fire
//    on the nth call (1-based, default 1) and on `count` calls from there,
//    default 1, 0 = forever), or from fault::arm() in unit tests.
//  * crash_point(name) kills the process with SIGKILL (as `kill -9` would)
//    when TCFS_CRASH_AT=name[:nth] names it and this is the nth time the
//    point is reached (default 1). Nothing is flushed or unwound.
//
// Thread-safety: all functions may be called from any thread; counters are
// protected by an internal mutex that is held only while matching.
#pragma once

#include <string>

#include "util/crash_points.h"

namespace tcfs::fault {

// Returns the errno to inject at `site`, or 0.
int check(const char* site);
// Test hook: arm a fault at `site` (errno err) for calls nth..nth+count-1.
void arm(const std::string& site, int err, unsigned nth = 1, unsigned count = 1);
// Test hook: arm crash point `name` for its nth hit (as TCFS_CRASH_AT does).
void arm_crash(const std::string& name, unsigned nth = 1);
// Test hook: drop every armed fault and crash point, and re-read nothing.
void reset();
// errno name <-> value for the TCFS_FAULT syntax ("EIO" -> 5); 0 if unknown.
int errno_from_name(const std::string& name);

void crash_point(const char* name);

}  // namespace tcfs::fault

// Use at a named step of a protocol: TCFS_CRASH_POINT("txn.after_rr").
// The name must be registered in util/crash_points.h (checked at compile
// time).
#define TCFS_CRASH_POINT(name) ::tcfs::fault::crash_point(::tcfs::crash::registered(name))
