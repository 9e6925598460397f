-- MinAtar-Breakout-v0 (10x10 grid, sticky actions), PPO with a Conv2d
-- encoder (examples/configs/breakout_ppo.lua's settings): mean return >= 10
-- over the last 100 episodes within 5M steps on all of seeds 1-5 (issue
-- 15).  Bench only (make bench-learn): steps and wall time to the target.
return {
  name = "MinAtar-Breakout-v0 conv", algo = "ppo", env = "MinAtar-Breakout-v0",
  env_opts = {num_envs = 16, threads = 2}, long = true,
  budget = 5000000, target = 10, need = 5, seeds = {1, 2, 3, 4, 5}, window = 100,
  hp = {conv = {{out = 16, kernel = 3, stride = 1, padding = 0}}, hidden = {128},
        activation = "relu", n_steps = 128, batch_size = 256, epochs = 4, lr = 1e-3,
        ent_coef = 0.01, stats_window = 100},
}
