// Offscreen rendering with MuJoCo's own renderer, without a display.
//
// libmujoco links no OpenGL library: on first use it looks for one that is already loaded (EGL,
// OSMesa or GLX) and takes GL functions from it. So the backend is chosen by which library this
// process loads, once, with RTLD_GLOBAL, before the first context (never both: MuJoCo refuses
// when EGL and OSMesa are loaded together). The GL libraries are opened with dlopen, so building
// needs no GL headers and a machine without them can still run physics.
//
// Each render thread owns one GL context (OSMesa, or EGL without a surface: MuJoCo renders into
// its own framebuffer object) and one MuJoCo rendering context.
#include "CMuJoCo.h"
#include "guard.h"
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// --- the few EGL and OSMesa declarations we need (values from the Khronos and Mesa headers) ---
typedef void *EGLDisplay, *EGLConfig, *EGLContext, *EGLSurface, *EGLDeviceEXT;
typedef int32_t EGLint;
typedef unsigned int EGLBoolean, EGLenum;
#define EGL_NONE 0x3038
#define EGL_ALPHA_SIZE 0x3021
#define EGL_BLUE_SIZE 0x3022
#define EGL_GREEN_SIZE 0x3023
#define EGL_RED_SIZE 0x3024
#define EGL_DEPTH_SIZE 0x3025
#define EGL_STENCIL_SIZE 0x3026
#define EGL_SURFACE_TYPE 0x3033
#define EGL_RENDERABLE_TYPE 0x3040
#define EGL_COLOR_BUFFER_TYPE 0x303F
#define EGL_RGB_BUFFER 0x308E
#define EGL_PBUFFER_BIT 0x0001
#define EGL_OPENGL_BIT 0x0008
#define EGL_OPENGL_API 0x30A2
#define EGL_VENDOR 0x3053
#define EGL_PLATFORM_DEVICE_EXT 0x313F
#define EGL_PLATFORM_SURFACELESS_MESA 0x31DD

typedef void *(*PFN_eglGetProcAddress)(const char *);
typedef EGLDisplay (*PFN_eglGetDisplay)(void *);
typedef EGLDisplay (*PFN_eglGetPlatformDisplayEXT)(EGLenum, void *, const EGLint *);
typedef EGLBoolean (*PFN_eglQueryDevicesEXT)(EGLint, EGLDeviceEXT *, EGLint *);
typedef EGLBoolean (*PFN_eglInitialize)(EGLDisplay, EGLint *, EGLint *);
typedef EGLBoolean (*PFN_eglChooseConfig)(EGLDisplay, const EGLint *, EGLConfig *, EGLint, EGLint *);
typedef EGLBoolean (*PFN_eglBindAPI)(EGLenum);
typedef EGLContext (*PFN_eglCreateContext)(EGLDisplay, EGLConfig, EGLContext, const EGLint *);
typedef EGLBoolean (*PFN_eglMakeCurrent)(EGLDisplay, EGLSurface, EGLSurface, EGLContext);
typedef EGLBoolean (*PFN_eglDestroyContext)(EGLDisplay, EGLContext);
typedef EGLint (*PFN_eglGetError)(void);
typedef const char *(*PFN_eglQueryString)(EGLDisplay, EGLint);

typedef void *OSMesaContext;
#define OSMESA_RGBA 0x1908
#define GL_UNSIGNED_BYTE 0x1401
typedef OSMesaContext (*PFN_OSMesaCreateContextExt)(unsigned int, int, int, int, OSMesaContext);
typedef unsigned char (*PFN_OSMesaMakeCurrent)(OSMesaContext, void *, unsigned int, int, int);
typedef void (*PFN_OSMesaDestroyContext)(OSMesaContext);

// --- process-wide backend: loaded once ---
static pthread_mutex_t robosim_gl_lock = PTHREAD_MUTEX_INITIALIZER;
static int robosim_gl_loaded = ROBOSIM_GL_NONE;
static void *robosim_gl_library = NULL;
static char robosim_gl_description[256];

