/*
** infer.c — a trained policy in a plain C program, no Lua anywhere: how a
** C/C++ engine ships an agent trained with moonrl.
**
**   infer POLICY.safetensors [x1 x2 … [| m1 m2 …]]
**
** With observation numbers on the command line it acts once; otherwise it
** reads one observation per line from stdin (obs_dim numbers separated by
** spaces; a grid observation {C, H, W} is its C·H·W numbers, (c, y, x) at
** (c·H + y)·W + x).  For each it prints the greedy action, what
** policy:act(obs, true[, mask]) gives in Lua:
**   discrete        the index                      2
**   box             the numbers, %.9g              0.25 -1
**   multi_discrete  one index per component        2 0 1
**   multi_binary    the bits                       1 0 0 1
**   hybrid          per part in order: an index, bits, or numbers
**                                                  2 0.731 -0.5
** A discrete or multi_discrete policy also takes an invalid-action mask
** after the observation, separated by `|`: one 0/1 per output (the sum of
** the nvec for multi_discrete), 1 = valid.  A masked action is never the
** answer; every component needs a valid one.
**   echo "0.1 0.2 0.3 | 1 0 1 1 0" | infer md.safetensors
** A bad line (wrong count, a mask value other than 0/1, a fully masked
** component) stops the program with a message naming the line, exit 2.
** Each answer is flushed at once, so a program can drive infer through a
** pair of pipes, one line at a time.
**
** The file is what policy:save / agent:save / a trainer checkpoint write:
** the architecture as JSON in the metadata key "policy", e.g.
**   {"action":{"n":2,"type":"discrete"},"activation":"tanh","hidden":[64,64],
**    "obs_dim":4,…}
** where "action" is one of
**   {"type":"discrete","n":N}   {"type":"box","n":N,"low":[…],"high":[…]}
**   {"type":"multi_discrete","nvec":[n1,n2,…],"n":Σ}
**   {"type":"multi_binary","n":N}
**   {"type":"hybrid","parts":[{"type":"discrete"|"box"|"multi_binary","n":…},…]}
** and a grid policy adds "obs_shape":[C,H,W] and
** "conv":[{"out":F,"kernel":k,"stride":s,"padding":p},…].  The tensors are
** named as PyTorch's nn.Sequential would name them (Conv2d, act, …, Flatten,
** Linear, act, …, Linear):
**   policy.<2i>.weight [F][C][k][k], policy.<2i>.bias [F]   conv layer i
**   policy.<b+2k>.weight [out][in], policy.<b+2k>.bias      Linear k, b = 0
**                                    without conv layers, else 2·nconv + 1
**   policy.log_std [n]       a box policy's σ = exp(log_std)
**   policy.log_std.<i> [n]   a hybrid's gaussian part i (its index among
**                            all parts)
** The steps: mrl_st_open, read that JSON (a small scanner below; a real
** engine would use its own JSON library) into an mrl_policy_spec,
** mrl_policy_new, copy the tensors into the flat parameter vector in the
** documented order (runtime/moonrl.h: conv layers, Linears, then the
** log_std vectors), mrl_policy_set_params, then mrl_policy_act_masked(…,
** deterministic = 1) for each observation.
**
** Plain C11 (the casts on malloc let a C++ engine compile it as is).
**
** The observation is the row the policy saw in training, and preparing it
** is the caller's part: a dict observation flattened with its parts in
** sorted name order; an image of 0–255 bytes as x/255; and when the
** trainer ran with normalize_obs (its checkpoint then has {mean, var,
** count} in the "obs_norm" metadata), each number (x − mean) /
** sqrt(var + 1e-8) clipped to ±obs_clip (10 by default) — only the
** columns of the dict parts obs_norm lists in "parts" when it has them.
*/
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moonrl.h"

/* ---------------------------------------------------- a small JSON scanner */

static const char *skip_ws(const char *p) {
  while (*p && isspace((unsigned char)*p)) p++;
  return p;
}

