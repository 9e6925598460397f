/*
** moonrl_mpi.h — what the `moonrl` host (built with MPI=1) calls of the MPI
** glue in bindings/mpi/mpi.c.  No <mpi.h> here: the host's own files
** compile with the plain compiler, only mpi.c needs mpicc.
*/
#ifndef MOONRL_MPI_H
#define MOONRL_MPI_H

#include "lua.h"

/* Starts MPI (MPI_Init_thread, funneled) when the process was started by
** a launcher (mpirun/mpiexec/srun: their environment variables) or when
** MOONRL_MPI=1; MOONRL_MPI=0 never starts it.  Otherwise the host runs as a
** plain single process.  Returns 0, or 1 if MPI failed to start. */
int host_mpi_init(int *argc, char ***argv);
/* Puts moonrl.mpi in package.preload. */
void host_mpi_preload(lua_State *L);
/* The end of the process: MPI_Finalize after a clean run; after a failure
** (status != 0) in a job of several ranks, MPI_Abort, so that no other rank
** is left waiting in a collective. */
void host_mpi_finish(int status);
int host_mpi_rank(void);
int host_mpi_size(void);

#endif
