/*
** infer.c — a trained policy in a plain C program, no Lua anywhere: how a
** C/C++ engine ships an agent trained with moonrl.
**
**   infer POLICY.safetensors [x1 x2 …]
**
** With observation numbers on the command line it acts once; otherwise it
** reads one observation per line from stdin (obs_dim numbers, separated by
** spaces).  For each it prints the greedy action (policy:act(obs, true) in
** Lua): a discrete index, or the box action's numbers with %.9g.
**
** The file is what policy:save / agent:save / a trainer checkpoint write:
** tensors policy.<2k>.weight [out][in] and policy.<2k>.bias per Linear layer
** k (PyTorch's nn.Sequential numbering), policy.log_std for a Gaussian, and
** the architecture as JSON in the metadata key "policy":
**   {"action":{"n":2,"type":"discrete"},"activation":"tanh","hidden":[64,64],
**    "obs_dim":4,…}   (a box adds "low"/"high" arrays to "action").
** The steps: mrl_st_open, read that JSON (a small scanner below; a real
** engine would use its own JSON library), mrl_policy_new with the same
** spec, copy the tensors into the flat parameter vector in the documented
** order, mrl_policy_set_params, then mrl_policy_act(…, deterministic = 1).
*/
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moonrl.h"

/* ---------------------------------------------------- a small JSON scanner */

/* Skips one JSON value starting at p (after whitespace); NULL if malformed. */
static const char *skip_ws(const char *p) {
  while (*p && isspace((unsigned char)*p)) p++;
  return p;
}

static const char *skip_value(const char *p) {
  p = skip_ws(p);
  if (*p == '"') {
    for (p++; *p && *p != '"'; p++)
      if (*p == '\\' && p[1]) p++;
    return *p ? p + 1 : NULL;
  }
  if (*p == '{' || *p == '[') {
    int depth = 0;
    for (; *p; p++) {
      if (*p == '"') {
        p = skip_value(p);
        if (!p) return NULL;
        p--;
      } else if (*p == '{' || *p == '[') {
        depth++;
      } else if (*p == '}' || *p == ']') {
        if (--depth == 0) return p + 1;
      }
    }
    return NULL;
  }
  while (*p && *p != ',' && *p != '}' && *p != ']') p++;
  return p;
}

/* The value of key in the object starting at obj ('{'), or NULL. */
static const char *json_get(const char *obj, const char *key) {
  const char *p = skip_ws(obj);
  if (*p != '{') return NULL;
  p++;
  size_t klen = strlen(key);
  for (;;) {
    p = skip_ws(p);
    if (*p != '"') return NULL;
    const char *k = p + 1;
    const char *end = skip_value(p);
    if (!end) return NULL;
    int match = (size_t)(end - 1 - k) == klen && strncmp(k, key, klen) == 0;
    p = skip_ws(end);
    if (*p != ':') return NULL;
    p = skip_ws(p + 1);
    if (match) return p;
    p = skip_value(p);
    if (!p) return NULL;
    p = skip_ws(p);
    if (*p != ',') return NULL;
    p++;
  }
}

static int json_number(const char *v, double *out) {
  if (!v) return 0;
  char *end;
  *out = strtod(v, &end);
  return end != v;
}

/* Reads up to cap numbers of an array; returns the count, −1 if malformed. */
static int json_numbers(const char *v, double *out, int cap) {
  if (!v || *v != '[') return -1;
  const char *p = skip_ws(v + 1);
  int n = 0;
  if (*p == ']') return 0;
  for (;;) {
    char *end;
    double x = strtod(p, &end);
    if (end == p || n >= cap) return -1;
    out[n++] = x;
    p = skip_ws(end);
    if (*p == ']') return n;
    if (*p != ',') return -1;
    p = skip_ws(p + 1);
  }
}

static int json_string_is(const char *v, const char *s) {
  size_t n = strlen(s);
  return v && v[0] == '"' && strncmp(v + 1, s, n) == 0 && v[n + 1] == '"';
}

/* ---------------------------------------------------------- the policy */

