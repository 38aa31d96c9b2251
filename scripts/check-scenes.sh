#!/usr/bin/env bash
# Checks every scene under Scenes/ with the real MuJoCo C library (libmujoco, <mujoco/mujoco.h>).
#
#   scripts/check-scenes.sh [SCENES_DIR]
#
# For each Scenes/<name>/scene.json (Scenes/test/* excepted) it
#   - validates the manifest (exact key set, types, name = folder, model file present),
#   - loads the model with mj_loadXML (prints MuJoCo's error and fails if it does not load),
#   - checks that the joints / actuators / cameras / bodies / sites the robot and task plugins rely
#     on exist, that option.timestep == physics_dt and that camera fovy matches the manifest,
#   - steps 5 s of sim time from qpos0 with zero controls: no NaN/Inf, no MuJoCo warnings,
#   - runs scene-specific physics checks (cartpole: the pole falls; tbar_push: the T-bar rests on the
#     table and the arm holds its home pose with the tool pointing down at ee_height; object_tracker:
#     the wheels drive the robots at the commanded speed),
#   - prints nq, nv, nu, nbody.
# Then it checks the fixtures in Scenes/test: pendulum loads and runs, broken_xml fails to load with
# an error naming a line, bad_manifest is not valid JSON, missing_model names a missing file,
# diverging produces NaN or a MuJoCo warning within 2000 steps.
#
# Needs: gcc, python3, MuJoCo 4.0.x (scripts/setup.sh installs it under /usr/local). Exit status 0 when everything passes.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SCENES=${1:-$ROOT/Scenes}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

cat >"$TMP/scenecheck.c" <<'CEOF'
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <mujoco/mujoco.h>

static int failures = 0;
#define FAIL(...) do { printf("  FAIL: "); printf(__VA_ARGS__); printf("\n"); failures++; } while (0)
#define OK(...)   do { printf("  ok:   "); printf(__VA_ARGS__); printf("\n"); } while (0)

static mjModel* load(const char* path, char* err, int nerr) {
  err[0] = 0;
  return mj_loadXML(path, NULL, err, nerr);
}

/* 0 = state finite and no warnings; else a description in buf */
static int unhealthy(const mjModel* m, const mjData* d, char* buf, int n) {
  for (int i = 0; i < m->nq; i++)
    if (!isfinite(d->qpos[i]) || fabs(d->qpos[i]) > 1e8) { snprintf(buf, n, "qpos[%d] = %g", i, d->qpos[i]); return 1; }
  for (int i = 0; i < m->nv; i++)
    if (!isfinite(d->qvel[i])) { snprintf(buf, n, "qvel[%d] = %g", i, d->qvel[i]); return 1; }
  static const char* wname[mjNWARNING] = {"INERTIA", "CONTACTFULL", "CNSTRFULL", "BADQPOS", "BADQVEL", "BADQACC", "BADCTRL"};
  for (int i = 0; i < mjNWARNING; i++)
    if (d->warning[i].number > 0) {
      snprintf(buf, n, "MuJoCo warning mjWARN_%s (x%d, info %d)", wname[i], d->warning[i].number, d->warning[i].lastinfo);
      return 1;
    }
  return 0;
}

static int id_of(const mjModel* m, int type, const char* name) { return mj_name2id(m, type, name); }

static double param(int argc, char** argv, const char* key, double dflt, int* found) {
  size_t k = strlen(key);
  for (int i = 0; i < argc; i++)
    if (!strncmp(argv[i], "param=", 6) && !strncmp(argv[i] + 6, key, k) && argv[i][6 + k] == ':') {
      if (found) *found = 1;
      return atof(argv[i] + 7 + k);
    }
  if (found) *found = 0;
  return dflt;
}

static void counts(const char* label, const mjModel* m) {
  printf("  %s: nq=%ld nv=%ld nu=%ld nbody=%ld njnt=%ld ngeom=%ld ncam=%ld nsite=%ld nkey=%ld timestep=%g\n", label,
         (long)m->nq, (long)m->nv, (long)m->nu, (long)m->nbody, (long)m->njnt, (long)m->ngeom, (long)m->ncam, (long)m->nsite,
         (long)m->nkey, m->opt.timestep);
}

