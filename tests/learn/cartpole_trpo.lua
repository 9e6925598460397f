-- CartPole-v1, TRPO: mean return ≥ 475 (last 20 episodes) within 200k
-- steps on at least 4 of seeds 1–5 (sb3-contrib defaults, 8 × 128 steps).
return {
  name = "CartPole-v1", algo = "trpo", env = "CartPole-v1",
  env_opts = {num_envs = 8, threads = 0},
  budget = 200000, target = 475, need = 4, seeds = {1, 2, 3, 4, 5},
  hp = {n_steps = 128},
}
