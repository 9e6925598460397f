-- bench/mpi/scaling.lua — PPO on CartPole-v1 for a fixed number of
-- updates, run by bench/mpi_scaling.sh once on 1 rank and once under
-- `mpirun -np 2`: env steps per second over all ranks, the share of wall
-- time spent in updates, and the share of update time spent in MPI
-- reductions (the hook's MPI_Allreduce calls: transfer plus waiting for the
-- other rank), plus the bare cost of one such reduction once the ranks are
-- in step.  Figures, never pass/fail.  (Not in bench/*.lua: `make bench`
-- runs those in one process.)
--
--   moonrl bench/mpi/scaling.lua [updates] [num_envs] [threads]
local rl = require "moonrl"
local core = rl.core
local W = require "moonrl.world"
local ok, mpi = pcall(require, "moonrl.mpi")
if not ok then mpi = nil end

local updates = tonumber(arg and arg[1]) or 10
local num_envs = tonumber(arg and arg[2]) or 8
local threads = tonumber(arg and arg[3]) or 1

local env = rl.make("CartPole-v1", {num_envs = num_envs, threads = threads, seed = 1})
local agent = rl.ppo{env = env, seed = 1, n_steps = 256, batch_size = 64, epochs = 10,
                     progress = false}
agent:collect(); agent:update()      -- warm up (allocations, first resets)
if W.distributed then mpi.barrier(); mpi.reset_comm_stats() end

local t0 = core.now()
local steps0 = agent.steps_done
local upd = 0
for _ = 1, updates do
  agent:collect()
  upd = upd + agent:update().update_time
end
local wall = core.now() - t0
local steps = agent.steps_done - steps0
local comm, calls = 0, 0
if W.distributed then
  local cs = mpi.comm_stats()
  comm, calls = cs.seconds, cs.calls
end

-- the bare reduction: a policy+value sized vector, ranks already in step
local bare = 0
if W.distributed then
  local n = agent.policy:nparams() + agent.value:nparams()
  local t = core.zeros(n)
  mpi.barrier()
  local reps = 200
  local tb = mpi.wtime()
  for _ = 1, reps do mpi.allreduce(t) end
  bare = (mpi.wtime() - tb) / reps
end

-- the slowest rank's wall time sets the pace; shares are rank means
local m = W.max({wall})
local s = W.sum({upd / wall, upd > 0 and comm / upd or 0, calls})
local K = W.size
if W.rank == 0 then
  print(("ranks %d  envs/rank %d  worker threads/rank %d  updates %d  params %d+%d")
        :format(K, num_envs, threads, updates, agent.policy:nparams(), agent.value:nparams()))
  print(("  env steps %d in %.2f s: %.0f steps/s (all ranks)"):format(steps, m[1], steps / m[1]))
  print(("  update share of wall time %.1f%%"):format(100 * s[1] / K))
  if K > 1 then
    print(("  reductions per update %.0f, share of update time in them %.1f%% (transfer + waiting)")
          :format(s[3] / K / updates, 100 * s[2] / K))
    print(("  one bare %d-float allreduce: %.1f µs → %.1f%% of update time at that rate")
          :format(agent.policy:nparams() + agent.value:nparams(), 1e6 * bare,
                  100 * bare * (s[3] / K) / (upd)))
  end
end
agent:close()
env:close()
W.finish()