/* step for `seconds` with the current ctrl; returns 0 if healthy throughout */
static int run_for(const mjModel* m, mjData* d, double seconds, char* why, int nwhy) {
  int steps = (int)llround(seconds / m->opt.timestep);
  for (int s = 0; s < steps; s++) {
    mj_step(m, d);
    if (unhealthy(m, d, why, nwhy)) {
      char tmp[300]; snprintf(tmp, sizeof tmp, "%s at t = %.4f s", why, d->time);
      snprintf(why, nwhy, "%s", tmp);
      return 1;
    }
  }
  return 0;
}

/* ---------------- scene-specific checks ---------------- */

static void check_cartpole(const mjModel* m, mjData* d) {
  int js = id_of(m, mjOBJ_JOINT, "slider_to_cart"), jp = id_of(m, mjOBJ_JOINT, "cart_to_pole");
  if (js < 0 || jp < 0) return;
  mj_resetData(m, d);
  int qs = m->jnt_qposadr[js], qp = m->jnt_qposadr[jp];
  d->qpos[qs] = 0; d->qpos[qp] = 0.1;
  mju_zero(d->ctrl, m->nu);
  double prev = 0.1; int monotone = 1; char why[300];
  int steps = (int)llround(1.0 / m->opt.timestep);
  for (int s = 0; s < steps; s++) {
    mj_step(m, d);
    double a = fabs(d->qpos[qp]);
    if (a + 1e-12 < prev && a < 1.5) monotone = 0;
    prev = a;
  }
  if (unhealthy(m, d, why, sizeof why)) FAIL("cartpole fall test: %s", why);
  if (fabs(d->qpos[qp]) > 0.5 && monotone)
    OK("pole falls from 0.1 rad with zero force: |angle| = %.3f rad after 1 s (cart at %.3f m)", fabs(d->qpos[qp]), d->qpos[qs]);
  else
    FAIL("pole did not fall: angle %.4f rad after 1 s (monotone %d)", d->qpos[qp], monotone);
  /* the motor pushes the cart: +100 N for 0.1 s should move the cart in +y */
  mj_resetData(m, d);
  int a = id_of(m, mjOBJ_ACTUATOR, "cart_force");
  if (a >= 0) {
    d->ctrl[a] = 100;
    for (int s = 0; s < (int)llround(0.1 / m->opt.timestep); s++) mj_step(m, d);
    if (d->qvel[m->jnt_dofadr[js]] > 1.0) OK("cart_force +100 N for 0.1 s: cart velocity %.3f m/s", d->qvel[m->jnt_dofadr[js]]);
    else FAIL("cart_force does not push the cart (velocity %.3f m/s)", d->qvel[m->jnt_dofadr[js]]);
  }
}