/* Skips one JSON value starting at p (after whitespace); NULL if malformed. */
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
  if (!obj) return NULL;
  const char *p = skip_ws(obj);
  if (*p != '{') return NULL;
  p = skip_ws(p + 1);
  if (*p == '}') return NULL;
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

/* An integer in [lo, hi] (a JSON number with no fraction); 0 if not. */
static int json_int(const char *v, int lo, int hi, int *out) {
  double x;
  if (!json_number(v, &x) || x != floor(x) || x < lo || x > hi) return 0;
  *out = (int)x;
  return 1;
}

/* The number of elements of the array at v, or −1 if v is not one.
** moonrl.json writes an empty Lua table as {}, so {} counts as []. */
static int json_length(const char *v) {
  if (!v) return -1;
  v = skip_ws(v);
  if (v[0] == '{' && *skip_ws(v + 1) == '}') return 0;
  if (*v != '[') return -1;
  const char *p = skip_ws(v + 1);
  if (*p == ']') return 0;
  for (int n = 1;; n++) {
    p = skip_value(p);
    if (!p) return -1;
    p = skip_ws(p);
    if (*p == ']') return n;
    if (*p != ',') return -1;
    p = skip_ws(p + 1);
  }
}

/* Array elements in turn: the first one, then the one after v.  Only for
** an array json_length has checked, and as many times as it says (after
** the last element, json_next steps just past the ']'). */
static const char *json_first(const char *arr) { return skip_ws(skip_ws(arr) + 1); }
static const char *json_next(const char *v) { return skip_ws(skip_ws(skip_value(v)) + 1); }

/* Reads an array of exactly n integers in [lo, hi]; 0 if it is not one. */
static int json_ints(const char *v, int n, int lo, int hi, int *out) {
  if (json_length(v) != n) return 0;
  const char *e = json_first(v);
  for (int i = 0; i < n; i++, e = json_next(e))
    if (!json_int(e, lo, hi, &out[i])) return 0;
  return 1;
}

/* Reads an array of exactly n numbers as floats; 0 if it is not one. */
static int json_floats(const char *v, int n, float *out) {
  if (json_length(v) != n) return 0;
  const char *e = json_first(v);
  for (int i = 0; i < n; i++, e = json_next(e)) {
    double x;
    if (!json_number(e, &x)) return 0;
    out[i] = (float)x;
  }
  return 1;
}

static int json_string_is(const char *v, const char *s) {
  size_t n = strlen(s);
  return v && v[0] == '"' && strncmp(v + 1, s, n) == 0 && v[n + 1] == '"';
}

/* ------------------------------------------------------------- messages */

/* Formats a message into err (errlen bytes); returns 1 (a failure), so a
** check reads `if (bad) return say(err, errlen, "…", …);`. */
static int say(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return 1;
}

/* The start of a JSON string value for messages ("teleport"…), at most
** 32 characters of it. */
static const char *shown(const char *v, char *buf, size_t len) {
  if (!v) return "(none)";
  size_t n = 0;
  while (v[n] && v[n] != ',' && v[n] != '}' && n + 1 < len && n < 32) n++;
  memcpy(buf, v, n);
  buf[n] = '\0';
  return buf;
}

/* --------------------------------------------------- the architecture */

/* An mrl_policy_spec and the arrays it points into. */
typedef struct arch {
  mrl_policy_spec spec;
  int hidden[MRL_MAX_LAYERS];
  mrl_conv_layer conv[MRL_MAX_CONV];
  mrl_action_part *parts; /* composite actions, malloc'd */
  float *bounds;          /* a box's low then high, malloc'd, or NULL */
} arch;

static void arch_free(arch *a) {
  free(a->parts);
  free(a->bounds);
}

