#ifndef ROBOSIM_FUZZER_DRIVER_H
#define ROBOSIM_FUZZER_DRIVER_H
#include <stddef.h>
#include <stdint.h>

/// libFuzzer's entry point for programs that have their own main (compiler-rt's FuzzerDriver):
/// parses the flags in argv and runs `callback` on each input. Linked by `-sanitize=fuzzer`.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