static void check_tbar(const mjModel* m, mjData* d, int argc, char** argv) {
  const char* jn[6] = {"shoulder_pan_joint", "shoulder_lift_joint", "elbow_joint", "wrist_1_joint", "wrist_2_joint", "wrist_3_joint"};
  const char* an[6] = {"shoulder_pan_joint_act", "shoulder_lift_joint_act", "elbow_joint_act", "wrist_1_joint_act", "wrist_2_joint_act", "wrist_3_joint_act"};
  double home[6]; int f;
  for (int i = 0; i < 6; i++) {
    char key[16]; snprintf(key, sizeof key, "home_%d", i);
    home[i] = param(argc, argv, key, 0, &f);
    if (!f) { FAIL("manifest parameter %s missing", key); return; }
  }
  double table = param(argc, argv, "table_height", 0.75, NULL);
  /* the home pose holds the tool at home_ee_height (default: the pushing height ee_height) */
  double ee_h = param(argc, argv, "home_ee_height", param(argc, argv, "ee_height", 0.02, NULL), NULL);
  int tb = id_of(m, mjOBJ_BODY, "tbar"), ee = id_of(m, mjOBJ_SITE, "ee_site"), ts = id_of(m, mjOBJ_SITE, "tslot_site");
  if (tb < 0 || ee < 0) return;
  int key = id_of(m, mjOBJ_KEY, "home");
  if (key >= 0) mj_resetDataKeyframe(m, d, key); else mj_resetData(m, d);
  for (int i = 0; i < 6; i++) {
    int j = id_of(m, mjOBJ_JOINT, jn[i]), a = id_of(m, mjOBJ_ACTUATOR, an[i]);
    if (j < 0 || a < 0) return;
    if (key >= 0 && fabs(m->key_qpos[key * m->nq + m->jnt_qposadr[j]] - home[i]) > 1e-6)
      FAIL("keyframe 'home' %s = %g differs from manifest home_%d = %g", jn[i], m->key_qpos[key * m->nq + m->jnt_qposadr[j]], i, home[i]);
    d->qpos[m->jnt_qposadr[j]] = home[i];
    d->ctrl[a] = home[i];
  }
  mj_forward(m, d);
  double tip0[3] = {d->site_xpos[3 * ee], d->site_xpos[3 * ee + 1], d->site_xpos[3 * ee + 2]};
  double tool_z = d->site_xmat[9 * ee + 8]; /* z component of the site's z axis */
  printf("  home pose: ee_site at (%.4f, %.4f, %.4f), %.4f m above the table, tool axis z-component %.4f\n",
         tip0[0], tip0[1], tip0[2], tip0[2] - table, tool_z);
  if (fabs(tip0[2] - table - ee_h) < 0.005) OK("home tool tip is at home_ee_height (%.3f m) above the table", ee_h);
  else FAIL("home tool tip %.4f m above the table, expected home_ee_height %.3f", tip0[2] - table, ee_h);
  if (tool_z < -0.999) OK("home tool points straight down");
  else FAIL("home tool does not point down (axis z-component %.4f)", tool_z);
  if (ts >= 0) printf("  tslot_site at (%.4f, %.4f, %.4f); tbar at (%.4f, %.4f, %.4f)\n", d->site_xpos[3 * ts], d->site_xpos[3 * ts + 1],
                      d->site_xpos[3 * ts + 2], d->xpos[3 * tb], d->xpos[3 * tb + 1], d->xpos[3 * tb + 2]);
  char why[300];
  if (run_for(m, d, 2.0, why, sizeof why)) { FAIL("home hold: %s", why); return; }
  double maxerr = 0; int worst = 0;
  for (int i = 0; i < 6; i++) {
    int j = id_of(m, mjOBJ_JOINT, jn[i]);
    double e = fabs(d->qpos[m->jnt_qposadr[j]] - home[i]);
    if (e > maxerr) { maxerr = e; worst = i; }
  }
  if (maxerr < 0.05) OK("arm holds home with ctrl = home: max joint error %.5f rad (%s) after 2 s", maxerr, jn[worst]);
  else FAIL("arm does not hold home: %s error %.4f rad after 2 s", jn[worst], maxerr);
  double z = d->xpos[3 * tb + 2], expect = table + 0.015;
  if (fabs(z - expect) < 0.01) OK("T-bar rests on the table: z = %.5f (table top + half thickness = %.3f) after 2 s", z, expect);
  else FAIL("T-bar z = %.5f after 2 s, expected %.3f +- 0.01", z, expect);
  double dx = d->site_xpos[3 * ee] - tip0[0], dy = d->site_xpos[3 * ee + 1] - tip0[1], dz = d->site_xpos[3 * ee + 2] - tip0[2];
  printf("  ee_site drift after 2 s: %.5f m\n", sqrt(dx * dx + dy * dy + dz * dz));
}

