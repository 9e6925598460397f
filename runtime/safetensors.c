/*
** safetensors.c — checkpoint files in the safetensors format.
**
** The reader treats every file as hostile: the header length is bounded by
** the file size and MRL_ST_MAX_HEADER, the JSON parser has a depth limit and
** accepts only what the format allows, shapes are multiplied with overflow
** checks, and every tensor must lie inside the data region without
** overlapping another.  The writer never leaves a half-written file under
** the final name.
*/
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic_file.h"
#include "errmsg.h"
#include "moonrl.h"


/* ------------------------------------------------------------- buffers */

typedef struct sbuf {
  char *p;
  size_t len, cap;
  int oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1) cap *= 2;
    char *q = realloc(b->p, cap);
    if (!q) { b->oom = 1; return; }
    b->p = q; b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = 0;
}

static void sb_puts(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_printf(sbuf *b, const char *fmt, ...) {
  char tmp[64];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n > 0) sb_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static void sb_json_string(sbuf *b, const char *s) {
  sb_puts(b, "\"");
  for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
    if (*c == '"' || *c == '\\') { char e[2] = {'\\', (char)*c}; sb_put(b, e, 2); }
    else if (*c < 0x20) sb_printf(b, "\\u%04x", *c);
    else sb_put(b, (const char *)c, 1);
  }
  sb_puts(b, "\"");
}

/* ------------------------------------------------------------- writing */

static void put_le32(uint8_t *dst, float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  dst[0] = (uint8_t)u; dst[1] = (uint8_t)(u >> 8);
  dst[2] = (uint8_t)(u >> 16); dst[3] = (uint8_t)(u >> 24);
}

static int64_t numel_of(const mrl_st_tensor *t) {
  int64_t n = 1;
  for (int d = 0; d < t->ndim; d++) {
    if (t->shape[d] < 0 || (t->shape[d] && n > INT64_MAX / 4 / t->shape[d])) return -1;
    n *= t->shape[d];
  }
  return n;
}

/* Tensors and metadata are written in name order, so a file's bytes do not
** depend on the order the caller (a Lua table's hash order, say) gave them. */
typedef struct kv { const char *k, *v; } kv;
static int cmp_tensor(const void *a, const void *b) {
  return strcmp((*(const mrl_st_tensor *const *)a)->name, (*(const mrl_st_tensor *const *)b)->name);
}
static int cmp_kv(const void *a, const void *b) {
  return strcmp(((const kv *)a)->k, ((const kv *)b)->k);
}

typedef struct body { const sbuf *h; const mrl_st_tensor *const *ts; int nt; } body;

static int emit_body(int fd, void *ud) {
  const body *b = ud;
  uint8_t len8[8], chunk[4096];
  uint64_t hl = b->h->len;
  for (int k = 0; k < 8; k++) len8[k] = (uint8_t)(hl >> (8 * k));
  if (mrl_write_all_(fd, len8, 8) || mrl_write_all_(fd, b->h->p, b->h->len)) return -1;
  for (int i = 0; i < b->nt; i++) {
    const mrl_st_tensor *t = b->ts[i];
    int64_t n = numel_of(t);
    for (int64_t j = 0; j < n;) {
      int64_t k = n - j < 1024 ? n - j : 1024;
      for (int64_t q = 0; q < k; q++) put_le32(chunk + 4 * q, t->data[j + q]);
      if (mrl_write_all_(fd, chunk, (size_t)k * 4)) return -1;
      j += k;
    }
  }
  return 0;
}