/* Part i (0-based) of a hybrid action: {"type":"discrete"|"box"|
** "multi_binary","n":…}.  Messages count parts and layers from 1, as the
** runtime's do. */
static int read_part(const char *v, int i, mrl_action_part *out, char *err, size_t errlen) {
  const char *t = json_get(v, "type");
  char buf[40];
  if (json_string_is(t, "discrete")) out->type = MRL_PART_CATEGORICAL;
  else if (json_string_is(t, "box")) out->type = MRL_PART_GAUSSIAN;
  else if (json_string_is(t, "multi_binary")) out->type = MRL_PART_BERNOULLI;
  else
    return say(err, errlen, "action part %d: unknown type %s ('discrete', 'box' or "
               "'multi_binary' expected)", i + 1, shown(t, buf, sizeof buf));
  if (!json_int(json_get(v, "n"), 1, MRL_MAX_WIDTH, &out->n))
    return say(err, errlen, "action part %d: no valid 'n'", i + 1);
  return 0;
}

/* "action" into a->spec: the kind, n, a box's bounds, a composite's parts. */
static int read_action(const char *act, arch *a, char *err, size_t errlen) {
  mrl_policy_spec *s = &a->spec;
  const char *t = json_get(act, "type");
  char buf[40];
  if (json_string_is(t, "discrete") || json_string_is(t, "box")) {
    s->action_kind = json_string_is(t, "box") ? MRL_BOX : MRL_DISCRETE;
    if (!json_int(json_get(act, "n"), 1, MRL_MAX_WIDTH, &s->action_n))
      return say(err, errlen, "action: no valid 'n'");
    /* bounds: both or neither (unbounded) */
    const char *lo = json_get(act, "low"), *hi = json_get(act, "high");
    if (s->action_kind == MRL_BOX && (lo || hi)) {
      if (!(a->bounds = (float *)malloc(2 * (size_t)s->action_n * sizeof *a->bounds)))
        return say(err, errlen, "out of memory");
      if (!json_floats(lo, s->action_n, a->bounds) ||
          !json_floats(hi, s->action_n, a->bounds + s->action_n))
        return say(err, errlen, "action: 'low' and 'high' must be %d numbers each", s->action_n);
      s->low = a->bounds;
      s->high = a->bounds + s->action_n;
    }
    return 0;
  }
  /* the composite ones: a list of parts */
  s->action_kind = MRL_COMPOSITE;
  const char *list = NULL;
  int np = 1;
  if (json_string_is(t, "multi_discrete")) {
    list = json_get(act, "nvec");
    np = json_length(list);
  } else if (json_string_is(t, "hybrid")) {
    list = json_get(act, "parts");
    np = json_length(list);
  } else if (!json_string_is(t, "multi_binary")) {
    return say(err, errlen, "unknown action type %s (discrete, box, multi_discrete, "
               "multi_binary or hybrid expected)", shown(t, buf, sizeof buf));
  }
  if (np < 1 || np > MRL_MAX_WIDTH)
    return say(err, errlen, "action: 'nvec' or 'parts' must be a non-empty list");
  a->parts = (mrl_action_part *)calloc((size_t)np, sizeof *a->parts);
  if (!a->parts) return say(err, errlen, "out of memory");
  s->parts = a->parts;
  s->nparts = np;
  if (json_string_is(t, "multi_binary")) { /* one part of n bits */
    a->parts[0].type = MRL_PART_BERNOULLI;
    if (!json_int(json_get(act, "n"), 1, MRL_MAX_WIDTH, &a->parts[0].n))
      return say(err, errlen, "action: no valid 'n'");
    return 0;
  }
  const char *e = json_first(list);
  for (int i = 0; i < np; i++, e = json_next(e)) {
    if (json_string_is(t, "hybrid")) {
      if (read_part(e, i, &a->parts[i], err, errlen)) return 1;
    } else {
      a->parts[i].type = MRL_PART_CATEGORICAL;
      if (!json_int(e, 1, MRL_MAX_WIDTH, &a->parts[i].n))
        return say(err, errlen, "action: nvec[%d] is not an integer in [1, %d]", i + 1,
                   MRL_MAX_WIDTH);
    }
  }
  return 0;
}

