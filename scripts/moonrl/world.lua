-- moonrl.world — which process of a distributed (MPI) run this is, and the
-- few collectives the trainers use.  `rl.world()` reports {rank, size}.
--
-- Under `mpirun -np K moonrl …` (a host built with MPI, see docs/MPI.md)
-- moonrl.mpi is active and K > 1: the trainers average every gradient,
-- Fisher-vector product and line-search statistic over the ranks, merge the
-- observation normaliser, broadcast parameters from rank 0, and only rank 0
-- logs and writes files.  Everywhere else (no MPI, one rank, LuaJIT) this
-- is rank 0 of 1 and every operation below is the identity, so the same
-- script runs unchanged.
--
--   W.rank, W.size, W.distributed (size > 1), W.reducer (moonrl.Reducer|nil)
--   W.rank_seed(seed)          this rank's seed for envs and action sampling
--   W.sum{…}, W.max{…}         numbers summed / maxed over the ranks (a new table)
--   W.mean_tensor(t)           t (a tensor) := its mean over the ranks
--   (batch standardisation over the ranks: core.standardize(t, W.reducer))
--   W.bcast_params(obj), W.bcast_optim(o), W.bcast_rng(obj), W.bcast_numbers{…}
--   W.root_says(flag)          rank 0's flag, on every rank
--   W.abort(msg)               print "[rank r] msg", end the whole job
--   W.finish()                 MPI_Finalize (a clean end of every rank)
--
-- Written in the common subset of Lua 5.4 and LuaJIT.

local W = {rank = 0, size = 1, distributed = false}

local mpi
do
  local ok, m = pcall(require, "moonrl.mpi")
  if ok and type(m) == "table" and m.active() and m.size() > 1 then
    mpi = m
    W.rank, W.size, W.distributed = m.rank(), m.size(), true
    W.reducer = m.reducer
  end
end
W.mpi = mpi

-- Env i of rank r is seeded seed + r·2^32 + i: clear of the env offsets
-- (+ i) and of the resume points (+ k·1000003) of every other rank.
local RANK_STRIDE = 4294967296
function W.rank_seed(seed)
  return (seed or 0) + W.rank * RANK_STRIDE
end

function W.info() return {rank = W.rank, size = W.size} end

function W.sum(t)
  if not mpi then return t end
  return mpi.allreduce(t, "sum")
end

function W.max(t)
  if not mpi then return t end
  return mpi.allreduce(t, "max")
end

function W.mean_tensor(t)
  if not mpi then return t end
  mpi.allreduce(t, "sum")
  local k = 1 / W.size
  for i = 1, t:numel() do t[i] = t[i] * k end
  return t
end

-- Two passes, as the single-process version: the global mean first, then
-- the squared deviations from it.
function W.bcast_params(obj)
  if not mpi then return end
  local p = obj:params()
  mpi.bcast(p, 0)
  obj:set_params(p)
end

function W.bcast_optim(o)
  if not mpi then return end
  local core = require "moonrl.core"
  local st = core.optim_state(o)
  local steps = mpi.bcast({st.steps}, 0)[1]
  if st.m then mpi.bcast(st.m, 0) end
  if st.v then mpi.bcast(st.v, 0) end
  core.set_optim_state(o, {steps = steps, m = st.m, v = st.v})
end

function W.bcast_rng(obj)
  if not mpi then return end
  local core = require "moonrl.core"
  core.set_rng_state(obj, mpi.bcast(core.rng_state(obj), 0))
end

function W.bcast_numbers(t)
  if not mpi then return t end
  return mpi.bcast(t, 0)
end

function W.root_says(flag)
  if not mpi then return flag end
  return mpi.bcast({flag and 1 or 0}, 0)[1] ~= 0
end

function W.abort(msg)
  if mpi then mpi.abort(tostring(msg)) end
  error(msg, 0)
end

function W.finish()
  if mpi and mpi.finalize then mpi.finalize() end
end

return W
