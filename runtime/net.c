/*
** net.c — mrl_net: an MLP with its own parameters, gradient and workspace
** (value networks, critics, general regressors).  No optimiser state.
*/
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "body.h"
#include "mlp.h"
#include "mlp_packed.h"
#include "rng_impl.h"

struct mrl_net {
  mlp_shape shape;
  conv_body conv;  /* grid inputs (body.h); conv.nlayers 0: the MLP alone */
  size_t np;       /* parameters: the conv layers', then the MLP's */
  float *params, *grad;
  /* workspace for up to cap rows: the forward input (backward needs it even
  ** if the caller reuses its buffer), activations, scratch, a dy row */
  int cap;
  float *x, *acts, *scratch, *dy;
  int batch;  /* rows of the last forward, 0 when backward has nothing */
  char err[256];
};

static int fail(mrl_net *net, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(mrl_net *net, int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(net->err, sizeof net->err, fmt, ap);
  va_end(ap);
  return rc;
}

static int ok(mrl_net *net) {
  net->err[0] = '\0';
  return MRL_OK;
}

int mrl_net_new(mrl_net **out, int in_dim, const int *hidden, int nhidden,
                int out_dim, mrl_activation act, double out_gain,
                uint64_t seed) {
  mrl_net_spec spec = {0};
  spec.in_dim = in_dim;
  spec.hidden = hidden;
  spec.nhidden = nhidden;
  spec.activation = act;
  spec.out_dim = out_dim;
  spec.out_gain = out_gain;
  spec.seed = seed;
  return mrl_net_new_spec(out, &spec);
}

int mrl_net_new_spec(mrl_net **out, const mrl_net_spec *spec) {
  if (!out) return MRL_EINVAL;
  *out = NULL;
  if (!spec || !isfinite(spec->out_gain)) return MRL_EINVAL;
  mrl_net *net = calloc(1, sizeof *net);
  if (!net) return MRL_ENOMEM;
  int in = spec->in_dim, rc = MRL_OK;
  if (spec->obs_shape[0] || spec->obs_shape[1] || spec->obs_shape[2] ||
      spec->nconv) {
    rc = conv_body_init(&net->conv, spec->obs_shape, spec->conv, spec->nconv,
                        spec->activation, NULL, 0);
    if (rc == MRL_OK && in != 0 && in != net->conv.in_dim) rc = MRL_EINVAL;
    in = net->conv.out_dim;
  }
  if (rc == MRL_OK)
    rc = mlp_shape_init(&net->shape, in, spec->hidden, spec->nhidden,
                        spec->out_dim, spec->activation);
  if (rc != MRL_OK) {
    free(net);
    return rc;
  }
  net->np = net->conv.nparams + net->shape.nparams;
  net->params = mlp_alloc_floats(net->np);
  net->grad = mlp_alloc_floats(net->np);
  if (!net->params || !net->grad) {
    mrl_net_free(net);
    return MRL_ENOMEM;
  }
  mrl_rng rng;
  rng_seed(&rng, spec->seed);
  if (net->conv.nlayers)
    rc = conv_init_params(&net->conv, net->params, &rng, sqrt(2.0));
  if (rc == MRL_OK)
    rc = mlp_init_params(&net->shape, net->params + net->conv.nparams, &rng,
                         sqrt(2.0), spec->out_gain);
  if (rc != MRL_OK) {
    mrl_net_free(net);
    return rc;
  }
  *out = net;
  return MRL_OK;
}

int mrl_net_clone(mrl_net **out, const mrl_net *src) {
  if (!out) return MRL_EINVAL;
  *out = NULL;
  if (!src) return MRL_EINVAL;
  mrl_net *net = calloc(1, sizeof *net);
  if (!net) return MRL_ENOMEM;
  net->shape = src->shape;  /* the same kernel variant, so the same bits */
  net->conv = src->conv;
  net->np = src->np;
  net->params = mlp_alloc_floats(net->np);
  net->grad = mlp_alloc_floats(net->np);
  if (!net->params || !net->grad) {
    mrl_net_free(net);
    return MRL_ENOMEM;
  }
  memcpy(net->params, src->params, net->np * sizeof(float));
  *out = net;
  return MRL_OK;
}

void mrl_net_free(mrl_net *net) {
  if (!net) return;
  free(net->params);
  free(net->grad);
  free(net->x);
  free(net->acts);
  free(net->scratch);
  free(net->dy);
  free(net);
}

const char *mrl_net_error(const mrl_net *net) {
  return net ? net->err : "net is NULL";
}

static int net_in(const mrl_net *net) {
  return net->conv.nlayers ? net->conv.in_dim : net->shape.dims[0];
}

int mrl_net_in_dim(const mrl_net *net) { return net ? net_in(net) : 0; }

int mrl_net_obs_shape(const mrl_net *net, int shape[3]) {
  if (!net || !net->conv.c) return 0;
  if (shape) {
    shape[0] = net->conv.c;
    shape[1] = net->conv.h;
    shape[2] = net->conv.w;
  }
  return 1;
}

int mrl_net_nconv(const mrl_net *net) { return net ? net->conv.nlayers : 0; }

int mrl_net_conv(const mrl_net *net, int i, mrl_conv_layer *out) {
  if (!net || !out || i < 0 || i >= net->conv.nlayers) return 0;
  const conv_layer *L = &net->conv.l[i];
  out->out = L->cout;
  out->kernel = L->k;
  out->stride = L->stride;
  out->padding = L->pad;
  return 1;
}
int mrl_net_out_dim(const mrl_net *net) {
  return net ? net->shape.dims[net->shape.nlayers] : 0;
}
int mrl_net_nhidden(const mrl_net *net) {
  return net ? net->shape.nlayers - 1 : 0;
}
int mrl_net_hidden(const mrl_net *net, int i) {
  if (!net || i < 0 || i >= net->shape.nlayers - 1) return 0;
  return net->shape.dims[i + 1];
}
mrl_activation mrl_net_activation(const mrl_net *net) {
  return net ? net->shape.act : MRL_TANH;
}
size_t mrl_net_nparams(const mrl_net *net) {
  return net ? net->np : 0;
}
float *mrl_net_params(mrl_net *net) { return net ? net->params : NULL; }
float *mrl_net_grad(mrl_net *net) { return net ? net->grad : NULL; }

int mrl_net_get_params(const mrl_net *net, float *out, size_t n) {
  if (!net) return MRL_EINVAL;
  mrl_net *m = (mrl_net *)net;  /* the message buffer is not logical state */
  if (!out) return fail(m, MRL_EINVAL, "get_params: out is NULL");
  if (n != net->np)
    return fail(m, MRL_EINVAL, "get_params: n is %zu, the net has %zu", n,
                net->np);
  memcpy(out, net->params, n * sizeof(float));
  return ok(m);
}

int mrl_net_set_params(mrl_net *net, const float *in, size_t n) {
  if (!net) return MRL_EINVAL;
  if (!in) return fail(net, MRL_EINVAL, "set_params: in is NULL");
  if (n != net->np)
    return fail(net, MRL_EINVAL, "set_params: n is %zu, the net has %zu", n,
                net->np);
  for (size_t i = 0; i < n; i++)
    if (!isfinite(in[i]))
      return fail(net, MRL_ENONFINITE,
                  "set_params: in[%zu] is not finite; params unchanged", i);
  memcpy(net->params, in, n * sizeof(float));
  net->batch = 0;  /* stored activations no longer match the params */
  return ok(net);
}

void mrl_net_zero_grad(mrl_net *net) {
  if (net) memset(net->grad, 0, net->np * sizeof(float));
}

/* Grows the workspace to hold batch rows.  On failure the old buffers are
** kept (and stay valid for their old capacity). */
static int reserve(mrl_net *net, int batch, const char *fn) {
  if (batch <= net->cap) return MRL_OK;
  const mlp_shape *s = &net->shape;
  size_t nx = (size_t)batch * (size_t)net_in(net),
         na = body_acts_floats(s, &net->conv, batch),
         ns = body_scratch_floats(s, &net->conv, batch);
  float *x = mlp_alloc_floats(nx), *a = mlp_alloc_floats(na),
        *sc = mlp_alloc_floats(ns), *dy = mlp_alloc_floats((size_t)batch);
  if (!x || !a || !sc || !dy) {
    free(x);
    free(a);
    free(sc);
    free(dy);
    return fail(net, MRL_ENOMEM, "%s: cannot allocate a workspace for batch %d",
                fn, batch);
  }
  free(net->x);
  free(net->acts);
  free(net->scratch);
  free(net->dy);
  net->x = x;
  net->acts = a;
  net->scratch = sc;
  net->dy = dy;
  net->cap = batch;
  net->batch = 0;
  return MRL_OK;
}

static int check_batch(mrl_net *net, int batch, const char *fn) {
  if (batch < 1 || batch > MRL_MAX_BATCH)
    return fail(net, MRL_EINVAL, "%s: batch is %d, must be in 1..%d", fn, batch,
                (int)MRL_MAX_BATCH);
  return MRL_OK;
}

/* forward into the workspace; keeps x for backward */
static int run_forward(mrl_net *net, const float *x, int batch, const char *fn) {
  int rc = reserve(net, batch, fn);
  if (rc != MRL_OK) return rc;
  memcpy(net->x, x, (size_t)batch * (size_t)net_in(net) * sizeof(float));
  body_forward(&net->shape, &net->conv, net->params, net->x, batch, net->acts);
  net->batch = batch;
  return MRL_OK;
}

int mrl_net_forward(mrl_net *net, const float *x, int batch, float *y) {
  if (!net) return MRL_EINVAL;
  if (!x) return fail(net, MRL_EINVAL, "forward: x is NULL");
  if (!y) return fail(net, MRL_EINVAL, "forward: y is NULL");
  int rc = check_batch(net, batch, "forward");
  if (rc == MRL_OK) rc = run_forward(net, x, batch, "forward");
  if (rc != MRL_OK) return rc;
  const mlp_shape *s = &net->shape;
  memcpy(y, mlp_output(s, net->acts, batch),
         (size_t)batch * s->dims[s->nlayers] * sizeof(float));
  return ok(net);
}

size_t net_wt_floats(const mrl_net *net) { return net->shape.nparams; }

void net_pack_wt(const mrl_net *net, float *wt) {
  if (net->conv.nlayers) return;  /* net_forward_wt goes the plain way */
  mlp_pack_wt(&net->shape, net->params, wt);
}

/* mrl_net_forward over a transposed weight copy; keeps nothing for
** backward (a rollout's values are never differentiated). */
int net_forward_wt(mrl_net *net, const float *wt, const float *x, int batch,
                   float *y) {
  if (!net) return MRL_EINVAL;
  if (!x) return fail(net, MRL_EINVAL, "forward: x is NULL");
  if (!y) return fail(net, MRL_EINVAL, "forward: y is NULL");
  int rc = check_batch(net, batch, "forward");
  if (rc == MRL_OK) rc = reserve(net, batch, "forward");
  if (rc != MRL_OK) return rc;
  const mlp_shape *s = &net->shape;
  if (net->conv.nlayers)
    body_forward(s, &net->conv, net->params, x, batch, net->acts);
  else
    mlp_forward_wt(s, net->params, wt, x, batch, net->acts);
  net->batch = 0;
  memcpy(y, mlp_output(s, net->acts, batch),
         (size_t)batch * s->dims[s->nlayers] * sizeof(float));
  return ok(net);
}

int mrl_net_backward(mrl_net *net, const float *dy, float *dx) {
  if (!net) return MRL_EINVAL;
  if (!dy) return fail(net, MRL_EINVAL, "backward: dy is NULL");
  if (net->batch < 1)
    return fail(net, MRL_ESTATE, "backward: no forward pass to differentiate");
  if (net->conv.nlayers) {
    if (dx)
      return fail(net, MRL_EINVAL,
                  "backward: dx of a convolutional net's input is not computed");
    body_backward(&net->shape, &net->conv, net->params, net->x, net->acts,
                  net->batch, dy, net->grad, net->scratch);
    return ok(net);
  }
  mlp_backward(&net->shape, net->params, net->x, net->acts, net->batch, dy,
               net->grad, net->scratch, dx);
  return ok(net);
}

int mrl_net_jvp(mrl_net *net, const float *x, int batch, const float *v,
                float *y, float *jy) {
  if (!net) return MRL_EINVAL;
  if (!x) return fail(net, MRL_EINVAL, "jvp: x is NULL");
  if (!v) return fail(net, MRL_EINVAL, "jvp: v is NULL");
  if (!jy) return fail(net, MRL_EINVAL, "jvp: jy is NULL");
  int rc = check_batch(net, batch, "jvp");
  if (rc == MRL_OK) rc = run_forward(net, x, batch, "jvp");
  if (rc != MRL_OK) return rc;
  const mlp_shape *s = &net->shape;
  if (y)
    memcpy(y, mlp_output(s, net->acts, batch),
           (size_t)batch * s->dims[s->nlayers] * sizeof(float));
  body_jvp(s, &net->conv, net->params, v, net->x, net->acts, batch, jy,
           net->scratch);
  return ok(net);
}

static int value_args(mrl_net *net, const float *obs, const float *targets,
                      int batch, const double *loss, const char *fn) {
  if (!obs) return fail(net, MRL_EINVAL, "%s: obs is NULL", fn);
  if (!targets) return fail(net, MRL_EINVAL, "%s: targets is NULL", fn);
  if (!loss) return fail(net, MRL_EINVAL, "%s: loss is NULL", fn);
  if (net->shape.dims[net->shape.nlayers] != 1)
    return fail(net, MRL_EINVAL, "%s: the net has %d outputs, a value net has 1",
                fn, net->shape.dims[net->shape.nlayers]);
  return check_batch(net, batch, fn);
}

/* grad := ∇ of the loss whose per-sample derivative is in net->dy */
static int finish_loss(mrl_net *net, double sum, int batch, double *loss,
                       const char *fn) {
  if (!isfinite(sum)) {
    mrl_net_zero_grad(net);
    return fail(net, MRL_ENONFINITE, "%s: the loss is not finite", fn);
  }
  *loss = sum / batch;
  mrl_net_zero_grad(net);
  body_backward(&net->shape, &net->conv, net->params, net->x, net->acts, batch,
                net->dy, net->grad, net->scratch);
  return ok(net);
}

int mrl_net_value_loss(mrl_net *net, const float *obs, const float *targets,
                       int batch, double *loss, float *values) {
  if (!net) return MRL_EINVAL;
  int rc = value_args(net, obs, targets, batch, loss, "value_loss");
  if (rc == MRL_OK) rc = run_forward(net, obs, batch, "value_loss");
  if (rc != MRL_OK) return rc;
  const float *v = mlp_output(&net->shape, net->acts, batch);
  double sum = 0.0, scale = 2.0 / batch;
  for (int n = 0; n < batch; n++) {
    double e = (double)v[n] - targets[n];
    sum += e * e;
    net->dy[n] = (float)(scale * e);
  }
  if (values) memcpy(values, v, (size_t)batch * sizeof(float));
  return finish_loss(net, sum, batch, loss, "value_loss");
}

int mrl_net_value_loss_clipped(mrl_net *net, const float *obs,
                               const float *targets, const float *old_values,
                               int batch, double clip, double *loss) {
  if (!net) return MRL_EINVAL;
  int rc = value_args(net, obs, targets, batch, loss, "value_loss_clipped");
  if (rc != MRL_OK) return rc;
  if (clip > 0.0 && !old_values)
    return fail(net, MRL_EINVAL, "value_loss_clipped: old_values is NULL");
  if (clip != clip)
    return fail(net, MRL_EINVAL, "value_loss_clipped: clip is NaN");
  rc = run_forward(net, obs, batch, "value_loss_clipped");
  if (rc != MRL_OK) return rc;
  const float *v = mlp_output(&net->shape, net->acts, batch);
  double sum = 0.0, scale = 2.0 / batch;
  for (int n = 0; n < batch; n++) {
    double e = (double)v[n] - targets[n];
    double l1 = e * e, g = e;
    if (clip > 0.0) {
      double d = (double)v[n] - old_values[n];
      double dc = d < -clip ? -clip : d > clip ? clip : d;
      double ec = (double)old_values[n] + dc - targets[n];
      /* the clipped branch carries gradient only inside the clip range,
      ** as torch.clamp does; ties go to the unclipped branch (same value
      ** and, unclipped, the same gradient) */
      if (ec * ec > l1) {
        l1 = ec * ec;
        g = (d >= -clip && d <= clip) ? ec : 0.0;
      }
    }
    sum += l1;
    net->dy[n] = (float)(scale * g);
  }
  return finish_loss(net, sum, batch, loss, "value_loss_clipped");
}
