-- GridWorld: a small deterministic grid (5x5 by default) for tests and
-- tutorials.  The agent starts in one corner and walks to the goal; moves
-- into a wall or off the grid leave it in place.  Runs in moonrl's env
-- sandbox (`rng` global).
--
-- config (all optional):
--   rows, cols      grid size (5, 5)
--   start, goal     {row, col}, 0-based ({0, 0} and {rows-1, cols-1})
--   walls           list of {row, col} cells that cannot be entered
--   slip            probability that the move is replaced by a uniformly
--                   random one (0: deterministic)
--   goal_reward     reward on reaching the goal (1)
--   step_reward     reward on every other step (0)
--   obs             "onehot" (rows*cols values, default) or "coords"
--                   ({row/(rows-1), col/(cols-1)}, in [0, 1])
--   seed            generator seed used when reset() is first given none
--
-- Actions: 0 up, 1 right, 2 down, 3 left.

local Env = {}
Env.__index = Env

Env.id = "GridWorld"
Env.max_episode_steps = 100

local MOVES = {[0] = {-1, 0}, [1] = {0, 1}, [2] = {1, 0}, [3] = {0, -1}}

local function onehot_space(n)
  local low, high = {}, {}
  for i = 1, n do low[i], high[i] = 0, 1 end
  return {type = "box", shape = {n}, low = low, high = high}
end

-- The spaces of the default 5x5 one-hot grid; an instance with another
-- configuration carries its own.
Env.observation_space = onehot_space(25)
Env.action_space = {type = "discrete", n = 4}

local function cell(v, name, rows, cols)
  if type(v) ~= "table" or type(v[1]) ~= "number" or type(v[2]) ~= "number"
     or v[1] < 0 or v[1] >= rows or v[2] < 0 or v[2] >= cols
     or v[1] ~= math.floor(v[1]) or v[2] ~= math.floor(v[2]) then
    error("GridWorld: config." .. name .. " must be {row, col} inside the " .. rows .. "x" .. cols .. " grid", 3)
  end
  return {v[1], v[2]}
end

function Env.new(config)
  config = config or {}
  local rows, cols = config.rows or 5, config.cols or 5
  for name, v in pairs({rows = rows, cols = cols}) do
    if type(v) ~= "number" or v < 1 or v ~= math.floor(v) or v > 1000 then
      error("GridWorld: config." .. name .. " must be an integer in 1..1000", 2)
    end
  end
  local self = setmetatable({config = config, rows = rows, cols = cols}, Env)
  self.start = cell(config.start or {0, 0}, "start", rows, cols)
  self.goal = cell(config.goal or {rows - 1, cols - 1}, "goal", rows, cols)
  self.walls = {}
  for i, w in ipairs(config.walls or {}) do
    local c = cell(w, "walls[" .. i .. "]", rows, cols)
    self.walls[c[1] * cols + c[2]] = true
  end
  local slip = config.slip or 0
  if type(slip) ~= "number" or slip < 0 or slip > 1 then
    error("GridWorld: config.slip must be a probability in [0, 1]", 2)
  end
  self.slip = slip
  self.goal_reward = config.goal_reward or 1.0
  self.step_reward = config.step_reward or 0.0
  self.obs_kind = config.obs or "onehot"
  if self.obs_kind == "onehot" then
    self.observation_space = onehot_space(rows * cols)
  elseif self.obs_kind == "coords" then
    self.observation_space = {type = "box", shape = {2}, low = {0, 0}, high = {1, 1}}
  else
    error("GridWorld: config.obs must be \"onehot\" or \"coords\"", 2)
  end
  return self
end

function Env:_obs()
  local r, c = self.pos[1], self.pos[2]
  if self.obs_kind == "coords" then
    return {self.rows > 1 and r / (self.rows - 1) or 0, self.cols > 1 and c / (self.cols - 1) or 0}
  end
  local o = {}
  for i = 1, self.rows * self.cols do o[i] = 0 end
  o[r * self.cols + c + 1] = 1
  return o
end

function Env:reset(seed)
  if seed ~= nil or not self.rng then self.rng = rng.new(seed or self.config.seed or 0) end
  self.pos = {self.start[1], self.start[2]}
  return self:_obs(), {}
end

-- state: {row, col}, 0-based
function Env:set_state(s)
  self.pos = cell(s, "state", self.rows, self.cols)
  return self:_obs()
end

function Env:step(action)
  local move = MOVES[action]
  if move == nil then
    error("GridWorld: invalid action " .. tostring(action) .. " (expected 0, 1, 2 or 3)", 2)
  end
  if not self.pos then error("GridWorld: call reset() before step()", 2) end
  local slipped = false
  if self.slip > 0 and self.rng:random() < self.slip then
    move = MOVES[self.rng:integer(4)]
    slipped = true
  end
  local r, c = self.pos[1] + move[1], self.pos[2] + move[2]
  if r >= 0 and r < self.rows and c >= 0 and c < self.cols and not self.walls[r * self.cols + c] then
    self.pos = {r, c}
  end
  local terminated = self.pos[1] == self.goal[1] and self.pos[2] == self.goal[2]
  local reward = terminated and self.goal_reward or self.step_reward
  return self:_obs(), reward, terminated, false, {slipped = slipped}
end

return Env
