/*
** main.c — the `moonrl` executable: Lua 5.4 with moonrl.core built in.
**
**   moonrl [options] [FILE.lua [args]]   run a script (arg set as lua.c does)
**   moonrl SUBCOMMAND [args]             golden, train, play, … (see below)
**   moonrl                               interactive REPL
**
** The Lua scripts are found relative to the executable: <bindir>/../scripts
** in a build tree, <prefix>/share/lua/5.4 once installed (already on Lua's
** default path).  Subcommands are Lua scripts too: `moonrl NAME args` runs
** the module moonrl.cli.NAME with `arg` set (or a listed module's main()),
** so adding one needs no C.
*/
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host.h"
#include "l_module.h"
#include "lauxlib.h"
#include "lualib.h"
#include "moonrl.h"
#ifdef MRL_HAVE_MPI
#include "moonrl_mpi.h" /* MPI=1 builds: bindings/mpi */
#endif

const char *host_progname = "moonrl";

/* Subcommands listed by --help; any moonrl.cli.NAME module also works. */
/* A subcommand with a module calls require(module).main({args}) and exits
** with its result; one without is looked up as moonrl.cli.NAME. */
static const struct {
  const char *name, *module, *help;
} subcommands[] = {
  {"golden", "moonrl.golden",
   "golden [--kinds k1,k2,...] FILE.json ...  check golden vectors (TAP)"},
  {"train", NULL, "train SCRIPT.lua [args]   run a training script"},
  {"play", NULL, "play SCRIPT.lua [args]    run a trained policy"},
  {NULL, NULL, NULL}};

static void usage(FILE *f) {
  fprintf(f,
          "usage: moonrl [options] [FILE.lua [args]]\n"
          "       moonrl SUBCOMMAND [args]\n"
          "options:\n"
          "  -e CODE     run CODE\n"
          "  -l MOD      require MOD into the global MOD\n"
          "  -i          enter the REPL after running the script\n"
          "  -v          print the version\n"
          "  -h, --help  this text\n"
          "  --          stop handling options\n"
          "subcommands:\n");
  for (int i = 0; subcommands[i].name; i++) fprintf(f, "  %s\n", subcommands[i].help);
  fprintf(f, "With no arguments, moonrl starts a Lua REPL with `rl = require \"moonrl\"`.\n");
}

/* The directory above the executable's, e.g. /work/main for build/moonrl. */
static int rootdir(char *out, size_t n) {
  char exe[PATH_MAX];
  ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (len <= 0) return 0;
  exe[len] = '\0';
  char *slash = strrchr(exe, '/');
  if (slash == NULL) return 0;
  *slash = '\0';
  if (snprintf(out, n, "%s/..", exe) >= (int)n) return 0;
  return 1;
}

/* package.path gets the scripts folder (build tree) and <prefix>/share/lua/5.4
** (installed under any prefix) first; moonrl.envs finds the bundled
** environments relative to its own file. */
static void setpaths(lua_State *L) {
  char root[PATH_MAX];
  lua_getglobal(L, "package");
  if (rootdir(root, sizeof root - 64)) {
    lua_getfield(L, -1, "path");
    lua_pushfstring(L, "%s/scripts/?.lua;%s/scripts/?/init.lua;"
                       "%s/share/lua/5.4/?.lua;%s/share/lua/5.4/?/init.lua;%s",
                    root, root, root, root, lua_tostring(L, -1));
    lua_setfield(L, -3, "path");
    lua_pop(L, 1);
  }
  lua_getfield(L, -1, "preload");
  lua_pushcfunction(L, luaopen_moonrl_core);
  lua_setfield(L, -2, "moonrl.core");
  lua_pop(L, 2);
#ifdef MRL_HAVE_MPI
  host_mpi_preload(L);
#endif
}