/* "obs_shape" [C,H,W] and "conv" [{out, kernel, stride, padding}, …]. */
static int read_grid(const char *js, arch *a, char *err, size_t errlen) {
  mrl_policy_spec *s = &a->spec;
  const char *shape = json_get(js, "obs_shape"), *conv = json_get(js, "conv");
  if (shape && !json_ints(shape, 3, 1, MRL_MAX_WIDTH, s->obs_shape))
    return say(err, errlen, "'obs_shape' must be [C, H, W]");
  if (!conv) return 0;
  int n = json_length(conv);
  if (n < 0 || n > MRL_MAX_CONV)
    return say(err, errlen, "'conv' must be a list of at most %d layers", MRL_MAX_CONV);
  const char *e = json_first(conv);
  for (int i = 0; i < n; i++, e = json_next(e)) {
    mrl_conv_layer *c = &a->conv[i];
    c->stride = 1; /* the defaults core.policy applies */
    c->padding = 0;
    const char *st = json_get(e, "stride"), *pad = json_get(e, "padding");
    if (!json_int(json_get(e, "out"), 1, MRL_MAX_WIDTH, &c->out) ||
        !json_int(json_get(e, "kernel"), 1, 1024, &c->kernel) ||
        (st && !json_int(st, 1, 1024, &c->stride)) ||
        (pad && !json_int(pad, 0, 1024, &c->padding)))
      return say(err, errlen, "conv layer %d: 'out', 'kernel' (and 'stride') must be "
                 "integers >= 1, 'padding' >= 0", i + 1);
  }
  s->conv = a->conv;
  s->nconv = n;
  return 0;
}

/* The "policy" metadata JSON into a (free it with arch_free even on
** failure).  0, or 1 with a message in err. */
static int read_arch(const char *js, arch *a, char *err, size_t errlen) {
  mrl_policy_spec *s = &a->spec;
  memset(a, 0, sizeof *a);
  *s = mrl_policy_spec_default();
  if (!js || *skip_ws(js) != '{')
    return say(err, errlen, "no 'policy' architecture in the metadata");
  const char *act = json_get(js, "action");
  if (!act) return say(err, errlen, "the architecture has no 'action'");
  if (read_action(act, a, err, errlen) || read_grid(js, a, err, errlen)) return 1;
  if (!json_int(json_get(js, "obs_dim"), 1, MRL_MAX_WIDTH, &s->obs_dim))
    return say(err, errlen, "the architecture has no valid 'obs_dim'");
  const char *hid = json_get(js, "hidden");
  int nh = json_length(hid);
  if (nh < 0 || nh > MRL_MAX_LAYERS || !json_ints(hid, nh, 1, MRL_MAX_WIDTH, a->hidden))
    return say(err, errlen, "'hidden' must be a list of at most %d widths", MRL_MAX_LAYERS);
  s->hidden = a->hidden;
  s->nhidden = nh;
  const char *actv = json_get(js, "activation");
  if (json_string_is(actv, "relu")) s->activation = MRL_RELU;
  else if (json_string_is(actv, "tanh") || !actv) s->activation = MRL_TANH;
  else {
    char buf[40];
    return say(err, errlen, "unknown activation %s", shown(actv, buf, sizeof buf));
  }
  /* init_log_std, out_gain and seed only shape a fresh policy: the
  ** tensors overwrite it, so they do not change the greedy action */
  json_number(json_get(js, "init_log_std"), &s->init_log_std);
  json_number(json_get(js, "out_gain"), &s->out_gain);
  const char *seed = json_get(js, "seed");
  if (seed) s->seed = (uint64_t)strtoll(seed, NULL, 10);
  /* the runtime's own words for anything else wrong with the spec */
  char why[200];
  if (mrl_policy_spec_check(s, why, sizeof why) != MRL_OK)
    return say(err, errlen, "not a valid policy: %s", why);
  return 0;
}

/* ----------------------------------------------------- the parameters */

/* The flat parameter vector being filled, tensor after tensor. */
typedef struct params_reader {
  mrl_st_file *f;
  float *flat;    /* [np] */
  size_t np, off; /* its size, and how much is filled */
  char *err;
  size_t errlen;
} params_reader;