static struct {
  PFN_eglGetProcAddress getProcAddress;
  PFN_eglGetDisplay getDisplay;
  PFN_eglInitialize initialize;
  PFN_eglChooseConfig chooseConfig;
  PFN_eglBindAPI bindAPI;
  PFN_eglCreateContext createContext;
  PFN_eglMakeCurrent makeCurrent;
  PFN_eglDestroyContext destroyContext;
  PFN_eglGetError getError;
  PFN_eglQueryString queryString;
  EGLDisplay display;
  EGLConfig config;
} egl;

static struct {
  PFN_OSMesaCreateContextExt createContextExt;
  PFN_OSMesaMakeCurrent makeCurrent;
  PFN_OSMesaDestroyContext destroyContext;
} osmesa;

static void set_error(char *error, int size, const char *fmt, const char *detail) {
  if (error != NULL && size > 0) snprintf(error, (size_t)size, fmt, detail != NULL ? detail : "");
}

static void *open_first(const char *const *names) {
  for (int i = 0; names[i] != NULL; i++) {
    void *h = dlopen(names[i], RTLD_NOW | RTLD_GLOBAL);
    if (h != NULL) return h;
  }
  return NULL;
}

#define LOAD(table, lib, name, field)                                   \
  do {                                                                  \
    *(void **)&table.field = dlsym(lib, name);                          \
    if (table.field == NULL) {                                          \
      set_error(error, error_size, "%s is missing from the library", name); \
      return -1;                                                        \
    }                                                                   \
  } while (0)

static int egl_open_display(char *error, int error_size) {
  EGLint major = 0, minor = 0;
  const char *device = getenv("ROBOSIM_EGL_DEVICE");
  PFN_eglQueryDevicesEXT queryDevices = (PFN_eglQueryDevicesEXT)egl.getProcAddress("eglQueryDevicesEXT");
  PFN_eglGetPlatformDisplayEXT platformDisplay =
      (PFN_eglGetPlatformDisplayEXT)egl.getProcAddress("eglGetPlatformDisplayEXT");
  // 1. A device display (a GPU, headless): the one ROBOSIM_EGL_DEVICE names, else the first that initializes.
  if (queryDevices != NULL && platformDisplay != NULL) {
    EGLDeviceEXT devices[16];
    EGLint count = 0;
    if (queryDevices(16, devices, &count) && count > 0) {
      int first = 0, last = count - 1;
      if (device != NULL && *device != 0) {
        first = last = atoi(device);
        if (first < 0 || first >= count) {
          char text[96];
          snprintf(text, sizeof text, "%s (this machine has %d EGL devices)", device, (int)count);
          set_error(error, error_size, "ROBOSIM_EGL_DEVICE=%s", text);
          return -1;
        }
      }
      for (int i = first; i <= last; i++) {
        EGLDisplay d = platformDisplay(EGL_PLATFORM_DEVICE_EXT, devices[i], NULL);
        if (d != NULL && egl.initialize(d, &major, &minor)) {
          egl.display = d;
          return 0;
        }
      }
    }
  }
  // 2. Mesa's surfaceless platform (software or a render node), then 3. the default display.
  if (platformDisplay != NULL) {
    EGLDisplay d = platformDisplay(EGL_PLATFORM_SURFACELESS_MESA, NULL, NULL);
    if (d != NULL && egl.initialize(d, &major, &minor)) {
      egl.display = d;
      return 0;
    }
  }
  EGLDisplay d = egl.getDisplay(NULL);
  if (d != NULL && egl.initialize(d, &major, &minor)) {
    egl.display = d;
    return 0;
  }
  char code[32];
  snprintf(code, sizeof code, "0x%x", (unsigned)egl.getError());
  set_error(error, error_size, "no EGL display could be initialized (EGL error %s)", code);
  return -1;
}

static int load_egl_symbols(void *lib, char *error, int error_size);

