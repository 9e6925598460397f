-- fixture (tests/mpi.t, test c): a plain script whose rank 1 raises while
-- rank 0 waits in a barrier; the host must end the job, not hang.
local mpi = require "moonrl.mpi"
if mpi.rank() == 1 then error("script failed on purpose on rank 1") end
mpi.barrier()
print("rank 0 passed the barrier: the job did not end")