/* The global `arg`: arg[0] = script, arg[1..] its arguments, the
** interpreter and options at negative indices (lua.c's layout).  Pushes the
** script arguments and returns their count. */
static int createargs(lua_State *L, char **argv, int argc, int script) {
  int narg = argc - (script + 1);
  lua_createtable(L, narg, script + 1);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
  luaL_checkstack(L, narg + 3, "too many arguments to script");
  for (int i = script + 1; i < argc; i++) lua_pushstring(L, argv[i]);
  return narg;
}

/* Runs the chunk at the top of the stack (below its narg arguments) and
** turns its result into an exit status: false → 1, an integer → itself. */
static int runchunk(lua_State *L, int narg, int *exitcode) {
  int status = host_docall(L, narg, 1);
  if (status != LUA_OK) return host_report(L, status);
  if (exitcode == NULL) { /* plain scripts: results ignored, as lua.c does */
    lua_pop(L, 1);
    return LUA_OK;
  }
  if (lua_isboolean(L, -1) && !lua_toboolean(L, -1))
    *exitcode = 1;
  else if (lua_isinteger(L, -1))
    *exitcode = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  return LUA_OK;
}

static int runscript(lua_State *L, char **argv, int argc, int script, int *exitcode) {
  const char *fname = argv[script];
  if (strcmp(fname, "-") == 0) fname = NULL; /* stdin */
  int status = luaL_loadfile(L, fname);
  if (status == LUA_ERRFILE && fname && !strchr(fname, '/') && !strchr(fname, '.')) {
    lua_pushfstring(L, "%s (and there is no subcommand '%s'; see moonrl --help)",
                    lua_tostring(L, -1), fname);
    lua_remove(L, -2);
  }
  if (status != LUA_OK) return host_report(L, status);
  int narg = createargs(L, argv, argc, script);
  (void)exitcode;
  return runchunk(L, narg, NULL);
}

/* `moonrl NAME args`: finds moonrl.cli.NAME on package.path; 0 if absent. */
static int runsubcommand(lua_State *L, char **argv, int argc, int at, int *exitcode,
                         int *status) {
  const char *name = argv[at];
  for (int i = 0; subcommands[i].name; i++) {
    if (strcmp(subcommands[i].name, name) != 0 || subcommands[i].module == NULL) continue;
    static const char runner[] = "local mod = ...\n"
                                 "return require(mod).main({select(2, ...)})";
    *status = luaL_loadbuffer(L, runner, sizeof runner - 1, "=moonrl");
    if (*status != LUA_OK) {
      host_report(L, *status);
      return 1;
    }
    lua_pushstring(L, subcommands[i].module);
    int narg = createargs(L, argv, argc, at);
    *status = runchunk(L, narg + 1, exitcode);
    return 1;
  }
  /* a file of that name wins over moonrl.cli.NAME */
  if (strchr(name, '/') || strchr(name, '.') || access(name, F_OK) == 0) return 0;
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "searchpath");
  lua_pushfstring(L, "moonrl.cli.%s", name);
  lua_getfield(L, -3, "path");
  lua_call(L, 2, 1);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 2);
    return 0;
  }
  const char *path = lua_tostring(L, -1);
  *status = luaL_loadfile(L, path);
  lua_remove(L, -2); /* path */
  lua_remove(L, -2); /* package */
  if (*status != LUA_OK) {
    host_report(L, *status);
    return 1;
  }
  int narg = createargs(L, argv, argc, at);
  *status = runchunk(L, narg, exitcode);
  return 1;
}

static int dostring(lua_State *L, const char *code, const char *name) {
  int status = luaL_loadbuffer(L, code, strlen(code), name);
  if (status == LUA_OK) status = host_docall(L, 0, 0);
  return host_report(L, status);
}

static int dorequire(lua_State *L, const char *mod) {
  lua_getglobal(L, "require");
  lua_pushstring(L, mod);
  int status = host_docall(L, 1, 1);
  if (status == LUA_OK) lua_setglobal(L, mod);
  return host_report(L, status);
}

