#ifndef ROBOSIM_CMUJOCO_H
#define ROBOSIM_CMUJOCO_H
// The one C entry point to MuJoCo (the official 4.0.x release: scripts/setup.sh installs the C library
// and headers of the `mujoco-core` wheel). Imported only by the engine module.
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

/// Restores the initial state: keyframe `key`, or the model defaults when key < 0 or out of range
/// (mj_resetDataKeyframe / mj_resetData: about 2 us on MuJoCo 4.0). Call mj_forward after it.
void robosim_mj_reset(const mjModel* m, mjData* d, int key);

/// Number of warnings of any kind MuJoCo recorded in d since the last reset.
int robosim_mj_warning_count(const mjData* d);

// --- Offscreen rendering (render.c) ---

/// Rendering backends: which GL library the process loads (one per process).
enum { ROBOSIM_GL_NONE = 0, ROBOSIM_GL_OSMESA = 1, ROBOSIM_GL_EGL = 2 };
/// Flags of robosim_render.
enum { ROBOSIM_RENDER_SHADOWS = 1, ROBOSIM_RENDER_REFLECTIONS = 2, ROBOSIM_RENDER_SKYBOX = 4 };

/// Loads the backend's library (dlopen, RTLD_GLOBAL) and, for EGL, opens a display: a device
/// (ROBOSIM_EGL_DEVICE picks one), else Mesa's surfaceless platform, else the default display.
/// Idempotent for the same backend; -1 with a message when it cannot, or when another is loaded.
int robosim_gl_load(int backend, char* error, int error_size);
/// What was loaded, e.g. "OSMesa (software)" or "EGL (NVIDIA)".
const char* robosim_gl_description_string(void);

/// A GL context made current on the calling thread (use and destroy it on that thread).
typedef struct robosim_gl_context robosim_gl_context;
robosim_gl_context* robosim_gl_context_create(char* error, int error_size);
void robosim_gl_context_destroy(robosim_gl_context* context);

/// MuJoCo's scene and rendering context for one thread (needs that thread's current GL context).
/// The offscreen buffer is the model's visual/global offwidth x offheight.
typedef struct robosim_renderer robosim_renderer;
robosim_renderer* robosim_renderer_create(const mjModel* m, int max_geoms, char* error, int error_size);
void robosim_renderer_free(robosim_renderer* renderer);
int robosim_renderer_max_size(const robosim_renderer* renderer, int* width, int* height);

/// A camera: position and orientation in the world (MuJoCo's camera frame, row-major like
/// mjData.cam_xmat: it looks along its -z axis with y up) and the vertical field of view.
typedef struct {
  double pos[3];
  double xmat[9];
  double fovy_deg;
} robosim_camera_pose;

/// Computes what rendering reads from a state holding qpos and mocap poses (kinematics, camera
/// and light poses, tendons). Returns 0, or -1 with MuJoCo's message.
int robosim_render_prepare(const mjModel* m, mjData* d, char* error, int error_size);

/// Renders d (prepared) from `camera` into `rgb` (width*height*3, rows top-down) and/or `depth`
/// (width*height floats: metres along the optical axis, +inf where nothing was hit); either may be
/// NULL. Returns 0, or -1 with a message (MuJoCo errors included).
int robosim_render(robosim_renderer* renderer, const mjModel* m, mjData* d, const robosim_camera_pose* camera,
                   int width, int height, int flags, unsigned char* rgb, float* depth, char* error, int error_size);

#ifdef __cplusplus
}
#endif
#endif
