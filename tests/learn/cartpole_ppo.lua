-- CartPole-v1, PPO: mean return ≥ 475 (last 20 episodes) within 100k steps
-- on at least 4 of seeds 1–5 (examples/configs/cartpole_ppo.lua's settings).
return {
  name = "CartPole-v1", algo = "ppo", env = "CartPole-v1",
  env_opts = {num_envs = 8, threads = 0},
  budget = 100000, target = 475, need = 4, seeds = {1, 2, 3, 4, 5},
  hp = {n_steps = 64, batch_size = 256, epochs = 4, lr = 2e-3},
}