/* Everything runs inside this protected function so that a memory error
** while setting up is reported, not fatal. */
static int pmain(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = (char **)lua_touserdata(L, 2);
  int *result = (int *)lua_touserdata(L, 3);
  int interactive = 0, ran = 0, exitcode = 0, i;
  luaL_checkversion(L);
  luaL_openlibs(L);
  setpaths(L);
  lua_gc(L, LUA_GCRESTART);
  lua_gc(L, LUA_GCGEN, 0, 0);
  for (i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] != '-' || strcmp(a, "-") == 0) break;
    if (strcmp(a, "--") == 0) {
      i++;
      break;
    } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage(stdout);
      *result = 0;
      return 0;
    } else if (strcmp(a, "-v") == 0 || strcmp(a, "--version") == 0) {
      lua_getfield(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
      lua_getfield(L, -1, "moonrl.core");
      lua_call(L, 0, 1);
      lua_getfield(L, -1, "version");
      printf("moonrl %s (ABI %d, %s)\n", lua_tostring(L, -1), mrl_abi_version(), LUA_RELEASE);
      lua_pop(L, 3);
      ran = 1;
    } else if (strcmp(a, "-i") == 0) {
      interactive = 1;
    } else if (strcmp(a, "-e") == 0 || strcmp(a, "-l") == 0) {
      if (i + 1 >= argc) {
        fprintf(stderr, "moonrl: '%s' needs an argument\n", a);
        usage(stderr);
        *result = 1;
        return 0;
      }
      if ((a[1] == 'e' ? dostring(L, argv[i + 1], "=(command line)")
                       : dorequire(L, argv[i + 1])) != LUA_OK) {
        *result = 1;
        return 0;
      }
      i++;
      ran = 1;
    } else {
      fprintf(stderr, "moonrl: unrecognized option '%s'\n", a);
      usage(stderr);
      *result = 1;
      return 0;
    }
  }
  if (i < argc) {
    int status = LUA_OK;
    if (!runsubcommand(L, argv, argc, i, &exitcode, &status))
      status = runscript(L, argv, argc, i, &exitcode);
    if (status != LUA_OK) {
      *result = 1;
      return 0;
    }
    ran = 1;
  }
  if (interactive || !ran) {
    dostring(L, "rl = require 'moonrl'", "=(repl)");
    if (!interactive && !isatty(0)) {
      /* piped input: run it as a script, like lua.c (`-i` reads it as
      ** REPL lines instead, without prompts) */
      char *dash[] = {argv[0], "-"};
      if (runscript(L, dash, 2, 1, &exitcode) != LUA_OK) {
        *result = 1;
        return 0;
      }
    } else {
      host_repl(L);
    }
  }
  *result = exitcode;
  return 0;
}

int main(int argc, char **argv) {
  int result = 1;
#ifdef MRL_HAVE_MPI
  /* Under mpirun every rank is this process; messages name their rank, and
  ** a failing rank takes the job down (host_mpi_finish) instead of leaving
  ** the others waiting in a collective. */
  static char progname[48];
  if (host_mpi_init(&argc, &argv)) {
    fprintf(stderr, "moonrl: MPI failed to start\n");
    return 1;
  }
  if (host_mpi_size() > 1) {
    snprintf(progname, sizeof progname, "moonrl[rank %d]", host_mpi_rank());
    host_progname = progname;
  }
#endif
  lua_State *L = luaL_newstate();
  if (L == NULL) {
    fprintf(stderr, "moonrl: cannot create a Lua state: not enough memory\n");
    return 1;
  }
  lua_gc(L, LUA_GCSTOP);
  lua_pushcfunction(L, pmain);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  lua_pushlightuserdata(L, &result);
  int status = lua_pcall(L, 3, 0, 0);
  if (status != LUA_OK) {
    host_report(L, status);
    result = 1;
  }
  lua_close(L);
#ifdef MRL_HAVE_MPI
  host_mpi_finish(result);
#endif
  return result;
}
