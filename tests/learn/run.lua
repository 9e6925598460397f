-- tests/learn/run.lua — the learning checks of `make test` in TAP (run by
-- tests/learn.t inside the moonrl host).  Under the ASan build (BUILD
-- contains "asan") each check runs 2 seeds and needs 1, to keep the
-- sanitised suite's wall time modest; the TAP lines say so.
local here = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./")
local lib = dofile(here .. "lib.lua")
local asan = (os.getenv("BUILD") or ""):find("asan") ~= nil
local checks = {"cartpole_ppo", "cartpole_trpo"}
print("1.." .. #checks)
local failed = 0
for i, name in ipairs(checks) do
  local spec = lib.load(name)
  local seeds, need = spec.seeds, spec.need
  if asan then seeds, need = {1, 2}, 1 end
  local ok, res = pcall(lib.run, spec, seeds)
  if not ok then
    print(("not ok %d - %s %s: %s"):format(i, spec.name, spec.algo:upper(), tostring(res)))
    failed = failed + 1
  else
    local pass = res.passed >= need
    if not pass then failed = failed + 1 end
    print(("%s %d - %s %s: mean return >= %g within %d steps on %d/%d seeds (need %d)%s")
          :format(pass and "ok" or "not ok", i, spec.name, spec.algo:upper(), spec.target,
                  spec.budget, res.passed, #seeds, need, asan and " [ASan build: 2 seeds]" or ""))
    print("# " .. lib.describe(res))
  end
end
os.exit(failed == 0 and 0 or 1)
