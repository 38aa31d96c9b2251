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
  // bookkeeping and statistics
  d->pstack = 0;
  d->maxuse_stack = 0;
  d->maxuse_con = 0;
  d->maxuse_efc = 0;
  memset(d->warning, 0, sizeof d->warning);
  memset(d->timer, 0, sizeof d->timer);
  memset(d->solver, 0, sizeof d->solver);
  d->solver_iter = 0;
  d->solver_nnz = 0;
  d->solver_fwdinv[0] = d->solver_fwdinv[1] = 0;
  d->ne = d->nf = d->nefc = d->ncon = 0;
  d->energy[0] = d->energy[1] = 0;
  // state and inputs
  int k = (key >= 0 && key < m->nkey) ? key : -1;
  d->time = k >= 0 ? m->key_time[k] : 0;
  mju_copy(d->qpos, k >= 0 ? m->key_qpos + k * m->nq : m->qpos0, m->nq);
  if (k >= 0) mju_copy(d->qvel, m->key_qvel + k * m->nv, m->nv); else mju_zero(d->qvel, m->nv);
  if (k >= 0) mju_copy(d->act, m->key_act + k * m->na, m->na); else mju_zero(d->act, m->na);
  if (k >= 0) mju_copy(d->ctrl, m->key_ctrl + k * m->nu, m->nu); else mju_zero(d->ctrl, m->nu);
  mju_zero(d->qacc_warmstart, m->nv);
  mju_zero(d->qfrc_applied, m->nv);
  mju_zero(d->xfrc_applied, 6 * m->nbody);
  mju_zero(d->userdata, m->nuserdata);
  for (int b = 0; b < m->nbody; b++) {
    int id = m->body_mocapid[b];
    if (id < 0) continue;
    if (k >= 0) {
      mju_copy3(d->mocap_pos + 3 * id, m->key_mpos + k * 3 * m->nmocap + 3 * id);
      mju_copy4(d->mocap_quat + 4 * id, m->key_mquat + k * 4 * m->nmocap + 4 * id);
    } else {
      mju_copy3(d->mocap_pos + 3 * id, m->body_pos + 3 * b);
      mju_copy4(d->mocap_quat + 4 * id, m->body_quat + 4 * b);
    }
  }
}
