#!/bin/sh
# Steps/s of PPO on CartPole-v1 with 1 and 2 MPI ranks on this machine (one
# env worker thread per rank), and the share of update time spent in
# communication.  `make bench-mpi` builds build-mpi/ and runs this.
#   sh bench/mpi_scaling.sh [BUILD_DIR] [updates]
cd "$(dirname "$0")/.." || exit 1
B=${1:-build-mpi}
U=${2:-10}
MPIRUN="mpirun --oversubscribe"
[ "$(id -u)" = 0 ] && MPIRUN="mpirun --allow-run-as-root --oversubscribe"
export OMPI_MCA_btl_vader_single_copy_mechanism=none
echo "== 1 rank (no mpirun)"
"$B/moonrl" bench/mpi/scaling.lua "$U" 8 1 || exit 1
echo "== 2 ranks (mpirun -np 2)"
$MPIRUN -np 2 "$B/moonrl" bench/mpi/scaling.lua "$U" 8 1 || exit 1
