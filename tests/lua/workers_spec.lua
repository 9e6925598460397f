-- tests/lua/workers_spec.lua — env worker states under both VMs: a rollout
-- on LuaJIT worker states is bit for bit the rollout on Lua 5.4 workers (the
-- same script, tests/lua/fixtures/rollout_bits.lua, run by the other VM),
-- whatever the thread count; env files run on worker threads under both
-- bindings, and their errors name the user's file, the env and the copy.
-- (The sandbox, budget and memory cap cases of sandbox_spec.lua also run
-- on the LuaJIT worker states.)

local H = dofile((debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "helper.lua")
local core = require "moonrl.core"
local raises = H.raises

local FIX = H.root .. "tests/lua/fixtures/"
local vec = type(core.vecenv) == "function" and require("moonrl.vec") or nil
local luajit = core.binding == "luajit"

local function sh_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- The command running a script under the other VM, or nil.
local function other_vm()
  local build = os.getenv("BUILD") or "build"
  if luajit then
    local host = H.build .. "/moonrl"
    local f = io.open(host, "r")
    if not f then return nil end
    f:close()
    return "BUILD=" .. sh_quote(build) .. " " .. sh_quote(host)
  end
  local ok = os.execute("command -v luajit >/dev/null 2>&1")
  local lib = io.open(H.build .. "/libmoonrl_luajit.so", "r")
  if not (ok == true or ok == 0) or not lib then return nil end
  lib:close()
  -- an ASan build of libmoonrl.so needs the ASan runtime loaded first (as
  -- tests/luajit.t does): luajit itself is not instrumented
  local pre = ""
  local ldd = io.popen("ldd " .. sh_quote(H.build .. "/libmoonrl.so") .. " 2>/dev/null")
  local libs = ldd and ldd:read("*a") or ""
  if ldd then ldd:close() end
  if libs:find("libasan", 1, true) then
    local q = io.popen("${CC:-cc} -print-file-name=libasan.so")
    local asan = q:read("*l")
    q:close()
    pre = "LD_PRELOAD=" .. sh_quote(asan) .. " ASAN_OPTIONS=detect_leaks=0 "
  end
  return pre .. "BUILD=" .. sh_quote(build) .. " luajit " .. sh_quote(H.root .. "bindings/luajit/run.lua")
end

describe("env worker states", function()
  if not vec then
    pending("no vecenv in this binding")
    return
  end

  it("run an env file on worker threads under either binding", function()
    local v = vec.make("CartPole-v1", {num_envs = 4, threads = 2, seed = 1})
    assert.equal(2, v.threads)
    v:reset()
    v:step({0, 1, 0, 1})
    v:close()
  end)

  it("give the same bits under LuaJIT and Lua 5.4, with 0 or 2 threads", function()
    local mine = dofile(FIX .. "rollout_bits.lua")
    assert.is_true(#mine > 100000)
    local cmd = other_vm()
    if not cmd then
      pending("the other VM is not available")
      return
    end
    local p = assert(io.popen(cmd .. " " .. sh_quote(FIX .. "rollout_bits.lua") .. " print 2>&1"))
    local theirs = p:read("*a"):gsub("\n$", "")
    p:close()
    assert.equal(#mine, #theirs, theirs:sub(1, 300))
    assert.is_true(mine == theirs, "the two VMs' rollouts differ")
  end)

  it("name the user's file, the env and the copy in an env error (threads = 2)", function()
    local v = vec.make(FIX .. "vec_counter.lua", {num_envs = 4, threads = 2,
                                                 config = {fail = "error", fail_seed = 3, fail_step = 2}})
    v:reset(0)
    v:step({0, 0, 0, 0})
    raises(function() v:step({0, 0, 0, 0}) end, "env 'vec_counter' copy 3: ",
           "vec_counter.lua:", "deliberate failure")
    -- a NaN is the runtime's check, with the same naming
    local w = vec.make(FIX .. "vec_counter.lua", {num_envs = 4, threads = 2,
                                                 config = {fail = "nan", fail_seed = 2, fail_step = 1}})
    w:reset(0)
    raises(function() w:step({0, 0, 0, 0}) end, "env 'vec_counter' copy 2: ",
           "step returned non-finite obs[1] = NaN")
    v:close()
    w:close()
  end)

  it("report the memory of the worker states", function()
    local v = vec.make("CartPole-v1", {num_envs = 2, threads = 2, memory = 8 * 1024 * 1024})
    local used, cap = v.handle:memory()
    assert.equal(8 * 1024 * 1024, cap)
    assert.is_true(used > 10000 and used < cap)
    v:close()
  end)

  it("keep the string metatable guarded and os/io out of reach in a worker", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. sh_quote(dir)))
    local path = dir .. "/probe_env.lua"
    local f = assert(io.open(path, "w"))
    f:write([[
local Env = {}
Env.__index = Env
Env.id = "probe_env"
Env.observation_space = {type = "box", shape = {4}, low = {0, 0, 0, 0}, high = {1, 1, 1, 1}}
Env.action_space = {type = "discrete", n = 2}
function Env.new() return setmetatable({}, Env) end
local function refused(f) return not pcall(f) and 1 or 0 end
function Env:reset()
  return {
    refused(function() return ("x").rep("x", 2 ^ 40) end),
    refused(function() return ("").dump(Env.new) end),
    (os == nil or os.execute == nil) and 1 or 0,
    (io == nil or io.open == nil) and 1 or 0,
  }, {}
end
function Env:step() return {0, 0, 0, 0}, 0, false, false, {} end
return Env
]])
    f:close()
    local v = vec.make(path, {num_envs = 2, threads = 2})
    local obs = v:reset()
    for i = 1, 2 do
      for j = 1, 4 do assert.equal(1, obs[i][j], ("probe %d of copy %d"):format(j, i)) end
    end
    v:close()
    os.remove(path)
    os.remove(dir)
  end)
end)