static void check_tracker(const mjModel* m, mjData* d, int argc, char** argv) {
  const char* prefix[2] = {"follower", "leader"};
  double vmax[2] = {param(argc, argv, "max_linear_velocity", 0.26, NULL), param(argc, argv, "leader_max_linear_velocity", 0.22, NULL)};
  for (int r = 0; r < 2; r++) {
    char n[64];
    snprintf(n, sizeof n, "%s", prefix[r]); int b = id_of(m, mjOBJ_BODY, n);
    snprintf(n, sizeof n, "%s_left_motor", prefix[r]); int al = id_of(m, mjOBJ_ACTUATOR, n);
    snprintf(n, sizeof n, "%s_right_motor", prefix[r]); int ar = id_of(m, mjOBJ_ACTUATOR, n);
    if (b < 0 || al < 0 || ar < 0) return;
    printf("  %s mass %.3f kg\n", prefix[r], m->body_subtreemass[b]);
    mj_resetData(m, d);
    double w = vmax[r] / 0.033;
    d->ctrl[al] = w; d->ctrl[ar] = w;
    double x0 = d->xpos[3 * b], y0 = d->xpos[3 * b + 1];
    mj_forward(m, d); x0 = d->xpos[3 * b]; y0 = d->xpos[3 * b + 1];
    char why[300];
    if (run_for(m, d, 1.0, why, sizeof why)) { FAIL("%s drive test: %s", prefix[r], why); continue; }
    double xa = d->xpos[3 * b], ya = d->xpos[3 * b + 1];
    if (run_for(m, d, 1.0, why, sizeof why)) { FAIL("%s drive test: %s", prefix[r], why); continue; }
    double v = sqrt((d->xpos[3 * b] - xa) * (d->xpos[3 * b] - xa) + (d->xpos[3 * b + 1] - ya) * (d->xpos[3 * b + 1] - ya));
    double lateral = fabs(d->xpos[3 * b + 1] - y0);
    if (fabs(v - vmax[r]) < 0.05 * vmax[r] && lateral < 0.01 && d->xpos[3 * b] > x0)
      OK("%s drives straight at %.4f m/s (commanded %.3f) with both wheels at %.3f rad/s", prefix[r], v, vmax[r], w);
    else FAIL("%s: speed %.4f m/s (commanded %.3f), lateral drift %.4f m", prefix[r], v, vmax[r], lateral);
    double zaxis = d->xmat[9 * b + 8];
    if (zaxis > 0.99 && fabs(d->xpos[3 * b + 2] - 0.010) < 0.005) OK("%s stays upright (z %.4f)", prefix[r], d->xpos[3 * b + 2]);
    else FAIL("%s tilted or sank: z %.4f, up-axis z %.4f", prefix[r], d->xpos[3 * b + 2], zaxis);
    /* turn in place: wheels opposite; yaw rate should be 2 v / separation */
    mj_resetData(m, d);
    double sep = r == 0 ? 0.287 : 0.160, wz = 1.0;
    d->ctrl[al] = -wz * sep / 2 / 0.033; d->ctrl[ar] = wz * sep / 2 / 0.033;
    if (run_for(m, d, 0.5, why, sizeof why)) { FAIL("%s turn test: %s", prefix[r], why); continue; }
    double rate = d->cvel[6 * b + 2]; /* world-frame angular velocity z (cvel is [rot; lin]) */
    if (fabs(rate - wz) < 0.1 * wz) OK("%s turns in place at %.3f rad/s (commanded %.2f)", prefix[r], rate, wz);
    else FAIL("%s turn rate %.3f rad/s, commanded %.2f", prefix[r], rate, wz);
  }
  int c = id_of(m, mjOBJ_CAMERA, "follower_camera");
  if (c >= 0) {
    mj_resetData(m, d); mj_forward(m, d);
    /* the camera looks along -z of its frame: that should be world +x at rest */
    double look[3] = {-d->cam_xmat[9 * c + 2], -d->cam_xmat[9 * c + 5], -d->cam_xmat[9 * c + 8]};
    if (look[0] > 0.999) OK("follower_camera looks forward (%.3f %.3f %.3f)", look[0], look[1], look[2]);
    else FAIL("follower_camera looks along (%.3f %.3f %.3f), expected +x", look[0], look[1], look[2]);
  }
}