// Set when libEGL stayed loaded after a failed EGL set-up: OSMesa must not be loaded beside it.
static int robosim_egl_stuck = 0;

static int load_egl(char *error, int error_size) {
  static const char *const names[] = {"libEGL.so.1", "libEGL.so", NULL};
  void *lib = open_first(names);
  if (lib == NULL) {
    set_error(error, error_size, "cannot load libEGL (%s); install libegl1 and a GL driver", dlerror());
    return -1;
  }
  if (load_egl_symbols(lib, error, error_size) == 0) return 0;
  dlclose(lib);
  void *still = dlopen("libEGL.so.1", RTLD_NOW | RTLD_NOLOAD);
  if (still != NULL) {
    robosim_egl_stuck = 1;
    dlclose(still);
  }
  return -1;
}

static int load_egl_symbols(void *lib, char *error, int error_size) {
  LOAD(egl, lib, "eglGetProcAddress", getProcAddress);
  LOAD(egl, lib, "eglGetDisplay", getDisplay);
  LOAD(egl, lib, "eglInitialize", initialize);
  LOAD(egl, lib, "eglChooseConfig", chooseConfig);
  LOAD(egl, lib, "eglBindAPI", bindAPI);
  LOAD(egl, lib, "eglCreateContext", createContext);
  LOAD(egl, lib, "eglMakeCurrent", makeCurrent);
  LOAD(egl, lib, "eglDestroyContext", destroyContext);
  LOAD(egl, lib, "eglGetError", getError);
  LOAD(egl, lib, "eglQueryString", queryString);
  if (egl_open_display(error, error_size) != 0) return -1;
  const EGLint attributes[] = {EGL_RED_SIZE, 8, EGL_GREEN_SIZE, 8, EGL_BLUE_SIZE, 8, EGL_ALPHA_SIZE, 8,
                               EGL_DEPTH_SIZE, 24, EGL_STENCIL_SIZE, 8, EGL_COLOR_BUFFER_TYPE, EGL_RGB_BUFFER,
                               EGL_RENDERABLE_TYPE, EGL_OPENGL_BIT, EGL_SURFACE_TYPE, EGL_PBUFFER_BIT, EGL_NONE};
  EGLint count = 0;
  if (!egl.chooseConfig(egl.display, attributes, &egl.config, 1, &count) || count < 1) {
    // Surfaceless displays may offer no pbuffer configs: any surface type will do (no surface is made).
    EGLint relaxed[sizeof attributes / sizeof attributes[0]];
    memcpy(relaxed, attributes, sizeof attributes);
    relaxed[17] = 0;  // EGL_SURFACE_TYPE: no requirement (its default would be EGL_WINDOW_BIT)
    if (!egl.chooseConfig(egl.display, relaxed, &egl.config, 1, &count) || count < 1) {
      set_error(error, error_size, "EGL has no RGBA8 + depth24 OpenGL config%s", "");
      return -1;
    }
  }
  if (!egl.bindAPI(EGL_OPENGL_API)) {
    set_error(error, error_size, "EGL cannot bind the desktop OpenGL API%s", "");
    return -1;
  }
  const char *vendor = egl.queryString(egl.display, EGL_VENDOR);
  snprintf(robosim_gl_description, sizeof robosim_gl_description, "EGL (%s)", vendor != NULL ? vendor : "unknown vendor");
  robosim_gl_library = lib;
  return 0;
}

static int load_osmesa(char *error, int error_size) {
  static const char *const names[] = {"libOSMesa.so.8", "libOSMesa.so", "libOSMesa.so.6", NULL};
  void *lib = open_first(names);
  if (lib == NULL) {
    set_error(error, error_size, "cannot load libOSMesa (%s); install libosmesa6", dlerror());
    return -1;
  }
  LOAD(osmesa, lib, "OSMesaCreateContextExt", createContextExt);
  LOAD(osmesa, lib, "OSMesaMakeCurrent", makeCurrent);
  LOAD(osmesa, lib, "OSMesaDestroyContext", destroyContext);
  snprintf(robosim_gl_description, sizeof robosim_gl_description, "OSMesa (software)");
  robosim_gl_library = lib;
  return 0;
}