/* Appends tensor "policy.<index>.<what>" (or "policy.<what>" when index
** < 0), which must have the shape [d0][d1][d2][d3] (trailing zeros: fewer
** dimensions), to the vector.  The shape is checked before anything is
** copied, so a file that disagrees with its architecture is an error, not
** an overflow. */
static int take(params_reader *r, int index, const char *what, int64_t d0, int64_t d1,
                int64_t d2, int64_t d3) {
  const int64_t shape[4] = {d0, d1, d2, d3};
  char name[64], want[96] = "";
  if (index >= 0) snprintf(name, sizeof name, "policy.%d.%s", index, what);
  else snprintf(name, sizeof name, "policy.%s", what);
  int ndim = 0;
  size_t count = 1;
  for (; ndim < 4 && shape[ndim] > 0; ndim++) {
    count *= (size_t)shape[ndim];
    size_t used = strlen(want);
    snprintf(want + used, sizeof want - used, "[%lld]", (long long)shape[ndim]);
  }
  int i = mrl_st_find(r->f, name);
  if (i < 0) return say(r->err, r->errlen, "tensor %s is missing", name);
  int ok = mrl_st_ndim(r->f, i) == ndim;
  for (int d = 0; ok && d < ndim; d++) ok = mrl_st_dim(r->f, i, d) == shape[d];
  if (!ok)
    return say(r->err, r->errlen, "tensor %s does not have the shape %s the architecture needs",
               name, want);
  if (count > r->np - r->off)
    return say(r->err, r->errlen, "the tensors outgrow the policy's %zu parameters", r->np);
  if (mrl_st_read(r->f, i, r->flat + r->off, count) != MRL_OK)
    return say(r->err, r->errlen, "cannot read tensor %s", name);
  r->off += count;
  return 0;
}

/* Fills r->flat in the runtime's order (the order of PyTorch's
** parameters()): each conv layer's weight and bias, each Linear's weight
** and bias, then the log_std vectors. */
static int read_params(params_reader *r, const mrl_policy *p, const mrl_policy_spec *s) {
  /* nn.Sequential(Conv2d, act, …): conv layer i is module 2i */
  int c = s->obs_shape[0], h = s->obs_shape[1], w = s->obs_shape[2];
  for (int i = 0; i < s->nconv; i++) {
    const mrl_conv_layer *L = &s->conv[i];
    if (take(r, 2 * i, "weight", L->out, c, L->kernel, L->kernel) ||
        take(r, 2 * i, "bias", L->out, 0, 0, 0))
      return 1;
    c = L->out;
    h = (h + 2 * L->padding - L->kernel) / L->stride + 1;
    w = (w + 2 * L->padding - L->kernel) / L->stride + 1;
  }
  /* … Flatten (module 2·nconv), Linear, act, …: Linear k is module
  ** base + 2k, its input the flattened C·H·W of the last conv layer */
  int base = s->nconv ? 2 * s->nconv + 1 : 0;
  int in = s->nconv ? c * h * w : s->obs_dim;
  for (int k = 0; k <= s->nhidden; k++) {
    int out = k < s->nhidden ? s->hidden[k] : mrl_policy_out_dim(p);
    if (take(r, base + 2 * k, "weight", out, in, 0, 0) ||
        take(r, base + 2 * k, "bias", out, 0, 0, 0))
      return 1;
    in = out;
  }
  /* σ: a box policy's one vector, a hybrid's one per gaussian part, named
  ** by the part's index among all parts */
  if (s->action_kind == MRL_BOX && take(r, -1, "log_std", s->action_n, 0, 0, 0)) return 1;
  for (int i = 0; s->action_kind == MRL_COMPOSITE && i < s->nparts; i++) {
    char what[32];
    snprintf(what, sizeof what, "log_std.%d", i);
    if (s->parts[i].type == MRL_PART_GAUSSIAN && take(r, -1, what, s->parts[i].n, 0, 0, 0))
      return 1;
  }
  if (r->off != r->np)
    return say(r->err, r->errlen, "the tensors do not add up to the policy's parameters");
  return 0;
}

