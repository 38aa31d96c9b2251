#include "CBenchReference.h"

#include <mujoco/mujoco.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct cbench_model {
  mjModel* m;
};

cbench_model* cbench_load(const char* path, char* error, int error_size) {
  char message[1000] = "";
  mjModel* m = mj_loadXML(path, NULL, message, (int)sizeof message);
  if (m == NULL) {
    if (error != NULL && error_size > 0) {
      snprintf(error, (size_t)error_size, "%s", message[0] ? message : "MuJoCo could not load the model");
    }
    return NULL;
  }
  cbench_model* model = malloc(sizeof *model);
  if (model == NULL) {
    mj_deleteModel(m);
    return NULL;
  }
  model->m = m;
  return model;
}

void cbench_free(cbench_model* model) {
  if (model == NULL) return;
  mj_deleteModel(model->m);
  free(model);
}

const char* cbench_mujoco_version(void) { return mj_versionString(); }

double cbench_timestep(const cbench_model* model) { return model->m->opt.timestep; }

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/// One thread's share: envs first, first + stride, ...
typedef struct {
  const mjModel* m;
  mjData** data;
  int envs;
  int first;
  int stride;
  long steps;
  int decimation;
  pthread_barrier_t* start;
} cbench_share;

static void step_share(const cbench_share* s, long steps) {
  for (long k = 0; k < steps; k++) {
    for (int e = s->first; e < s->envs; e += s->stride) {
      mjData* d = s->data[e];
      for (int j = 0; j < s->decimation; j++) mj_step(s->m, d);
    }
  }
}

static void* run_share(void* arg) {
  const cbench_share* s = arg;
  pthread_barrier_wait(s->start);
  step_share(s, s->steps);
  return NULL;
}

static void reset(const mjModel* m, mjData* d, int home) {
  if (home >= 0) {
    mj_resetDataKeyframe(m, d, home);
  } else {
    mj_resetData(m, d);
  }
  mju_zero(d->ctrl, m->nu);
  mj_forward(m, d);
}

double cbench_reset_seconds(const cbench_model* model, int count) {
  const mjModel* m = model->m;
  int home = mj_name2id(m, mjOBJ_KEY, "home");
  mjData* d = mj_makeData(m);
  if (d == NULL) return -1;
  reset(m, d, home);
  double t0 = now();
  for (int i = 0; i < count; i++) reset(m, d, home);
  double elapsed = now() - t0;
  mj_deleteData(d);
  return elapsed / (count > 0 ? count : 1);
}

double cbench_run(const cbench_model* model, int envs, int threads, long control_steps, int decimation, long warmup) {
  const mjModel* m = model->m;
  int home = mj_name2id(m, mjOBJ_KEY, "home");
  mjData** data = calloc((size_t)envs, sizeof *data);
  if (data == NULL) return -1;
  for (int e = 0; e < envs; e++) {
    data[e] = mj_makeData(m);
    reset(m, data[e], home);
  }
  int workers = threads < envs ? threads : envs;
  if (workers < 1) workers = 1;

  cbench_share all = {m, data, envs, 0, 1, control_steps, decimation, NULL};
  step_share(&all, warmup);

  double elapsed;
  if (workers == 1) {
    double t0 = now();
    step_share(&all, control_steps);
    elapsed = now() - t0;
  } else {
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)workers + 1);
    cbench_share* shares = calloc((size_t)workers, sizeof *shares);
    pthread_t* ids = calloc((size_t)workers, sizeof *ids);
    int started = 0;
    for (int w = 0; shares != NULL && ids != NULL && w < workers; w++) {
      shares[w] = (cbench_share){m, data, envs, w, workers, control_steps, decimation, &start};
      if (pthread_create(&ids[w], NULL, run_share, &shares[w]) != 0) break;
      started++;
    }
    if (started < workers) {
      // Cannot happen on a working system; the started threads would wait forever at the barrier.
      fprintf(stderr, "cbench_run: could not start %d threads\n", workers);
      abort();
    }
    pthread_barrier_wait(&start);
    double t0 = now();
    for (int w = 0; w < workers; w++) pthread_join(ids[w], NULL);
    elapsed = now() - t0;
    pthread_barrier_destroy(&start);
    free(shares);
    free(ids);
  }
  for (int e = 0; e < envs; e++) mj_deleteData(data[e]);
  free(data);
  return elapsed;
}
