/*
** atomic_file.h — the one place that writes a file so that a crash leaves
** the old file or the new one, never a torn one (internal to the runtime;
** mrl_write_file_atomic is its public face, safetensors.c its other user).
*/
#ifndef MRL_ATOMIC_FILE_H
#define MRL_ATOMIC_FILE_H

#include <stddef.h>

/* Writes the content into fd; 0, or -1 with errno set. */
typedef int (*mrl_emit_fn)(int fd, void *ud);

/* Whole-buffer write(2) that retries on EINTR and short writes. */
int mrl_write_all_(int fd, const void *p, size_t n);

/* emit fills a fresh temporary file next to path (mkstemp), which is
** fsynced, renamed over path, and the folder fsynced.  MRL_OK, or MRL_EIO
** (MRL_EINVAL for an empty path) with "<path>: …" in err. */
int mrl_write_atomic_(const char *path, mrl_emit_fn emit, void *ud, char *err,
                      size_t errlen);

#endif
