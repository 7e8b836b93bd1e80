// util/thread_annotations.h — lock rules the compiler checks: clang's
// thread-safety attributes under tcfs names.
//
// Contract:
//  * Under clang each TCFS_* macro expands to the attribute of the same
//    meaning; under any other compiler (GCC builds tcfs normally) to
//    nothing, so the annotations never change what the code does.
//  * A class that is a lock says TCFS_CAPABILITY("mutex") (util/mutex.h);
//    an RAII holder says TCFS_SCOPED_CAPABILITY.
//  * Data: TCFS_GUARDED_BY(mu) — read or written only with mu held;
//    TCFS_PT_GUARDED_BY(mu) — what the pointer points to is.
//  * Functions: TCFS_REQUIRES(mu) — the caller holds mu (the *_locked
//    helpers); TCFS_REQUIRES_SHARED(mu) — held at least shared;
//    TCFS_EXCLUDES(mu) — the caller must not hold mu (the function takes
//    it); TCFS_ACQUIRE / TCFS_RELEASE (and _SHARED) — the function takes or
//    drops the lock; TCFS_TRY_ACQUIRE(ok) — takes it when it returns ok.
//  * TCFS_ACQUIRED_BEFORE / TCFS_ACQUIRED_AFTER record a lock order (checked
//    only with -Wthread-safety-beta; the lock-order comments say it too).
//  * TCFS_NO_THREAD_SAFETY_ANALYSIS turns the check off for one function; each
//    use carries a comment saying why the analysis cannot follow it.
//
// The check: a clang build with -Wthread-safety -Werror=thread-safety
// (tools/run-tests) fails on any access or call that breaks these rules.
//
// Thread-safety: declarations only; nothing here runs.
#pragma once

#if defined(__clang__)
#define TCFS_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define TCFS_THREAD_ANNOTATION(x)
#endif

#define TCFS_CAPABILITY(name) TCFS_THREAD_ANNOTATION(capability(name))
#define TCFS_SCOPED_CAPABILITY TCFS_THREAD_ANNOTATION(scoped_lockable)

#define TCFS_GUARDED_BY(mu) TCFS_THREAD_ANNOTATION(guarded_by(mu))
#define TCFS_PT_GUARDED_BY(mu) TCFS_THREAD_ANNOTATION(pt_guarded_by(mu))

#define TCFS_ACQUIRED_BEFORE(...) TCFS_THREAD_ANNOTATION(acquired_before(__VA_ARGS__))
#define TCFS_ACQUIRED_AFTER(...) TCFS_THREAD_ANNOTATION(acquired_after(__VA_ARGS__))

#define TCFS_REQUIRES(...) TCFS_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define TCFS_REQUIRES_SHARED(...) TCFS_THREAD_ANNOTATION(requires_shared_capability(__VA_ARGS__))
#define TCFS_EXCLUDES(...) TCFS_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))

#define TCFS_ACQUIRE(...) TCFS_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define TCFS_ACQUIRE_SHARED(...) TCFS_THREAD_ANNOTATION(acquire_shared_capability(__VA_ARGS__))
#define TCFS_RELEASE(...) TCFS_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define TCFS_RELEASE_SHARED(...) TCFS_THREAD_ANNOTATION(release_shared_capability(__VA_ARGS__))
#define TCFS_RELEASE_GENERIC(...) TCFS_THREAD_ANNOTATION(release_generic_capability(__VA_ARGS__))
#define TCFS_TRY_ACQUIRE(...) TCFS_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#define TCFS_TRY_ACQUIRE_SHARED(...) TCFS_THREAD_ANNOTATION(try_acquire_shared_capability(__VA_ARGS__))

#define TCFS_ASSERT_CAPABILITY(mu) TCFS_THREAD_ANNOTATION(assert_capability(mu))
#define TCFS_RETURN_CAPABILITY(mu) TCFS_THREAD_ANNOTATION(lock_returned(mu))

#define TCFS_NO_THREAD_SAFETY_ANALYSIS TCFS_THREAD_ANNOTATION(no_thread_safety_analysis)
