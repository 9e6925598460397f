/*
** atomic_file.c — durable whole-file replacement: temporary file, fsync,
** rename, fsync of the folder.  Plain Lua can rename but not fsync, so the
** bindings expose it as core.write_file_atomic; checkpoints use it too.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "atomic_file.h"
#include "errmsg.h"
#include "moonrl.h"


int mrl_write_all_(int fd, const void *p, size_t n) {
  const unsigned char *c = p;
  while (n) {
    ssize_t w = write(fd, c, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      if (w == 0) errno = EIO;
      return -1;
    }
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

int mrl_write_atomic_(const char *path, mrl_emit_fn emit, void *ud, char *err,
                      size_t errlen) {
  if (!path || !*path || !emit)
    return mrl_errbuf_(err, errlen, MRL_EINVAL, "write_file_atomic: a non-empty path expected");
  size_t plen = strlen(path);
  char *tmp = malloc(plen + 16);
  if (!tmp) return mrl_errbuf_(err, errlen, MRL_ENOMEM, "%s: out of memory", path);
  memcpy(tmp, path, plen);
  memcpy(tmp + plen, ".tmp.XXXXXX", 12);
  int fd = mkstemp(tmp);
  if (fd < 0) {
    int e = errno;
    free(tmp);
    return mrl_errbuf_(err, errlen, MRL_EIO, "%s: cannot create a temporary file: %s", path,
                strerror(e));
  }
  int bad = emit(fd, ud) != 0, e = bad ? errno : 0;
  if (!bad && fsync(fd)) { bad = 1; e = errno; }
  if (close(fd) && !bad) { bad = 1; e = errno; }
  if (!bad && rename(tmp, path)) { bad = 1; e = errno; }
  if (bad) unlink(tmp);
  free(tmp);
  if (bad) return mrl_errbuf_(err, errlen, MRL_EIO, "%s: write failed: %s", path, strerror(e ? e : EIO));
  /* Make the rename itself durable. */
  char *dir = strdup(path);
  if (dir) {
    char *slash = strrchr(dir, '/');
    const char *d = slash ? (slash == dir ? "/" : (*slash = 0, dir)) : ".";
    int dfd = open(d, O_RDONLY);
    if (dfd >= 0) { fsync(dfd); close(dfd); }
    free(dir);
  }
  return MRL_OK;
}

typedef struct bytes { const void *p; size_t n; } bytes;

static int emit_bytes(int fd, void *ud) {
  const bytes *b = ud;
  return mrl_write_all_(fd, b->p, b->n);
}

int mrl_write_file_atomic(const char *path, const void *data, size_t len,
                          char *err, size_t errlen) {
  if (len && !data) return mrl_errbuf_(err, errlen, MRL_EINVAL, "write_file_atomic: data is NULL");
  bytes b = {data, len};
  return mrl_write_atomic_(path, emit_bytes, &b, err, errlen);
}
