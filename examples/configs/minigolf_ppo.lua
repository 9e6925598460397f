-- MiniGolf-v0 with PPO: a hybrid action, a club (discrete 4) and a power in
-- [-1, 1] (Gaussian), one flat row {club, power}.  The mean of the last 20
-- returns reaches -1.4 (-1 is a hole in one every time) in about 15k-20k
-- steps on seeds 1-5.
--   moonrl train examples/configs/minigolf_ppo.lua
return {
  algo = "ppo",
  env = "MiniGolf-v0",
  env_opts = {num_envs = 8, threads = 0},
  steps = 200000,
  seed = 1,
  target = -1.4,
  out = "runs/minigolf_ppo",
  hyperparameters = {n_steps = 64, batch_size = 128, epochs = 4, lr = 2e-3},
}
