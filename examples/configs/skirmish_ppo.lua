-- Skirmish-v0 with PPO: a multi-discrete action {move 3, jump 2, shoot 4},
-- each component masked where it cannot act (into a wall, a reloading
-- gun).  The mean of the last 20 returns passes 14 (a greedy scripted
-- player's score) in about 20k steps on seeds 1-5.
--   moonrl train examples/configs/skirmish_ppo.lua
return {
  algo = "ppo",
  env = "Skirmish-v0",
  env_opts = {num_envs = 8, threads = 0},
  steps = 200000,
  seed = 1,
  target = 14,
  out = "runs/skirmish_ppo",
  hyperparameters = {n_steps = 64, batch_size = 128, epochs = 4, lr = 2e-3},
}
