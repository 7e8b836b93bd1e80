// util/check.h — invariant checks that name the invariant they guard.
//
// Contract:
//  * TCFS_CHECK(cond, "txn 2") is cheap and on in every build: when cond is
//    false it logs "invariant <name> broken: <cond> at <file>:<line>" at
//    critical level and aborts the process. Going on would break what the
//    protocol promises (a compound half applied, a journal naming a block
//    that can be lost); the state a crash leaves is exactly what recovery
//    handles at the next start (each protocol's crash points).
//  * TCFS_CHECK_EXPENSIVE(cond, name) is the same, compiled in only where
//    TCFS_EXPENSIVE_CHECKS is defined (builds with the test suite:
//    meson.build); elsewhere cond is not evaluated.
//  * Names are the ones the protocols' headers number: "txn 2" is txn.h
//    (DESIGN.md §5) invariant 2, "sync 5" is sync.h note 5, and so on.
//
// Thread-safety: may be used from any thread.
#pragma once

namespace tcfs {

[[noreturn]] void invariant_broken(const char* cond, const char* name, const char* file, int line);

}  // namespace tcfs

#define TCFS_CHECK(cond, name)                                                      \
  do {                                                                              \
    if (!(cond)) ::tcfs::invariant_broken(#cond, name, __FILE__, __LINE__);          \
  } while (0)

#ifdef TCFS_EXPENSIVE_CHECKS
#define TCFS_CHECK_EXPENSIVE(cond, name) TCFS_CHECK(cond, name)
#else
#define TCFS_CHECK_EXPENSIVE(cond, name) \
  do {                                   \
  } while (0)
#endif
