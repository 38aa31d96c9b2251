// Futex and atomics on words of a shared mapping, for Messaging's same-host step channel.
// Futexes here are process-shared (no FUTEX_PRIVATE_FLAG): the two sides are different processes.
#ifndef ROBOSIM_SHM_H
#define ROBOSIM_SHM_H

#include <stdint.h>

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
