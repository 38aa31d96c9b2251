#ifndef ROBOSIM_CBENCHREFERENCE_H
#define ROBOSIM_CBENCHREFERENCE_H
// The raw MuJoCo reference for `sim-bench physics`: plain C loops over mj_step, with nothing of
// RoboSim in the path. Imported only by the sim-bench executable; MuJoCo's own types stay inside
// the .c file (the engine's one MuJoCo wrapper is CMuJoCo).

#ifdef __cplusplus
extern "C" {
#endif

/// A model loaded with mj_loadXML, opaque to Swift.
typedef struct cbench_model cbench_model;

/// Loads an MJCF file. Returns NULL on failure, with MuJoCo's message in `error` (at most
/// `error_size` bytes, NUL-terminated).
cbench_model* cbench_load(const char* path, char* error, int error_size);

/// Frees a model from cbench_load.
void cbench_free(cbench_model* model);

/// MuJoCo's version string.
const char* cbench_mujoco_version(void);


/// Mean wall time in seconds of one env reset through MuJoCo's own calls (mj_resetData, or
/// mj_resetDataKeyframe to "home" when the model has one, then mj_forward), over `count` resets.
double cbench_reset_seconds(const cbench_model* model, int count);

/// The model's timestep in seconds.
double cbench_timestep(const cbench_model* model);

/// Makes `envs` mjData, each reset to the keyframe "home" when the model has one (else qpos0),
/// with zero controls; steps every env `warmup` control steps untimed, then `control_steps`
/// control steps of `decimation` mj_step calls each, timed. Env k is stepped by thread
/// k % threads (min(threads, envs) pthreads; 1: the calling thread); each thread runs all its
/// control steps with no barrier between them. Returns the wall time of the timed part in seconds,
/// or -1 when out of memory; aborts when a thread cannot be started.
double cbench_run(const cbench_model* model, int envs, int threads, long control_steps, int decimation, long warmup);

#ifdef __cplusplus
}
#endif
#endif
