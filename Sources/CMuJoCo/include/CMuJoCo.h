#ifndef ROBOSIM_CMUJOCO_H
#define ROBOSIM_CMUJOCO_H
// The one C entry point to MuJoCo (Debian libmujoco-dev 2.2.2). Imported only by the SimServer module.
#include <mujoco/mujoco.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Installs RoboSim's MuJoCo error and warning handlers (idempotent, thread-safe).
/// MuJoCo's default error handler exits the process; ours turns an error inside a guarded call into
/// a return code and, outside one, prints the message and aborts.
void robosim_mj_install_handlers(void);

/// Runs mj_step(m, d) n times. Returns 0 on success, or -1 when MuJoCo raised an error, with its
/// message copied into `error` (at most `error_size` bytes, NUL-terminated). Thread-safe for
/// distinct mjData.
int robosim_mj_step_guarded(const mjModel* m, mjData* d, int n, char* error, int error_size);

/// Restores the initial state (keyframe `key`, or the model defaults when key < 0) like
/// mj_resetData / mj_resetDataKeyframe, but without clearing MuJoCo's whole arena (about 10 MB by
/// default, 150 us): it resets the state variables, inputs, warm start, counters and statistics,
/// which is everything a following mj_forward does not recompute. Call mj_forward after it.
void robosim_mj_reset(const mjModel* m, mjData* d, int key);

/// Number of warnings of any kind MuJoCo recorded in d since the last reset.
int robosim_mj_warning_count(const mjData* d);

#ifdef __cplusplus
}
#endif
#endif
