-- Skirmish-v0 (multi-discrete {3, 2, 4}: move, jump, shoot, with masks per
-- component), PPO: mean return >= 14 (the env's stated target; a greedy
-- scripted player scores 14.2) within 200k steps on all of seeds 1–5.
return {
  name = "Skirmish-v0", algo = "ppo", env = "Skirmish-v0",
  env_opts = {num_envs = 8, threads = 0},
  budget = 200000, target = 14, need = 5, seeds = {1, 2, 3, 4, 5},
  hp = {n_steps = 64, batch_size = 128, epochs = 4, lr = 2e-3},
}