int main(int argc, char** argv) {
  char err[1000];
  if (argc < 3) { fprintf(stderr, "usage: scenecheck scene|load|loadfail|diverge MODEL ...\n"); return 2; }
  const char* mode = argv[1];
  const char* path = argv[2];

  if (!strcmp(mode, "loadfail")) {
    mjModel* m = load(path, err, sizeof err);
    if (m) { printf("  FAIL: %s loaded, expected an XML error\n", path); mj_deleteModel(m); return 1; }
    for (char* p = err; *p; p++) if (*p == '\n') *p = ' ';
    if (!strcasestr(err, "line")) { printf("  FAIL: error does not name a line: %s\n", err); return 1; }
    if (argc > 3) { /* expected line number */
      char want[64]; snprintf(want, sizeof want, "Line number=%s", argv[3]);
      if (!strstr(err, want)) { printf("  FAIL: error does not name line %s: %s\n", argv[3], err); return 1; }
    }
    printf("  ok:   fails to load: %s\n", err);
    return 0;
  }

  mjModel* m = load(path, err, sizeof err);
  if (!m) { printf("  FAIL: mj_loadXML(%s): %s\n", path, err); return 1; }
  if (err[0]) FAIL("MuJoCo compiler warning: %s", err);
  mjData* d = mj_makeData(m);

  if (!strcmp(mode, "diverge")) {
    int n = argc > 3 ? atoi(argv[3]) : 2000;
    char why[300];
    mj_resetData(m, d);
    for (int s = 1; s <= n; s++) {
      mj_step(m, d);
      if (unhealthy(m, d, why, sizeof why)) {
        printf("  ok:   diverges at step %d: %s\n", s, why);
        counts("diverging", m);
        return 0;
      }
    }
    printf("  FAIL: still healthy after %d steps\n", n);
    return 1;
  }

  if (!strcmp(mode, "load")) {
    char why[300];
    mj_resetData(m, d);
    if (run_for(m, d, 1.0, why, sizeof why)) FAIL("1 s with zero controls: %s", why);
    else OK("loads and runs 1 s with zero controls");
    counts(path, m);
    return failures ? 1 : 0;
  }

  /* mode scene: MODEL DT KIND [joint=N] [actuator=N] [camera=N@FOVY] [body=N] [site=N] [param=K:V] */
  double dt = atof(argv[3]);
  const char* kind = argv[4];
  for (int i = 5; i < argc; i++) {
    char* a = argv[i]; char name[256];
    int type = -1; const char* label = NULL;
    if (!strncmp(a, "joint=", 6)) { type = mjOBJ_JOINT; label = "joint"; }
    else if (!strncmp(a, "actuator=", 9)) { type = mjOBJ_ACTUATOR; label = "actuator"; }
    else if (!strncmp(a, "camera=", 7)) { type = mjOBJ_CAMERA; label = "camera"; }
    else if (!strncmp(a, "body=", 5)) { type = mjOBJ_BODY; label = "body"; }
    else if (!strncmp(a, "site=", 5)) { type = mjOBJ_SITE; label = "site"; }
    else continue;
    snprintf(name, sizeof name, "%s", strchr(a, '=') + 1);
    char* at = strchr(name, '@'); double fovy = -1;
    if (at) { *at = 0; fovy = atof(at + 1); }
    int id = mj_name2id(m, type, name);
    if (id < 0) { FAIL("%s '%s' not in the model", label, name); continue; }
    if (type == mjOBJ_CAMERA && fovy > 0 && fabs(m->cam_fovy[id] - fovy) > 1e-6)
      FAIL("camera '%s' fovy %g in the model, %g in the manifest", name, m->cam_fovy[id], fovy);
  }
  if (!failures) OK("all expected joints, actuators, cameras, bodies and sites exist");
  if (fabs(m->opt.timestep - dt) > 1e-12 * fmax(1.0, dt)) FAIL("option timestep %.17g != manifest physics_dt %.17g", m->opt.timestep, dt);
  else OK("option timestep %.17g == physics_dt", m->opt.timestep);
  if (m->opt.integrator == mjINT_RK4) printf("  note: RK4 integrator\n");

  char why[300];
  mj_resetData(m, d);
  mju_zero(d->ctrl, m->nu);
  if (run_for(m, d, 5.0, why, sizeof why)) FAIL("5 s from qpos0 with zero controls: %s", why);
  else OK("5 s (%d steps) from qpos0 with zero controls: finite state, no MuJoCo warnings", (int)llround(5.0 / m->opt.timestep));

  if (!strcmp(kind, "cartpole")) check_cartpole(m, d);
  else if (!strcmp(kind, "tbar_push")) check_tbar(m, d, argc, argv);
  else if (!strcmp(kind, "object_tracker")) check_tracker(m, d, argc, argv);

  counts("counts", m);
  mj_deleteData(d);
  mj_deleteModel(m);
  return failures ? 1 : 0;
}
CEOF

