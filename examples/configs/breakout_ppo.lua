-- MinAtar-Breakout-v0 (a 10x10 grid, channels paddle, ball, trail, brick;
-- sticky actions 0.1) with PPO through a convolutional encoder: Conv2d 16
-- filters 3x3 over the {4, 10, 10} grid, then 128 ReLU units, for the
-- policy; the critic is a 128-unit MLP on the flat grid.  The issue's
-- target is a mean return of 10 over the last 100 episodes within 5M steps.
--   moonrl train examples/configs/breakout_ppo.lua
return {
  algo = "ppo",
  env = "MinAtar-Breakout-v0",
  env_opts = {num_envs = 16, threads = 2},
  steps = 5000000,
  seed = 1,
  target = 10,
  out = "runs/breakout_ppo",
  conv = {{out = 16, kernel = 3, stride = 1, padding = 0}},
  hidden = {128},
  activation = "relu",
  hyperparameters = {
    n_steps = 128, batch_size = 256, epochs = 4, lr = 1e-3,
    gamma = 0.99, gae_lambda = 0.95, clip = 0.2, ent_coef = 0.01,
    stats_window = 100,
  },
}