int robosim_gl_load(int backend, char *error, int error_size) {
  pthread_mutex_lock(&robosim_gl_lock);
  int rc = 0;
  if (robosim_gl_loaded != ROBOSIM_GL_NONE) {
    if (robosim_gl_loaded != backend) {
      set_error(error, error_size, "another rendering backend is already loaded in this process%s", "");
      rc = -1;
    }
  } else if (backend == ROBOSIM_GL_OSMESA && robosim_egl_stuck) {
    set_error(error, error_size, "libEGL stayed loaded after EGL failed; MuJoCo cannot use OSMesa beside it%s", "");
    rc = -1;
  } else if (backend == ROBOSIM_GL_EGL || backend == ROBOSIM_GL_OSMESA) {
    rc = backend == ROBOSIM_GL_EGL ? load_egl(error, error_size) : load_osmesa(error, error_size);
    if (rc == 0) robosim_gl_loaded = backend;
  } else {
    set_error(error, error_size, "unknown rendering backend%s", "");
    rc = -1;
  }
  pthread_mutex_unlock(&robosim_gl_lock);
  return rc;
}

const char *robosim_gl_description_string(void) { return robosim_gl_description; }

// --- per-thread contexts ---
struct robosim_gl_context {
  int backend;
  void *context;
  unsigned char *buffer;  // OSMesa's (unused) default framebuffer
};

robosim_gl_context *robosim_gl_context_create(char *error, int error_size) {
  pthread_mutex_lock(&robosim_gl_lock);
  int backend = robosim_gl_loaded;
  pthread_mutex_unlock(&robosim_gl_lock);
  robosim_gl_context *c = calloc(1, sizeof *c);
  if (c == NULL) return NULL;
  c->backend = backend;
  if (backend == ROBOSIM_GL_OSMESA) {
    c->context = osmesa.createContextExt(OSMESA_RGBA, 24, 8, 0, NULL);
    c->buffer = malloc(4 * 16 * 16);
    if (c->context == NULL || c->buffer == NULL || !osmesa.makeCurrent(c->context, c->buffer, GL_UNSIGNED_BYTE, 16, 16)) {
      set_error(error, error_size, "OSMesa could not create or bind a context%s", "");
      robosim_gl_context_destroy(c);
      return NULL;
    }
  } else if (backend == ROBOSIM_GL_EGL) {
    // The bound API is per thread (OpenGL ES by default): bind desktop OpenGL on this one.
    c->context = egl.bindAPI(EGL_OPENGL_API) ? egl.createContext(egl.display, egl.config, NULL, NULL) : NULL;
    if (c->context == NULL || !egl.makeCurrent(egl.display, NULL, NULL, c->context)) {
      char code[32];
      snprintf(code, sizeof code, "0x%x", (unsigned)egl.getError());
      set_error(error, error_size, "EGL could not create or bind a surfaceless context (EGL error %s)", code);
      robosim_gl_context_destroy(c);
      return NULL;
    }
  } else {
    set_error(error, error_size, "no rendering backend is loaded (call robosim_gl_load first)%s", "");
    free(c);
    return NULL;
  }
  return c;
}

void robosim_gl_context_destroy(robosim_gl_context *c) {
  if (c == NULL) return;
  if (c->context != NULL) {
    if (c->backend == ROBOSIM_GL_OSMESA) {
      osmesa.destroyContext(c->context);
    } else if (c->backend == ROBOSIM_GL_EGL) {
      egl.makeCurrent(egl.display, NULL, NULL, NULL);
      egl.destroyContext(egl.display, c->context);
    }
  }
  free(c->buffer);
  free(c);
}