gcc -O2 -std=gnu11 -Wall -o "$TMP/scenecheck" "$TMP/scenecheck.c" -lmujoco -lm

# Manifest validation; prints the C checker's arguments (model, dt, task, cameras, parameters).
cat >"$TMP/manifest.py" <<'PYEOF'
import json, math, os, sys

KEYS = {"name", "description", "model", "robot", "task", "physics_dt", "decimation", "episode_length_s",
        "default_envs", "cameras", "topic_rates_hz", "reset", "parameters"}
OPTIONAL_KEYS = {"robot_options", "workspace", "render"}
CAM_KEYS = {"name", "width", "height", "rate_hz", "fovy", "rgb", "depth", "observation", "body", "pos", "xyaxes", "quat"}
CAM_REQUIRED = {"name", "width", "height", "rate_hz"}

def num(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)

def main(path, strict_names):
    folder = os.path.basename(os.path.dirname(os.path.abspath(path)))
    errors = []
    with open(path) as f:
        try:
            m = json.load(f)
        except json.JSONDecodeError as e:
            print(f"  FAIL: {path}: invalid JSON: {e}", file=sys.stderr)
            sys.exit(1)
    if not isinstance(m, dict):
        print(f"  FAIL: {path}: not a JSON object", file=sys.stderr); sys.exit(1)
    missing, extra = KEYS - m.keys(), m.keys() - KEYS - OPTIONAL_KEYS
    if "robot_options" in m and not (isinstance(m["robot_options"], dict) and all(isinstance(v, str) for v in m["robot_options"].values())):
        errors.append("robot_options must map names to strings")
    if "workspace" in m:
        w = m["workspace"]
        if not (isinstance(w, dict) and all(isinstance(w.get(k), list) and len(w[k]) == 3 and all(num(x) for x in w[k]) for k in ("min", "max"))
                and all(a < b for a, b in zip(w["min"], w["max"]))):
            errors.append("workspace must be {min: [x, y, z], max: [x, y, z]} with min < max")
    if missing: errors.append(f"missing keys {sorted(missing)}")
    if extra: errors.append(f"unknown keys {sorted(extra)}")
    if m.get("name") != folder: errors.append(f"name {m.get('name')!r} != folder {folder!r}")
    for k in ("name", "description", "model", "robot", "task"):
        if k in m and not isinstance(m[k], str): errors.append(f"{k} must be a string")
    if strict_names:
        if m.get("robot") not in ("ur5", "diff_drive", "cartpole", "motor_joints"): errors.append(f"unknown robot {m.get('robot')!r}")
        if m.get("task") not in ("cartpole", "object_tracker", "tbar_push", "joint_control"): errors.append(f"unknown task {m.get('task')!r}")
    if not (num(m.get("physics_dt")) and m["physics_dt"] > 0): errors.append("physics_dt must be a positive number")
    for k in ("decimation", "default_envs"):
        if not (isinstance(m.get(k), int) and not isinstance(m.get(k), bool) and m[k] >= 1): errors.append(f"{k} must be an integer >= 1")
    if not (num(m.get("episode_length_s")) and m["episode_length_s"] > 0): errors.append("episode_length_s must be positive")
    cams = m.get("cameras", [])
    if not isinstance(cams, list): errors.append("cameras must be a list"); cams = []
    for i, c in enumerate(cams):
        if not isinstance(c, dict): errors.append(f"cameras[{i}] must be an object"); continue
        if CAM_REQUIRED - c.keys(): errors.append(f"cameras[{i}] missing {sorted(CAM_REQUIRED - c.keys())}")
        if c.keys() - CAM_KEYS: errors.append(f"cameras[{i}] unknown keys {sorted(c.keys() - CAM_KEYS)}")
        for k in ("width", "height"):
            if not (isinstance(c.get(k), int) and c[k] >= 1): errors.append(f"cameras[{i}].{k} must be a positive integer")
        if not (num(c.get("rate_hz")) and c["rate_hz"] > 0): errors.append(f"cameras[{i}].rate_hz must be positive")
        if "fovy" in c and not (num(c["fovy"]) and 0 < c["fovy"] < 180): errors.append(f"cameras[{i}].fovy must be in (0, 180)")
        for k in ("rgb", "depth", "observation"):
            if k in c and not isinstance(c[k], bool): errors.append(f"cameras[{i}].{k} must be a boolean")
        if "body" in c and not isinstance(c["body"], str): errors.append(f"cameras[{i}].body must be a body name")
        for k, n in (("pos", 3), ("xyaxes", 6), ("quat", 4)):
            if k in c and not (isinstance(c[k], list) and len(c[k]) == n and all(num(x) for x in c[k])):
                errors.append(f"cameras[{i}].{k} must be {n} numbers")
            if k in c and "body" not in c: errors.append(f"cameras[{i}].{k} needs body (the camera is mounted by the manifest)")
    if "render" in m:
        r = m["render"]
        if not (isinstance(r, dict) and set(r) <= {"shadows", "reflections", "skybox", "multisamples"}
                and all(isinstance(r[k], bool) for k in r if k != "multisamples")
                and (not isinstance(r.get("multisamples", 0), bool) and isinstance(r.get("multisamples", 0), int) and 0 <= r.get("multisamples", 0) <= 16)):
            errors.append("render must be {shadows, reflections, skybox: booleans; multisamples: 0-16}")
    rates = m.get("topic_rates_hz", {})
    if not isinstance(rates, dict) or not all(num(v) and 0 < v <= 1000 for v in rates.values()):
        errors.append("topic_rates_hz must map names to rates in (0, 1000]")
    reset = m.get("reset", {})
    if not isinstance(reset, dict) or not all(isinstance(v, list) and len(v) == 2 and all(num(x) for x in v) and v[0] <= v[1] for v in reset.values()):
        errors.append("reset must map names to [low, high] with low <= high")
    params = m.get("parameters", {})
    if not isinstance(params, dict) or not all(num(v) for v in params.values()):
        errors.append("parameters must map names to numbers"); params = {}
    model = os.path.join(os.path.dirname(os.path.abspath(path)), str(m.get("model", "")))
    if not os.path.isfile(model): errors.append(f"model file {m.get('model')!r} not found")
    if errors:
        for e in errors: print(f"  FAIL: {path}: {e}", file=sys.stderr)
        sys.exit(1)
    args = [model, repr(float(m["physics_dt"])), m["task"]]
    # MJCF cameras must exist (with the manifest's fovy); cameras the manifest mounts on a body need the body.
    args += [f"camera={c['name']}@{c.get('fovy', -1)}" if "body" not in c else f"body={c['body']}" for c in cams if c.get("body") != "world"]
    args += [f"param={k}:{v!r}" for k, v in params.items()]
    print("\n".join(args))

