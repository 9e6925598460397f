-- examples/main.lua — what `make run` does: PPO learns CartPole-v1 from the
-- Lua env (8 copies), with a live progress line, a CSV log of every update,
-- the trained policy saved as safetensors and the learning curve as SVG:
--   runs/cartpole_ppo/log.csv, policy.safetensors, checkpoint.safetensors,
--   curve.svg (copied to docs/cartpole_curve.svg for the README when
--   MOONRL_UPDATE_DOCS is set).
-- It stops once the mean return of the last 20 episodes reaches 475.
--
--   build/moonrl examples/main.lua [--seed N]
local rl = require "moonrl"
local train = require "moonrl.cli.train"

local here = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./")
local cfg = dofile(here .. "configs/cartpole_ppo.lua")
local seed
for i = 1, #arg do if arg[i] == "--seed" then seed = tonumber(arg[i + 1]) end end

print(("moonrl %s (binding %s)"):format(rl.version, rl.core.binding or "?"))
local agent, res = train.run(cfg, {seed = seed})

-- The README's picture is refreshed on request (MOONRL_UPDATE_DOCS=1), so
-- runs with other seeds and benchmarks leave the source tree alone.
if os.getenv("MOONRL_UPDATE_DOCS") then
  local src = assert(io.open(res.curve, "rb"))
  local svg = src:read("*a")
  src:close()
  local dst = assert(io.open(here .. "../docs/cartpole_curve.svg", "wb"))
  dst:write(svg)
  dst:close()
end

-- a greedy episode with the saved policy, to show it loads and balances
local policy = rl.load(res.out .. "/policy.safetensors")
local env = rl.envs.make("CartPole-v1")
local obs = env:reset(12345)
local ret, done = 0, false
while not done do
  local a = policy:act(obs, true)
  local r, term, trunc
  obs, r, term, trunc = env:step(a)
  ret = ret + r
  done = term or trunc
end
print(("reloaded policy, greedy episode (seed 12345): return %d"):format(ret))
agent:close()
if not res.reached then
  io.stderr:write("main: the target return 475 was not reached\n")
  os.exit(1)
end