// --- MuJoCo rendering ---
struct robosim_renderer {
  mjvScene scene;
  mjvOption option;
  mjvCamera camera;
  mjrContext context;
  unsigned char *rgb;  // bottom-up rows from OpenGL
  float *depth;
  int capacity;        // pixels
  float znear, zfar;   // metres
};

robosim_renderer *robosim_renderer_create(const mjModel *m, int max_geoms, char *error, int error_size) {
  robosim_mj_install_handlers();
  robosim_renderer *r = calloc(1, sizeof *r);
  if (r == NULL) return NULL;
  mjv_defaultScene(&r->scene);
  mjv_defaultOption(&r->option);
  mjv_defaultCamera(&r->camera);
  mjr_defaultContext(&r->context);
  jmp_buf env;
  jmp_buf *volatile previous = robosim_guard;
  volatile int locked = 0;
  if (setjmp(env) != 0) {
    robosim_guard = previous;
    if (locked) pthread_mutex_unlock(&robosim_gl_lock);
    set_error(error, error_size, "%s", robosim_last_error);
    // What was made before the error is freed (both free functions accept default-initialized structs).
    mjr_freeContext(&r->context);
    mjv_freeScene(&r->scene);
    free(r);
    return NULL;
  }
  robosim_guard = &env;
  // MuJoCo loads its GL function table on the first context: one thread at a time.
  pthread_mutex_lock(&robosim_gl_lock);
  locked = 1;
  mjv_makeScene(m, &r->scene, max_geoms);
  mjr_makeContext(m, &r->context, mjFONTSCALE_50);
  locked = 0;
  pthread_mutex_unlock(&robosim_gl_lock);
  mjr_setBuffer(mjFB_OFFSCREEN, &r->context);
  robosim_guard = previous;
  if (r->context.currentBuffer != mjFB_OFFSCREEN) {
    set_error(error, error_size, "the offscreen framebuffer is not available%s", "");
    mjr_freeContext(&r->context);
    mjv_freeScene(&r->scene);
    free(r);
    return NULL;
  }
  r->znear = m->vis.map.znear * (float)m->stat.extent;
  r->zfar = m->vis.map.zfar * (float)m->stat.extent;
  return r;
}

void robosim_renderer_free(robosim_renderer *r) {
  if (r == NULL) return;
  mjr_freeContext(&r->context);
  mjv_freeScene(&r->scene);
  free(r->rgb);
  free(r->depth);
  free(r);
}

int robosim_renderer_max_size(const robosim_renderer *r, int *width, int *height) {
  *width = r->context.offWidth;
  *height = r->context.offHeight;
  return 0;
}

int robosim_render_prepare(const mjModel *m, mjData *d, char *error, int error_size) {
  jmp_buf env;
  jmp_buf *volatile previous = robosim_guard;
  if (setjmp(env) != 0) {
    robosim_guard = previous;
    set_error(error, error_size, "%s", robosim_last_error);
    return -1;
  }
  robosim_guard = &env;
  mj_kinematics(m, d);
  mj_comPos(m, d);
  mj_camlight(m, d);
  mj_tendon(m, d);
  robosim_guard = previous;
  return 0;
}

/// The camera is ours: its pose (MuJoCo's camera frame: looks along -z, y up) and a symmetric
/// frustum from the vertical field of view; MuJoCo sets left and right from the aspect ratio.
static void set_scene_camera(robosim_renderer *r, const robosim_camera_pose *camera) {
  const double *p = camera->pos, *x = camera->xmat;
  float top = r->znear * (float)tan(camera->fovy_deg * M_PI / 360.0);
  for (int e = 0; e < 2; e++) {
    mjvGLCamera *c = &r->scene.camera[e];
    for (int k = 0; k < 3; k++) {
      c->pos[k] = (float)p[k];
      c->forward[k] = (float)-x[3 * k + 2];
      c->up[k] = (float)x[3 * k + 1];
    }
    c->frustum_center = 0;
    c->frustum_bottom = -top;
    c->frustum_top = top;
    c->frustum_near = r->znear;
    c->frustum_far = r->zfar;
  }
}

