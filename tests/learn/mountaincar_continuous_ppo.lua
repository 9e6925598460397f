-- MountainCarContinuous-v0, PPO with potential-based shaping
-- (examples/mountaincar_shaped.lua, an inline env): the greedy policy's
-- return on the plain env (its own reward, 5 episodes, checked every 5
-- updates) ≥ 90 within 100k steps on at least 4 of seeds 1–5.
local here = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./")
return {
  name = "MountainCarContinuous-v0", algo = "ppo", long = true,
  env = dofile(here .. "../../examples/mountaincar_shaped.lua"),
  env_opts = {num_envs = 8},
  budget = 100000, target = 90, need = 4, seeds = {1, 2, 3, 4, 5},
  hp = {n_steps = 128, batch_size = 256, epochs = 10, lr = 1e-3},
  evaluate = {env = "MountainCarContinuous-v0", episodes = 5, every = 5},
}
