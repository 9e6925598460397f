-- bindings/luajit/run.lua — a small launcher for moonrl under LuaJIT (the
-- FFI binding), the counterpart of build/moonrl's subcommands:
--
--   luajit bindings/luajit/run.lua golden [--kinds k1,…] FILE.json …
--   luajit bindings/luajit/run.lua train|play SCRIPT.lua [args]
--   luajit bindings/luajit/run.lua SCRIPT.lua [args]
--   luajit bindings/luajit/run.lua -e CODE
--
-- It puts this folder (moonrl.core = the FFI binding) and the repository's
-- scripts/ first on package.path, from this file's location, so it works
-- from any directory.  Without it, set the path yourself:
--   LUA_PATH="bindings/luajit/?.lua;scripts/?.lua;scripts/?/init.lua;;"
-- The exit status is the subcommand's (0 when every golden case passed).

local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
local root = here .. "../../"
package.path = here .. "?.lua;" .. here .. "?/init.lua;" ..
               root .. "scripts/?.lua;" .. root .. "scripts/?/init.lua;" .. package.path

local args = {}
for i = 1, #arg do args[i] = arg[i] end

local function usage(out)
  out:write("usage: luajit run.lua golden [--kinds k1,k2,...] FILE.json ...\n",
            "       luajit run.lua [train|play] SCRIPT.lua [args]\n",
            "       luajit run.lua -e CODE\n")
end

-- Runs f under a traceback handler; returns the exit status.
local function protected(f, ...)
  local n = select("#", ...)
  local packed = {...}
  local ok, res = xpcall(function() return f(unpack(packed, 1, n)) end, debug.traceback)
  if not ok then
    io.stderr:write("luajit run.lua: ", tostring(res), "\n")
    return 1
  end
  if res == false then return 1 end
  if type(res) == "number" then return res end
  return 0
end

local function runscript(path, first)
  local chunk, err = loadfile(path)
  if not chunk then
    io.stderr:write("luajit run.lua: ", err, "\n")
    return 1
  end
  -- the script sees arg[0] = its path and arg[1..] its arguments, as with lua
  local sarg = {[0] = path}
  for i = first, #args do sarg[#sarg + 1] = args[i] end
  _G.arg = sarg
  return protected(chunk, unpack(sarg, 1, #sarg))
end

local cmd = args[1]
local status
if cmd == nil or cmd == "-h" or cmd == "--help" then
  usage(cmd and io.stdout or io.stderr)
  status = cmd and 0 or 2
elseif cmd == "golden" then
  local rest = {}
  for i = 2, #args do rest[#rest + 1] = args[i] end
  status = protected(function() return require("moonrl.golden").main(rest) end)
elseif cmd == "-e" then
  local chunk, err = loadstring(args[2] or "", "=(command line)")
  if not chunk then io.stderr:write(err, "\n") status = 1
  else status = protected(chunk) end
elseif (cmd == "train" or cmd == "play") and args[2] then
  status = runscript(args[2], 3)
else
  status = runscript(cmd, 2)
end
io.stdout:flush()
os.exit(status)