int mrl_st_write(const char *path, const mrl_st_tensor *tensors, int ntensors,
                 const char *const *keys, const char *const *values, int nkeys,
                 char *err, size_t errlen) {
  if (!path || (ntensors && !tensors) || ntensors < 0 || nkeys < 0 ||
      (nkeys && (!keys || !values)))
    return mrl_errbuf_(err, errlen, MRL_EINVAL, "st_write: bad arguments");
  for (int i = 0; i < nkeys; i++)
    if (!keys[i] || !values[i]) return mrl_errbuf_(err, errlen, MRL_EINVAL, "metadata %d: NULL", i);
  for (int i = 0; i < ntensors; i++) {
    const mrl_st_tensor *t = &tensors[i];
    int64_t n = t->ndim >= 0 && t->ndim <= MRL_ST_MAX_DIMS ? numel_of(t) : -1;
    if (!t->name || !*t->name || n < 0 || (n && !t->data) || !strcmp(t->name, "__metadata__"))
      return mrl_errbuf_(err, errlen, MRL_EINVAL, "tensor %d (%s): bad name, shape or data", i,
                  t->name ? t->name : "NULL");
  }
  const mrl_st_tensor **ts = malloc(sizeof *ts * (size_t)(ntensors + 1));
  kv *md = malloc(sizeof *md * (size_t)(nkeys + 1));
  sbuf h = {0};
  int st = MRL_ENOMEM;
  if (!ts || !md) goto done;
  for (int i = 0; i < ntensors; i++) ts[i] = &tensors[i];
  for (int i = 0; i < nkeys; i++) md[i] = (kv){keys[i], values[i]};
  qsort(ts, (size_t)ntensors, sizeof *ts, cmp_tensor);
  qsort(md, (size_t)nkeys, sizeof *md, cmp_kv);
  st = MRL_EINVAL;
  for (int i = 1; i < ntensors; i++)
    if (!strcmp(ts[i]->name, ts[i - 1]->name)) {
      mrl_errbuf_(err, errlen, st, "st_write: tensor name '%s' given twice", ts[i]->name);
      goto done;
    }
  for (int i = 1; i < nkeys; i++)
    if (!strcmp(md[i].k, md[i - 1].k)) {
      mrl_errbuf_(err, errlen, st, "st_write: metadata key '%s' given twice", md[i].k);
      goto done;
    }
  int64_t offset = 0;
  sb_puts(&h, "{");
  if (nkeys) {
    sb_puts(&h, "\"__metadata__\":{");
    for (int i = 0; i < nkeys; i++) {
      if (i) sb_puts(&h, ",");
      sb_json_string(&h, md[i].k);
      sb_puts(&h, ":");
      sb_json_string(&h, md[i].v);
    }
    sb_puts(&h, "}");
  }
  for (int i = 0; i < ntensors; i++) {
    const mrl_st_tensor *t = ts[i];
    if (nkeys || i) sb_puts(&h, ",");
    sb_json_string(&h, t->name);
    sb_puts(&h, ":{\"dtype\":\"F32\",\"shape\":[");
    for (int d = 0; d < t->ndim; d++) sb_printf(&h, d ? ",%lld" : "%lld", (long long)t->shape[d]);
    sb_printf(&h, "],\"data_offsets\":[%lld,", (long long)offset);
    offset += numel_of(t) * 4;
    sb_printf(&h, "%lld]}", (long long)offset);
  }
  sb_puts(&h, "}");
  /* Pad the header with spaces so the data starts 8-byte aligned. */
  while (!h.oom && h.len % 8) sb_puts(&h, " ");
  if (h.oom) {
    st = MRL_ENOMEM;
    goto done;
  }
  body b = {&h, ts, ntensors};
  st = mrl_write_atomic_(path, emit_body, &b, err, errlen);
done:
  if (st == MRL_ENOMEM) mrl_errbuf_(err, errlen, st, "st_write: out of memory");
  free(h.p);
  free(ts);
  free(md);
  return st;
}

/* ------------------------------------------------------------- reading */

typedef struct st_entry {
  char *name;
  char dtype[8];
  int ndim, esize;
  int64_t shape[MRL_ST_MAX_DIMS];
  int64_t begin, end;
} st_entry;