/* Builds the policy saved in path; NULL (after a message) on failure. */
static mrl_policy *load_policy(const char *path) {
  char err[512];
  mrl_st_file *f = NULL;
  mrl_policy *p = NULL;
  float *flat = NULL;
  arch a;
  if (mrl_st_open(&f, path, err, sizeof err) != MRL_OK) {
    fprintf(stderr, "infer: %s\n", err); /* the message names the file */
    return NULL;
  }
  int bad = read_arch(mrl_st_meta_get(f, "policy"), &a, err, sizeof err);
  if (!bad && mrl_policy_new(&p, &a.spec) != MRL_OK) {
    p = NULL;
    bad = say(err, sizeof err, "cannot create the policy (out of memory?)");
  }
  /* the "n" the file states (outputs) must be the policy's */
  int n;
  if (!bad && json_int(json_get(json_get(mrl_st_meta_get(f, "policy"), "action"), "n"), 1,
                       MRL_MAX_WIDTH, &n) && n != mrl_policy_out_dim(p))
    bad = say(err, sizeof err, "action: 'n' is %d, its parts make %d outputs", n,
              mrl_policy_out_dim(p));
  size_t np = p ? mrl_policy_nparams(p) : 0;
  if (!bad && !(flat = (float *)malloc(np * sizeof *flat)))
    bad = say(err, sizeof err, "out of memory");
  if (!bad) {
    params_reader r = {f, flat, np, 0, err, sizeof err};
    bad = read_params(&r, p, &a.spec);
  }
  if (!bad && mrl_policy_set_params(p, flat, np) != MRL_OK)
    bad = say(err, sizeof err, "%s", mrl_policy_error(p));
  if (bad) {
    fprintf(stderr, "infer: %s: %s\n", path, err);
    mrl_policy_free(p);
    p = NULL;
  }
  arch_free(&a);
  free(flat);
  mrl_st_close(f);
  return p;
}

/* ------------------------------------------------------ acting on input */

/* One input row: the observation, and the mask when the line has one. */
typedef struct row {
  float *obs;  /* [obs_dim] */
  float *mask; /* [out_dim] */
  int has_mask;
} row;

/* Reads up to cap numbers from s (stopping at anything else); *end is
** where it stopped; returns the count, cap + 1 if there are more. */
static int read_numbers(const char *s, float *out, int cap, const char **end) {
  int n = 0;
  for (;;) {
    char *e;
    float x = strtof(s, &e);
    if (e == s) break;
    if (n == cap) {
      n++;
      break;
    }
    out[n++] = x;
    s = e;
  }
  *end = skip_ws(s);
  return n;
}

/* Parses "x1 … xD [| m1 … mK]" into r; 0, or 1 with a message in err. */
static int parse_row(const mrl_policy *p, const char *line, row *r, char *err, size_t errlen) {
  const int d = mrl_policy_obs_dim(p), k = mrl_policy_out_dim(p);
  const char *s;
  int n = read_numbers(line, r->obs, d, &s);
  if (n > d) return say(err, errlen, "%d observation numbers expected, got more", d);
  if (*s && *s != '|')
    return say(err, errlen, "not a number: \"%.*s\"", (int)strcspn(s, " \t\r\n|"), s);
  if (n < d) return say(err, errlen, "%d observation numbers expected, got %d", d, n);
  r->has_mask = *s == '|';
  if (!r->has_mask) return 0;
  if (!mrl_policy_maskable(p))
    return say(err, errlen, "this policy takes no mask (its action is not discrete or "
               "multi_discrete)");
  n = read_numbers(s + 1, r->mask, k, &s);
  if (n > k) return say(err, errlen, "mask: %d numbers 0/1 expected (one per action), got more", k);
  if (*s) return say(err, errlen, "mask: not a number: \"%.*s\"", (int)strcspn(s, " \t\r\n"), s);
  if (n < k)
    return say(err, errlen, "mask: %d numbers 0/1 expected (one per action), got %d", k, n);
  for (int j = 0; j < k; j++)
    if (r->mask[j] != 0.0f && r->mask[j] != 1.0f)
      return say(err, errlen, "mask: entry %d is %g, not 0 or 1", j + 1, (double)r->mask[j]);
  return 0;
}

