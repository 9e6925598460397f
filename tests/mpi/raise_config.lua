-- tests/mpi.t, test c: `moonrl train` on the fixture env, which raises on
-- rank 1 only.  The job must end (no hang) with the error printed.
local rank = require("moonrl").world().rank
return {
  algo = "ppo", env = "tests/mpi/raise_env.lua",
  env_opts = {num_envs = 2, threads = 1, config = {fail = rank == 1, after = 300}},
  steps = 100000, seed = 3, out = os.getenv("MPI_TEST_OUT") or "/tmp/moonrl_mpi_c",
  hyperparameters = {n_steps = 64, batch_size = 32, epochs = 2},
}
