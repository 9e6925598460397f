-- bench/lib/busy_env.lua — an env file whose step costs about 1-2 µs
-- (config.work iterations of a small float recurrence), for the worker
-- thread figures of bench/luajit_workers.lua.
local Env = {}
Env.__index = Env
Env.id = "busy"
Env.observation_space = {type = "box", shape = {4}, low = {-1, -1, -1, -1}, high = {1, 1, 1, 1}}
Env.action_space = {type = "discrete", n = 2}

function Env.new(config)
  return setmetatable({work = (config and config.work) or 200, x = 0.1, t = 0}, Env)
end

function Env:reset(seed)
  self.x = ((seed or 1) % 97) / 100 + 0.01
  self.t = 0
  return {self.x, 0, 0, 0}, {}
end

function Env:step(a)
  local x = self.x
  for _ = 1, self.work do x = 3.7 * x * (1 - x) end  -- logistic map, stays in (0, 1)
  self.x = x
  self.t = self.t + 1
  return {x, a, self.t / 1000, 0}, x, false, self.t >= 1000, {}
end
return Env