static int fail(const char *what, const char *detail) {
  fprintf(stderr, "infer: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
  return 1;
}

/* Copies tensor `name` (count floats) to dst; 0 on success. */
static int take(mrl_st_file *f, const char *name, float *dst, size_t count) {
  int i = mrl_st_find(f, name);
  if (i < 0) return fail("tensor missing", name);
  if (mrl_st_numel(f, i) != (int64_t)count) return fail("tensor has the wrong size", name);
  if (mrl_st_read(f, i, dst, count) != MRL_OK) return fail("cannot read tensor", name);
  return 0;
}

/* Builds the policy saved in path; NULL (after a message) on failure. */
static mrl_policy *load_policy(const char *path) {
  char err[256];
  mrl_st_file *f = NULL;
  mrl_policy *p = NULL;
  float *flat = NULL;
  if (mrl_st_open(&f, path, err, sizeof err) != MRL_OK) {
    fail(err, NULL); /* the message names the file */
    return NULL;
  }
  const char *js = mrl_st_meta_get(f, "policy");
  const char *act = js ? json_get(js, "action") : NULL;
  double obs_dim, an, hid[MRL_MAX_LAYERS], lo[64], hi[64];
  double init_log_std = 0, out_gain = 0.01, seed = 0;
  int nh = js ? json_numbers(json_get(js, "hidden"), hid, MRL_MAX_LAYERS) : -1;
  if (!js || !act || nh < 0 || !json_number(json_get(js, "obs_dim"), &obs_dim) ||
      !json_number(json_get(act, "n"), &an) || obs_dim < 1 || an < 1 || an > 64) {
    fail(path, "no valid 'policy' architecture in the metadata");
    goto done;
  }
  json_number(json_get(js, "init_log_std"), &init_log_std);
  json_number(json_get(js, "out_gain"), &out_gain);
  json_number(json_get(js, "seed"), &seed);

  int hidden[MRL_MAX_LAYERS];
  for (int i = 0; i < nh; i++) hidden[i] = (int)hid[i];
  float low[64], high[64];
  mrl_policy_spec spec = {0};
  spec.obs_dim = (int)obs_dim;
  spec.hidden = nh ? hidden : NULL;
  spec.nhidden = nh;
  spec.activation = json_string_is(json_get(js, "activation"), "relu") ? MRL_RELU : MRL_TANH;
  spec.action_kind = json_string_is(json_get(act, "type"), "box") ? MRL_BOX : MRL_DISCRETE;
  spec.action_n = (int)an;
  spec.init_log_std = init_log_std;
  spec.out_gain = out_gain;
  spec.seed = (uint64_t)seed;
  if (spec.action_kind == MRL_BOX &&
      json_numbers(json_get(act, "low"), lo, 64) == spec.action_n &&
      json_numbers(json_get(act, "high"), hi, 64) == spec.action_n) {
    for (int i = 0; i < spec.action_n; i++) {
      low[i] = (float)lo[i];
      high[i] = (float)hi[i];
    }
    spec.low = low;
    spec.high = high;
  }
  if (mrl_policy_new(&p, &spec) != MRL_OK) {
    fail(path, "the architecture in the metadata is not a valid policy");
    p = NULL;
    goto done;
  }

  /* The flat order: per Linear, weight [out][in] then bias; then log_std. */
  size_t np = mrl_policy_nparams(p), off = 0;
  flat = malloc(np * sizeof *flat);
  if (!flat) {
    fail("out of memory", NULL);
    goto bad;
  }
  int dims[MRL_MAX_LAYERS + 2];
  int nd = 0;
  dims[nd++] = spec.obs_dim;
  for (int i = 0; i < nh; i++) dims[nd++] = hidden[i];
  dims[nd++] = spec.action_n;
  for (int k = 0; k + 1 < nd; k++) {
    char name[64];
    size_t w = (size_t)dims[k] * (size_t)dims[k + 1];
    snprintf(name, sizeof name, "policy.%d.weight", 2 * k);
    if (off + w > np || take(f, name, flat + off, w)) goto bad;
    off += w;
    snprintf(name, sizeof name, "policy.%d.bias", 2 * k);
    if (off + (size_t)dims[k + 1] > np || take(f, name, flat + off, (size_t)dims[k + 1])) goto bad;
    off += (size_t)dims[k + 1];
  }
  if (spec.action_kind == MRL_BOX) {
    if (off + (size_t)spec.action_n > np ||
        take(f, "policy.log_std", flat + off, (size_t)spec.action_n))
      goto bad;
    off += (size_t)spec.action_n;
  }
  if (off != np) {
    fail(path, "the tensors do not add up to the policy's parameters");
    goto bad;
  }
  if (mrl_policy_set_params(p, flat, np) != MRL_OK) {
    fail(path, mrl_policy_error(p));
    goto bad;
  }
  goto done;
bad:
  mrl_policy_free(p);
  p = NULL;
done:
  free(flat);
  mrl_st_close(f);
  return p;
}

/* Acts greedily on one observation and prints the action. */
static int act_print(mrl_policy *p, const float *obs) {
  float action[64];
  if (mrl_policy_act(p, obs, 1, 1, action, NULL) != MRL_OK)
    return fail("act", mrl_policy_error(p));
  if (mrl_policy_action_kind(p) == MRL_DISCRETE) {
    printf("%d\n", (int)action[0]);
  } else {
    for (int j = 0; j < mrl_policy_action_n(p); j++)
      printf(j ? " %.9g" : "%.9g", (double)action[j]);
    printf("\n");
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: infer POLICY.safetensors [obs numbers]\n");
    return 2;
  }
  mrl_policy *p = load_policy(argv[1]);
  if (!p) return 1;
  int d = mrl_policy_obs_dim(p);
  float *obs = malloc((size_t)d * sizeof *obs);
  if (!obs) {
    mrl_policy_free(p);
    return fail("out of memory", NULL);
  }
  int status = 0;
  if (argc > 2) {
    if (argc - 2 != d) {
      fprintf(stderr, "infer: %d observation numbers expected, got %d\n", d, argc - 2);
      status = 2;
    } else {
      for (int j = 0; j < d; j++) obs[j] = strtof(argv[2 + j], NULL);
      status = act_print(p, obs);
    }
  } else {
    char line[65536];
    int row = 0;
    while (status == 0 && fgets(line, sizeof line, stdin)) {
      row++;
      char *s = line, *end;
      int j = 0;
      for (; j < d; j++, s = end) {
        obs[j] = strtof(s, &end);
        if (end == s) break;
      }
      if (j == 0 && *skip_ws(s) == '\0') continue; /* a blank line */
      if (j < d) {
        fprintf(stderr, "infer: line %d: %d numbers expected\n", row, d);
        status = 2;
        break;
      }
      status = act_print(p, obs);
    }
  }
  free(obs);
  mrl_policy_free(p);
  return status;
}