struct mrl_st_file {
  uint8_t *bytes;        /* the whole file */
  size_t size;
  const uint8_t *data;   /* start of the data region */
  size_t data_size;
  st_entry *t;
  int nt, capt;
  char **meta;           /* key, value, key, value, … */
  int nmeta, capmeta;
};

typedef struct parser {
  const char *s, *end, *start;
  char *err;
  size_t errlen;
} parser;

static int perr(parser *p, const char *what) {
  return mrl_errbuf_(p->err, p->errlen, MRL_EFORMAT, "safetensors header: %s at byte %ld",
              what, (long)(p->s - p->start));
}

static void skip_ws(parser *p) {
  while (p->s < p->end && (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r')) p->s++;
}

static int expect(parser *p, char c) {
  skip_ws(p);
  if (p->s >= p->end || *p->s != c) {
    char m[32];
    snprintf(m, sizeof m, "expected '%c'", c);
    return perr(p, m);
  }
  p->s++;
  return MRL_OK;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Parses a JSON string into a fresh NUL-terminated buffer (UTF-8 out). */
static int parse_string(parser *p, char **out) {
  skip_ws(p);
  if (p->s >= p->end || *p->s != '"') return perr(p, "expected a string");
  p->s++;
  sbuf b = {0};
  sb_put(&b, "", 0);
  while (p->s < p->end && *p->s != '"') {
    unsigned char c = (unsigned char)*p->s++;
    if (c < 0x20) { free(b.p); return perr(p, "control character in string"); }
    if (c != '\\') { sb_put(&b, (const char *)&c, 1); continue; }
    if (p->s >= p->end) break;
    char e = *p->s++;
    const char *simple = strchr("\"\\/bfnrt", e);
    if (simple && e) {
      static const char map[] = "\"\\/\b\f\n\r\t";
      sb_put(&b, &map[simple - "\"\\/bfnrt"], 1);
    } else if (e == 'u') {
      if (p->end - p->s < 4) { free(b.p); return perr(p, "short \\u escape"); }
      unsigned cp = 0;
      for (int k = 0; k < 4; k++) {
        int v = hexval(p->s[k]);
        if (v < 0) { free(b.p); return perr(p, "bad \\u escape"); }
        cp = cp * 16 + (unsigned)v;
      }
      p->s += 4;
      /* Surrogates are not joined: names in checkpoints are ASCII. */
      char u[3];
      if (cp < 0x80) { u[0] = (char)cp; sb_put(&b, u, 1); }
      else if (cp < 0x800) { u[0] = (char)(0xC0 | (cp >> 6)); u[1] = (char)(0x80 | (cp & 63)); sb_put(&b, u, 2); }
      else { u[0] = (char)(0xE0 | (cp >> 12)); u[1] = (char)(0x80 | ((cp >> 6) & 63)); u[2] = (char)(0x80 | (cp & 63)); sb_put(&b, u, 3); }
    } else { free(b.p); return perr(p, "bad escape"); }
  }
  if (p->s >= p->end) { free(b.p); return perr(p, "unterminated string"); }
  p->s++;
  if (b.oom) { free(b.p); return mrl_errbuf_(p->err, p->errlen, MRL_ENOMEM, "out of memory"); }
  *out = b.p;
  return MRL_OK;
}

static int parse_int(parser *p, int64_t *out) {
  skip_ws(p);
  int64_t v = 0;
  int digits = 0;
  while (p->s < p->end && *p->s >= '0' && *p->s <= '9') {
    int d = *p->s++ - '0';
    if (v > (INT64_MAX - d) / 10) return perr(p, "integer too large");
    v = v * 10 + d;
    digits++;
  }
  if (!digits) return perr(p, "expected a non-negative integer");
  *out = v;
  return MRL_OK;
}

static int parse_int_array(parser *p, int64_t *out, int max, int *n) {
  int st = expect(p, '[');
  if (st) return st;
  *n = 0;
  skip_ws(p);
  if (p->s < p->end && *p->s == ']') { p->s++; return MRL_OK; }
  for (;;) {
    if (*n >= max) return perr(p, "array too long");
    if ((st = parse_int(p, &out[(*n)++]))) return st;
    skip_ws(p);
    if (p->s < p->end && *p->s == ',') { p->s++; continue; }
    return expect(p, ']');
  }
}

static int dtype_size(const char *d) {
  if (!strcmp(d, "F32")) return 4;
  if (!strcmp(d, "F64")) return 8;
  if (!strcmp(d, "F16") || !strcmp(d, "BF16")) return 2;
  return 0;
}

static int parse_tensor(parser *p, mrl_st_file *f, char *name) {
  if (f->nt == f->capt) {
    int cap = f->capt ? f->capt * 2 : 16;
    st_entry *t = realloc(f->t, sizeof *t * (size_t)cap);
    if (!t) return mrl_errbuf_(p->err, p->errlen, MRL_ENOMEM, "out of memory");
    f->t = t; f->capt = cap;
  }
  st_entry *e = &f->t[f->nt];
  memset(e, 0, sizeof *e);
  e->name = name;
  f->nt++;
  int have_dtype = 0, have_shape = 0, have_off = 0, st;
  if ((st = expect(p, '{'))) return st;
  skip_ws(p);
  if (p->s < p->end && *p->s == '}') { p->s++; return perr(p, "empty tensor entry"); }
  for (;;) {
    char *key;
    if ((st = parse_string(p, &key))) return st;
    if ((st = expect(p, ':'))) { free(key); return st; }
    if (!strcmp(key, "dtype")) {
      char *d;
      free(key);
      if ((st = parse_string(p, &d))) return st;
      int sz = dtype_size(d);
      if (!sz) {
        mrl_errbuf_(p->err, p->errlen, MRL_EFORMAT, "tensor '%s': unsupported dtype '%.16s'", name, d);
        free(d);
        return MRL_EFORMAT;
      }
      strcpy(e->dtype, d);
      e->esize = sz;
      free(d);
      have_dtype = 1;
    } else if (!strcmp(key, "shape")) {
      free(key);
      if ((st = parse_int_array(p, e->shape, MRL_ST_MAX_DIMS, &e->ndim))) return st;
      have_shape = 1;
    } else if (!strcmp(key, "data_offsets")) {
      free(key);
      int64_t off[2];
      int n;
      if ((st = parse_int_array(p, off, 2, &n))) return st;
      if (n != 2) return perr(p, "data_offsets must hold two integers");
      e->begin = off[0]; e->end = off[1];
      have_off = 1;
    } else {
      free(key);
      return perr(p, "unknown key in a tensor entry");
    }
    skip_ws(p);
    if (p->s < p->end && *p->s == ',') { p->s++; continue; }
    if ((st = expect(p, '}'))) return st;
    break;
  }
  if (!have_dtype || !have_shape || !have_off)
    return mrl_errbuf_(p->err, p->errlen, MRL_EFORMAT,
                "tensor '%s': needs dtype, shape and data_offsets", name);
  return MRL_OK;
}

static int parse_metadata(parser *p, mrl_st_file *f) {
  int st = expect(p, '{');
  if (st) return st;
  skip_ws(p);
  if (p->s < p->end && *p->s == '}') { p->s++; return MRL_OK; }
  for (;;) {
    char *k, *v;
    if ((st = parse_string(p, &k))) return st;
    if ((st = expect(p, ':')) || (st = parse_string(p, &v))) { free(k); return st; }
    if (f->nmeta == f->capmeta) {
      int cap = f->capmeta ? f->capmeta * 2 : 8;
      char **m = realloc(f->meta, sizeof *m * 2 * (size_t)cap);
      if (!m) { free(k); free(v); return mrl_errbuf_(p->err, p->errlen, MRL_ENOMEM, "out of memory"); }
      f->meta = m; f->capmeta = cap;
    }
    f->meta[2 * f->nmeta] = k;
    f->meta[2 * f->nmeta + 1] = v;
    f->nmeta++;
    skip_ws(p);
    if (p->s < p->end && *p->s == ',') { p->s++; continue; }
    return expect(p, '}');
  }
}

static int cmp_begin(const void *a, const void *b) {
  const st_entry *x = a, *y = b;
  return x->begin < y->begin ? -1 : x->begin > y->begin;
}

static int validate(mrl_st_file *f, char *err, size_t errlen) {
  for (int i = 0; i < f->nt; i++) {
    st_entry *e = &f->t[i];
    int64_t n = 1;
    for (int d = 0; d < e->ndim; d++) {
      if (e->shape[d] && n > INT64_MAX / 8 / e->shape[d])
        return mrl_errbuf_(err, errlen, MRL_EFORMAT, "tensor '%s': shape overflows", e->name);
      n *= e->shape[d];
    }
    if (e->begin > e->end || (uint64_t)e->end > f->data_size)
      return mrl_errbuf_(err, errlen, MRL_EFORMAT,
                  "tensor '%s': data_offsets [%lld, %lld] outside the %zu-byte data region",
                  e->name, (long long)e->begin, (long long)e->end, f->data_size);
    if (e->end - e->begin != n * e->esize)
      return mrl_errbuf_(err, errlen, MRL_EFORMAT,
                  "tensor '%s': %lld bytes for %lld elements of %s",
                  e->name, (long long)(e->end - e->begin), (long long)n, e->dtype);
    for (int j = 0; j < i; j++)
      if (!strcmp(f->t[j].name, e->name))
        return mrl_errbuf_(err, errlen, MRL_EFORMAT, "tensor '%s' appears twice", e->name);
  }
  /* Overlaps: sort a copy of the extents by start. */
  if (f->nt > 1) {
    st_entry *s = malloc(sizeof *s * (size_t)f->nt);
    if (!s) return mrl_errbuf_(err, errlen, MRL_ENOMEM, "out of memory");
    memcpy(s, f->t, sizeof *s * (size_t)f->nt);
    qsort(s, (size_t)f->nt, sizeof *s, cmp_begin);
    for (int i = 1; i < f->nt; i++)
      if (s[i].begin < s[i - 1].end && s[i].begin != s[i].end && s[i - 1].begin != s[i - 1].end) {
        int st = mrl_errbuf_(err, errlen, MRL_EFORMAT, "tensors '%s' and '%s' overlap",
                      s[i - 1].name, s[i].name);
        free(s);
        return st;
      }
    free(s);
  }
  return MRL_OK;
}

void mrl_st_close(mrl_st_file *f) {
  if (!f) return;
  for (int i = 0; i < f->nt; i++) free(f->t[i].name);
  for (int i = 0; i < 2 * f->nmeta; i++) free(f->meta[i]);
  free(f->t);
  free(f->meta);
  free(f->bytes);
  free(f);
}

/* Takes ownership of bytes. */
static int open_bytes(mrl_st_file **out, uint8_t *bytes, size_t size, char *err,
                      size_t errlen) {
  mrl_st_file *f = calloc(1, sizeof *f);
  if (!f) { free(bytes); return mrl_errbuf_(err, errlen, MRL_ENOMEM, "out of memory"); }
  f->bytes = bytes;
  f->size = size;
  if (size < 8) {
    mrl_st_close(f);
    return mrl_errbuf_(err, errlen, MRL_EFORMAT, "safetensors: %zu bytes, too short for a header length", size);
  }
  uint64_t hl = 0;
  for (int k = 7; k >= 0; k--) hl = hl << 8 | bytes[k];
  if (hl < 2 || hl > MRL_ST_MAX_HEADER || hl > size - 8) {
    mrl_st_close(f);
    return mrl_errbuf_(err, errlen, MRL_EFORMAT,
                "safetensors: header length %llu does not fit the %zu-byte file",
                (unsigned long long)hl, size);
  }
  parser p = {(const char *)bytes + 8, (const char *)bytes + 8 + hl,
              (const char *)bytes + 8, err, errlen};
  f->data = bytes + 8 + hl;
  f->data_size = size - 8 - hl;
  int st = expect(&p, '{');
  skip_ws(&p);
  if (!st && p.s < p.end && *p.s == '}') p.s++;
  else
    while (!st) {
      char *name;
      if ((st = parse_string(&p, &name))) break;
      if ((st = expect(&p, ':'))) { free(name); break; }
      if (!strcmp(name, "__metadata__")) {
        free(name);
        st = parse_metadata(&p, f);
      } else {
        if (!*name) { free(name); st = perr(&p, "empty tensor name"); break; }
        st = parse_tensor(&p, f, name);
      }
      if (st) break;
      skip_ws(&p);
      if (p.s < p.end && *p.s == ',') { p.s++; continue; }
      st = expect(&p, '}');
      break;
    }
  if (!st) {
    skip_ws(&p);
    if (p.s != p.end) st = perr(&p, "trailing bytes after the header object");
  }
  if (!st) st = validate(f, err, errlen);
  if (st) { mrl_st_close(f); return st; }
  *out = f;
  return MRL_OK;
}

int mrl_st_open_memory(mrl_st_file **out, const uint8_t *data, size_t len,
                       char *err, size_t errlen) {
  if (!out || (!data && len)) return mrl_errbuf_(err, errlen, MRL_EINVAL, "st_open_memory: bad arguments");
  *out = NULL;
  uint8_t *copy = malloc(len ? len : 1);
  if (!copy) return mrl_errbuf_(err, errlen, MRL_ENOMEM, "out of memory");
  if (len) memcpy(copy, data, len);
  return open_bytes(out, copy, len, err, errlen);
}

int mrl_st_open(mrl_st_file **out, const char *path, char *err, size_t errlen) {
  if (!out || !path) return mrl_errbuf_(err, errlen, MRL_EINVAL, "st_open: bad arguments");
  *out = NULL;
  int fd = open(path, O_RDONLY);
  if (fd < 0) return mrl_errbuf_(err, errlen, MRL_EIO, "%s: %s", path, strerror(errno));
  struct stat sb;
  if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
    close(fd);
    return mrl_errbuf_(err, errlen, MRL_EIO, "%s: not a regular file", path);
  }
  size_t size = (size_t)sb.st_size;
  uint8_t *bytes = malloc(size ? size : 1);
  if (!bytes) { close(fd); return mrl_errbuf_(err, errlen, MRL_ENOMEM, "%s: out of memory", path); }
  size_t got = 0;
  while (got < size) {
    ssize_t r = read(fd, bytes + got, size - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += (size_t)r;
  }
  close(fd);
  if (got != size) { free(bytes); return mrl_errbuf_(err, errlen, MRL_EIO, "%s: short read", path); }
  int st = open_bytes(out, bytes, size, err, errlen);
  if (st && err && errlen) {
    char tmp[256];
    snprintf(tmp, sizeof tmp, "%s: %s", path, err);
    snprintf(err, errlen, "%s", tmp);
  }
  return st;
}

int mrl_st_count(const mrl_st_file *f) { return f ? f->nt : 0; }

static const st_entry *entry(const mrl_st_file *f, int i) {
  return f && i >= 0 && i < f->nt ? &f->t[i] : NULL;
}

const char *mrl_st_name(const mrl_st_file *f, int i) {
  const st_entry *e = entry(f, i);
  return e ? e->name : NULL;
}

const char *mrl_st_dtype(const mrl_st_file *f, int i) {
  const st_entry *e = entry(f, i);
  return e ? e->dtype : NULL;
}

int mrl_st_ndim(const mrl_st_file *f, int i) {
  const st_entry *e = entry(f, i);
  return e ? e->ndim : -1;
}

int64_t mrl_st_dim(const mrl_st_file *f, int i, int d) {
  const st_entry *e = entry(f, i);
  return e && d >= 0 && d < e->ndim ? e->shape[d] : -1;
}

int64_t mrl_st_numel(const mrl_st_file *f, int i) {
  const st_entry *e = entry(f, i);
  return e ? (e->end - e->begin) / e->esize : -1;
}

int mrl_st_shape(const mrl_st_file *f, int i, int maxdim, int64_t maxlen,
                 int *ndim, int *shape, char *err, size_t errlen) {
  const st_entry *e = entry(f, i);
  if (!e || !ndim || !shape || maxdim < 1 || maxdim > MRL_ST_MAX_DIMS)
    return mrl_errbuf_(err, errlen, MRL_EINVAL, "st_shape: bad arguments");
  if (maxlen > INT_MAX) maxlen = INT_MAX;
  if (e->ndim > maxdim)
    return mrl_errbuf_(err, errlen, MRL_EFORMAT, "tensor '%s' has %d dimensions (at most %d supported)",
                e->name, e->ndim, maxdim);
  if (e->end == e->begin) return mrl_errbuf_(err, errlen, MRL_EFORMAT, "tensor '%s' is empty", e->name);
  for (int d = 0; d < e->ndim; d++)
    if (e->shape[d] < 1 || e->shape[d] > maxlen)
      return mrl_errbuf_(err, errlen, MRL_EFORMAT, "tensor '%s' has a bad dimension", e->name);
  for (int d = 0; d < e->ndim; d++) shape[d] = (int)e->shape[d];
  *ndim = e->ndim;
  if (e->ndim == 0) { /* a scalar becomes a 1-element vector */
    *ndim = 1;
    shape[0] = 1;
  }
  return MRL_OK;
}

int mrl_st_find(const mrl_st_file *f, const char *name) {
  if (!f || !name) return -1;
  for (int i = 0; i < f->nt; i++)
    if (!strcmp(f->t[i].name, name)) return i;
  return -1;
}

static float half_to_float(uint16_t h, int bf16) {
  uint32_t u;
  if (bf16) u = (uint32_t)h << 16;
  else {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 31, man = h & 1023;
    if (exp == 0) {
      float v = (float)man / 1024.0f / 16384.0f;  /* subnormal: man·2^-24 */
      return sign ? -v : v;
    }
    if (exp == 31) u = sign | 0x7F800000u | (man << 13);
    else u = sign | ((exp + 112) << 23) | (man << 13);
  }
  float f;
  memcpy(&f, &u, 4);
  return f;
}

int mrl_st_read(const mrl_st_file *f, int i, float *out, size_t n) {
  const st_entry *e = entry(f, i);
  if (!e || (!out && n)) return MRL_EINVAL;
  if ((int64_t)n != (e->end - e->begin) / e->esize) return MRL_EINVAL;
  const uint8_t *src = f->data + e->begin;
  for (size_t k = 0; k < n; k++) {
    const uint8_t *b = src + k * (size_t)e->esize;
    if (e->esize == 4) {
      uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
      memcpy(&out[k], &u, 4);
    } else if (e->esize == 8) {
      uint64_t u = 0;
      for (int q = 7; q >= 0; q--) u = u << 8 | b[q];
      double d;
      memcpy(&d, &u, 8);
      out[k] = (float)d;
    } else {
      out[k] = half_to_float((uint16_t)(b[0] | b[1] << 8), e->dtype[0] == 'B');
    }
  }
  return MRL_OK;
}

int mrl_st_meta_count(const mrl_st_file *f) { return f ? f->nmeta : 0; }

const char *mrl_st_meta_key(const mrl_st_file *f, int i) {
  return f && i >= 0 && i < f->nmeta ? f->meta[2 * i] : NULL;
}

const char *mrl_st_meta_get(const mrl_st_file *f, const char *key) {
  if (!f || !key) return NULL;
  for (int i = 0; i < f->nmeta; i++)
    if (!strcmp(f->meta[2 * i], key)) return f->meta[2 * i + 1];
  return NULL;
}
