#ifndef ROBOSIM_GUARD_H
#define ROBOSIM_GUARD_H
// Internal to CMuJoCo: the per-thread guard that turns a MuJoCo error into a return code.
#include <setjmp.h>

extern _Thread_local jmp_buf *robosim_guard;
extern _Thread_local char robosim_last_error[512];

#endif
