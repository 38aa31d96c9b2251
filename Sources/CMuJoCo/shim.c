#include "CMuJoCo.h"
#include <pthread.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guard.h"

// Per-thread guard: set while a guarded call runs on this thread (see guard.h).
_Thread_local jmp_buf *robosim_guard = NULL;
_Thread_local char robosim_last_error[512];

static void robosim_error_handler(const char *msg) {
  if (robosim_guard != NULL) {
    snprintf(robosim_last_error, sizeof robosim_last_error, "%s", msg);
    longjmp(*robosim_guard, 1);
  }
  fprintf(stderr, "MuJoCo error outside a guarded call: %s\n", msg);
  abort();
}

static void robosim_warning_handler(const char *msg) {
  // Warnings are also recorded in mjData.warning; they are reported per env by the engine.
  (void)msg;
}

static pthread_once_t robosim_handlers_once = PTHREAD_ONCE_INIT;

static void robosim_install(void) {
  mju_user_error = robosim_error_handler;
  mju_user_warning = robosim_warning_handler;
}

void robosim_mj_install_handlers(void) { pthread_once(&robosim_handlers_once, robosim_install); }

int robosim_mj_step_guarded(const mjModel *m, mjData *d, int n, char *error, int error_size) {
  robosim_mj_install_handlers();
  jmp_buf env;
  jmp_buf *volatile previous = robosim_guard;
  if (setjmp(env) != 0) {
    robosim_guard = previous;
    if (error != NULL && error_size > 0) snprintf(error, (size_t)error_size, "%s", robosim_last_error);
    return -1;
  }
  robosim_guard = &env;
  for (int i = 0; i < n; i++) mj_step(m, d);
  robosim_guard = previous;
  return 0;
}

int robosim_mj_warning_count(const mjData *d) {
  int total = 0;
  for (int i = 0; i < mjNWARNING; i++) total += d->warning[i].number;
  return total;
}

void robosim_mj_reset(const mjModel *m, mjData *d, int key) {
  if (key >= 0 && key < m->nkey) mj_resetDataKeyframe(m, d, key);
  else mj_resetData(m, d);
}
