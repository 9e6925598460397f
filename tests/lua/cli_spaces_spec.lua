-- tests/lua/cli_spaces_spec.lua — `moonrl train` and `moonrl play` on the
-- games of issue 15 (masked, multi-discrete, hybrid actions): the example
-- configs train, write their files, and the saved policy and checkpoint
-- play back (under the env's masks), in both VMs.

local H = dofile((debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "helper.lua")
local rl = require "moonrl"

local function tmpdir(name)
  return os.tmpname() .. "_" .. name
end

-- A sink for play's lines.
local function sink()
  local lines = {}
  return {write = function(self, ...)
    for i = 1, select("#", ...) do lines[#lines + 1] = tostring(select(i, ...)) end
    return self
  end, lines = lines}
end

local configs = {
  {file = "invalid_action_ppo", min_return = 19},
  {file = "skirmish_ppo", min_return = 12},
  {file = "minigolf_ppo", min_return = -2},
}

describe("moonrl train and play with masked and composite actions", function()
  for _, c in ipairs(configs) do
    it("trains examples/configs/" .. c.file .. ".lua and plays its files back", function()
      local train = require "moonrl.cli.train"
      local play = require "moonrl.cli.play"
      local cfg = dofile(H.root .. "examples/configs/" .. c.file .. ".lua")
      local out = tmpdir(c.file)
      cfg.out = out
      local agent, res = train.run(cfg, {quiet = true})
      assert.is_true(res.steps > 0)
      assert.is_true(agent:episode_stats().mean_return >= cfg.target,
                     c.file .. ": mean return " .. agent:episode_stats().mean_return)
      agent:close()
      for _, f in ipairs({"policy.safetensors", "checkpoint.safetensors"}) do
        local s = sink()
        local returns = play.play(out .. "/" .. f, {episodes = 3, out = s})
        local mean = (returns[1] + returns[2] + returns[3]) / 3
        assert.is_true(mean >= c.min_return, c.file .. "/" .. f .. ": played " .. mean)
      end
      -- the saved policy is the same policy: the same greedy actions
      local p = rl.load(out .. "/policy.safetensors")
      local q = rl.load(out .. "/checkpoint.safetensors")
      local env = rl.envs.make(cfg.env)
      local obs = env:reset(7)
      local a, b = p:act(obs, true), q:act(obs, true)
      if type(a) == "table" then assert.same(a, b) else assert.equal(a, b) end
      p:close()
      q:close()
      os.execute("rm -rf '" .. out .. "'")
    end)
  end
end)