main(sys.argv[1], sys.argv[2] == "strict")
PYEOF

expected_names() {
  case "$1" in
    cartpole)
      echo joint=slider_to_cart joint=cart_to_pole actuator=cart_force camera=front body=cart body=pole ;;
    object_tracker)
      local n=""
      for r in follower leader; do
        n+=" body=$r joint=${r}_root joint=${r}_left_wheel joint=${r}_right_wheel actuator=${r}_left_motor actuator=${r}_right_motor"
      done
      echo "$n camera=follower_camera" ;;
    tbar_push)
      local n=""
      for j in shoulder_pan_joint shoulder_lift_joint elbow_joint wrist_1_joint wrist_2_joint wrist_3_joint; do
        n+=" joint=$j actuator=${j}_act"
      done
      echo "$n body=base body=shoulder_link body=wrist_3_link body=tbar body=tslot joint=tbar_root site=ee_site site=tslot_site camera=overhead camera=wrist" ;;
  esac
}

status=0
echo "MuJoCo scene check ($(cd "$TMP" && printf '#include <mujoco/mujoco.h>\n#include <stdio.h>\nint main(){puts(mj_versionString());}\n' > v.c && gcc -o v v.c -lmujoco && ./v))"
for manifest in "$SCENES"/*/scene.json; do
  dir=$(dirname "$manifest"); name=$(basename "$dir")
  [ "$name" = test ] && continue
  echo "scene $name"
  if ! mapfile -t args < <(python3 "$TMP/manifest.py" "$manifest" strict) || [ ${#args[@]} -lt 3 ]; then
    status=1; continue
  fi
  # shellcheck disable=SC2046
  if ! "$TMP/scenecheck" scene "${args[@]:0:3}" $(expected_names "$name") "${args[@]:3}"; then status=1; fi
done

T="$SCENES/test"
if [ -d "$T" ]; then
  echo "fixture test/pendulum"
  if mapfile -t args < <(python3 "$TMP/manifest.py" "$T/pendulum/scene.json" loose) && [ ${#args[@]} -ge 3 ]; then
    "$TMP/scenecheck" scene "${args[@]:0:3}" joint=hinge actuator=motor body=pole "${args[@]:3}" || status=1
  else status=1; fi

  echo "fixture test/camera_box"
  if mapfile -t args < <(python3 "$TMP/manifest.py" "$T/camera_box/scene.json" loose) && [ ${#args[@]} -ge 3 ]; then
    "$TMP/scenecheck" scene "${args[@]:0:3}" joint=box_x joint=box_y body=box camera=top "${args[@]:3}" || status=1
  else status=1; fi

  echo "fixture test/broken_xml"
  python3 "$TMP/manifest.py" "$T/broken_xml/scene.json" loose >/dev/null && echo "  ok:   manifest is valid" || status=1
  "$TMP/scenecheck" loadfail "$T/broken_xml/model.xml" 8 || status=1

  echo "fixture test/bad_manifest"
  if err=$(python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$T/bad_manifest/scene.json" 2>&1); then
    echo "  FAIL: bad_manifest/scene.json parses as JSON"; status=1
  else echo "  ok:   invalid JSON: ${err##*$'\n'}"; fi
  "$TMP/scenecheck" load "$T/bad_manifest/model.xml" >/dev/null || { echo "  FAIL: bad_manifest/model.xml should load"; status=1; }

  echo "fixture test/missing_model"
  model=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["model"])' "$T/missing_model/scene.json")
  if [ -e "$T/missing_model/$model" ]; then echo "  FAIL: $model exists"; status=1
  else echo "  ok:   manifest names '$model', which does not exist"; fi
  if python3 "$TMP/manifest.py" "$T/missing_model/scene.json" loose >/dev/null 2>&1; then
    echo "  FAIL: manifest check accepted a missing model"; status=1
  fi

  echo "fixture test/diverging"
  if mapfile -t args < <(python3 "$TMP/manifest.py" "$T/diverging/scene.json" loose); then
    "$TMP/scenecheck" diverge "${args[0]}" 2000 || status=1
  else status=1; fi
fi

if [ $status -eq 0 ]; then echo "ALL SCENE CHECKS PASSED"; else echo "SCENE CHECKS FAILED"; fi
exit $status
