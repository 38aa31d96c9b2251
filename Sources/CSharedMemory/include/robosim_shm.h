// Futex and atomics on words of a shared mapping, for Messaging's same-host step channel.
// Futexes here are process-shared (no FUTEX_PRIVATE_FLAG): the two sides are different processes.
#ifndef ROBOSIM_SHM_H
#define ROBOSIM_SHM_H

#include <stddef.h>
#include <stdint.h>

/// A sealed anonymous memory file of `bytes` bytes (memfd: it lives while a process holds it open
/// or mapped, never as a name in a file system), its pages allocated now (so that a full tmpfs
/// fails here, not as SIGBUS on a later write), sealed against shrinking and growing (so that no
/// process that opens it can truncate it under the other's mapping). Returns the fd, or -errno.
int robosim_sealed_memfd(const char *name, size_t bytes);

/// Sleeps while `*word == expected`, at most `timeout_ns` nanoseconds (< 0: no limit).
/// Returns 0 when woken or when the word already differed, 1 on timeout, -errno on other errors.
int robosim_futex_wait(uint32_t *word, uint32_t expected, int64_t timeout_ns);
/// Wakes every waiter on `word`. Returns the number woken, or -errno.
int robosim_futex_wake(uint32_t *word);

uint32_t robosim_load_acquire(const uint32_t *word);
void robosim_store_release(uint32_t *word, uint32_t value);
/// A pause hint for spin loops.
void robosim_cpu_relax(void);

#endif