int robosim_render(robosim_renderer *r, const mjModel *m, mjData *d, const robosim_camera_pose *camera, int width,
                   int height, int flags, unsigned char *rgb, float *depth, char *error, int error_size) {
  if (width < 1 || height < 1 || width > r->context.offWidth || height > r->context.offHeight) {
    char text[96];
    snprintf(text, sizeof text, "%dx%d exceeds the offscreen buffer %dx%d", width, height, r->context.offWidth,
             r->context.offHeight);
    set_error(error, error_size, "%s", text);
    return -1;
  }
  int pixels = width * height;
  if (pixels > r->capacity) {
    free(r->rgb);
    free(r->depth);
    r->rgb = malloc((size_t)pixels * 3);
    r->depth = malloc((size_t)pixels * sizeof(float));
    r->capacity = r->rgb != NULL && r->depth != NULL ? pixels : 0;
    if (r->capacity == 0) {
      set_error(error, error_size, "out of memory%s", "");
      return -1;
    }
  }
  jmp_buf env;
  jmp_buf *volatile previous = robosim_guard;
  if (setjmp(env) != 0) {
    robosim_guard = previous;
    set_error(error, error_size, "%s", robosim_last_error);
    return -1;
  }
  robosim_guard = &env;
  r->scene.flags[mjRND_SHADOW] = (flags & ROBOSIM_RENDER_SHADOWS) != 0;
  r->scene.flags[mjRND_REFLECTION] = (flags & ROBOSIM_RENDER_REFLECTIONS) != 0;
  r->scene.flags[mjRND_SKYBOX] = (flags & ROBOSIM_RENDER_SKYBOX) != 0;
  // The scene's camera is set to ours before the update as well as after: what the update derives
  // from the scene camera it finds (the distances that order transparent geoms) must come from
  // this image's camera, not from the last image this renderer drew (another env's, another
  // camera's), or the same state renders differently with its history.
  set_scene_camera(r, camera);
  mjv_updateScene(m, d, &r->option, NULL, &r->camera, mjCAT_ALL, &r->scene);
  set_scene_camera(r, camera);
  const double *p = camera->pos, *x = camera->xmat;
  // MuJoCo places the headlight at the scene camera it was given (ours replaces it): move it to
  // ours, looking where it looks.
  for (int i = 0; i < r->scene.nlight; i++) {
    mjvLight *light = &r->scene.lights[i];
    if (!light->headlight) continue;
    for (int k = 0; k < 3; k++) {
      light->pos[k] = (float)p[k];
      light->dir[k] = (float)-x[3 * k + 2];
    }
  }
  r->scene.enabletransform = 0;
  r->scene.stereo = mjSTEREO_NONE;
  mjrRect viewport = {0, 0, width, height};
  mjr_render(viewport, &r->scene, &r->context);
  mjr_readPixels(rgb != NULL ? r->rgb : NULL, depth != NULL ? r->depth : NULL, viewport, &r->context);
  robosim_guard = previous;
  // OpenGL rows run bottom-up; images run top-down. Depth becomes metres along the optical axis
  // (+inf where nothing was hit).
  if (rgb != NULL) {
    size_t row = (size_t)width * 3;
    for (int y = 0; y < height; y++) memcpy(rgb + (size_t)y * row, r->rgb + (size_t)(height - 1 - y) * row, row);
  }
  if (depth != NULL) {
    float n = r->znear, f = r->zfar;
    for (int y = 0; y < height; y++) {
      const float *src = r->depth + (size_t)(height - 1 - y) * width;
      float *dst = depth + (size_t)y * width;
      for (int i = 0; i < width; i++) {
        float z = src[i];
        dst[i] = z >= 1.0f ? INFINITY : n * f / (f - z * (f - n));
      }
    }
  }
  return 0;
}