/* Acts greedily on r and prints the action row part by part: an index for
** a categorical part, 0/1 for each bit, %.9g numbers for a gaussian part
** (a discrete or box policy is one such part). */
static int act_print(mrl_policy *p, const row *r, float *action, char *err, size_t errlen) {
  if (mrl_policy_act_masked(p, r->obs, r->has_mask ? r->mask : NULL, 1, 1, action, NULL) != MRL_OK)
    return say(err, errlen, "%s", mrl_policy_error(p)); /* names the masked-out part */
  const char *sep = "";
  for (int i = 0, col = 0; i < mrl_policy_nparts(p); i++) {
    mrl_action_part part = mrl_policy_part(p, i);
    int width = part.type == MRL_PART_CATEGORICAL ? 1 : part.n;
    for (int j = 0; j < width; j++, col++, sep = " ") {
      if (part.type == MRL_PART_GAUSSIAN) printf("%s%.9g", sep, (double)action[col]);
      else printf("%s%d", sep, (int)action[col]);
    }
  }
  printf("\n");
  fflush(stdout); /* a program driving infer through a pipe waits for each answer */
  return 0;
}

/* Reads one line of any length into *buf (grown as needed): 1, 0 at the
** end of the input, −1 out of memory. */
static int read_line(FILE *in, char **buf, size_t *cap) {
  size_t len = 0;
  for (;;) {
    if (*cap - len < 2) {
      size_t ncap = *cap ? 2 * *cap : 4096;
      char *nb = (char *)realloc(*buf, ncap);
      if (!nb) return -1;
      *buf = nb;
      *cap = ncap;
    }
    size_t room = *cap - len;
    if (!fgets(*buf + len, room > INT_MAX ? INT_MAX : (int)room, in)) return len > 0;
    len += strlen(*buf + len);
    if (len > 0 && (*buf)[len - 1] == '\n') return 1;
  }
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: infer POLICY.safetensors [obs numbers [| mask]]\n");
    return 2;
  }
  mrl_policy *p = load_policy(argv[1]);
  if (!p) return 1;
  row r = {NULL, NULL, 0};
  r.obs = (float *)malloc((size_t)mrl_policy_obs_dim(p) * sizeof *r.obs);
  r.mask = (float *)malloc((size_t)mrl_policy_out_dim(p) * sizeof *r.mask);
  float *action = (float *)malloc((size_t)mrl_policy_action_width(p) * sizeof *action);
  char *line = NULL, err[512];
  size_t cap = 0;
  int status = 0;
  if (!r.obs || !r.mask || !action) {
    fprintf(stderr, "infer: out of memory\n");
    status = 1;
  } else if (argc > 2) {
    /* the arguments are one input line */
    size_t len = 1;
    for (int i = 2; i < argc; i++) len += strlen(argv[i]) + 1;
    if (!(line = (char *)malloc(len))) {
      fprintf(stderr, "infer: out of memory\n");
      status = 1;
    } else {
      line[0] = '\0';
      for (int i = 2; i < argc; i++) strcat(strcat(line, argv[i]), " ");
      if (parse_row(p, line, &r, err, sizeof err) ||
          act_print(p, &r, action, err, sizeof err)) {
        fprintf(stderr, "infer: arguments: %s\n", err);
        status = 2;
      }
    }
  } else {
    /* one observation per line; the first bad line ends the run */
    int got;
    for (int n = 1; status == 0 && (got = read_line(stdin, &line, &cap)) != 0; n++) {
      if (got < 0) {
        fprintf(stderr, "infer: line %d: out of memory\n", n);
        status = 1;
        break;
      }
      if (*skip_ws(line) == '\0') continue; /* a blank line */
      if (parse_row(p, line, &r, err, sizeof err) ||
          act_print(p, &r, action, err, sizeof err)) {
        fprintf(stderr, "infer: line %d: %s\n", n, err);
        status = 2;
      }
    }
  }
  free(line);
  free(action);
  free(r.mask);
  free(r.obs);
  mrl_policy_free(p);
  return status;
}
