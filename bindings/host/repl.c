/*
** repl.c — the interactive loop of `moonrl`, after lua.c: each line is first
** tried as `return <line>` so expressions print; a chunk whose syntax error
** ends at <eof> is incomplete and continues on the next line; everything runs
** under lua_pcall with a traceback; Ctrl-C stops the running chunk through a
** hook instead of killing the process.
**
** What lua.c does not do and this does: results go through the Lua pretty
** printer (scripts/moonrl/repl.lua, `show`), Tab completes names by asking
** that module (`complete`), Ctrl-C at the prompt drops the line instead of
** killing the process, and the history (multi-line chunks included) is kept
** in ~/.moonrl_history or $MOONRL_HISTORY, written atomically at exit.
*/
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host.h"
#include "lauxlib.h"
#include "lualib.h"

#ifdef MRL_HAVE_READLINE
#include <readline/history.h>
#include <readline/readline.h>
#endif

#define PROMPT "moonrl> "
#define PROMPT2 "     >> "
#define HISTORY_MAX 1000
/* Ctrl-C presses during one chunk before the process gives up waiting for
** a long C call and dies of the signal (lua.c dies at the second). */
#define INTERRUPTS_TO_KILL 3

/* A signal handler can reach nothing but statics, so these are unavoidable
** (lua.c keeps the same one); they only ever describe the current call. */
static lua_State *volatile running_L = NULL;
static volatile sig_atomic_t interrupts = 0;
static volatile sig_atomic_t prompt_interrupted = 0;

/* ------------------------------------------------------------ Ctrl-C */

static void stop_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  luaL_error(L, "interrupted!");
}

/* While a chunk runs: make the interpreter stop at its next instruction.
** lua_sethook is the one Lua call that is safe here (see lua.c). */
static void on_sigint_running(int sig) {
  int mask = LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT;
  if (++interrupts >= INTERRUPTS_TO_KILL) { /* stuck in C: let the user out */
    signal(sig, SIG_DFL);
    raise(sig);
    return;
  }
  if (running_L) lua_sethook(running_L, stop_hook, mask, 1);
}

/* At the prompt: only note it; the reader drops the line. */
static void on_sigint_prompt(int sig) {
  (void)sig;
  prompt_interrupted = 1;
}

/* restart: whether interrupted system calls resume (they should while a
** chunk runs, so io.read is not broken by a Ctrl-C that the hook handles;
** they must not at the prompt, so a blocking read returns). */
static void setsigint(void (*fn)(int), int restart, struct sigaction *old) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = fn;
  sa.sa_flags = restart ? SA_RESTART : 0;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, old);
}

static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  /* Ctrl-C: where it stopped is enough; the stack is the user's own doing */
  size_t len = strlen(msg), le = sizeof "interrupted!" - 1;
  if (interrupts > 0 && len >= le && strcmp(msg + len - le, "interrupted!") == 0) return 1;
  luaL_traceback(L, L, msg, 1);
  return 1;
}

int host_docall(lua_State *L, int narg, int nres) {
  int base = lua_gettop(L) - narg;
  struct sigaction old;
  lua_State *outer = running_L; /* host_docall may nest (a pretty printer) */
  lua_pushcfunction(L, msghandler);
  lua_insert(L, base);
  running_L = L;
  if (outer == NULL) interrupts = 0;
  setsigint(on_sigint_running, 1, &old);
  int status = lua_pcall(L, narg, nres, base);
  sigaction(SIGINT, &old, NULL);
  running_L = outer;
  /* a Ctrl-C that came after the chunk's last instruction must not stop
  ** the next one */
  if (outer == NULL && lua_gethook(L) == stop_hook) lua_sethook(L, NULL, 0, 0);
  lua_remove(L, base);
  return status;
}

int host_report(lua_State *L, int status) {
  if (status != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "%s: %s\n", host_progname, msg ? msg : "(error object is not a string)");
    fflush(stderr);
    lua_pop(L, 1);
  }
  return status;
}

/* --------------------------------------------------- the Lua helpers */

/* The registry reference of the moonrl.repl module (LUA_NOREF if it did
** not load: the REPL then prints like lua.c and completes nothing). */
static int helpers_ref = LUA_NOREF;

/* Pushes helper `name` (a function) and returns 1, or returns 0. */
static int pushhelper(lua_State *L, const char *name) {
  if (helpers_ref == LUA_NOREF) return 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, helpers_ref);
  lua_getfield(L, -1, name);
  lua_remove(L, -2);
  if (lua_isfunction(L, -1)) return 1;
  lua_pop(L, 1);
  return 0;
}

static int loadhelpers(lua_State *L) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "moonrl.repl");
  if (host_report(L, host_docall(L, 1, 1)) != LUA_OK) return 0;
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    return 0;
  }
  helpers_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  if (pushhelper(L, "install")) host_report(L, host_docall(L, 0, 0)); /* help() */
  return 1;
}

/* ------------------------------------------------------------ history */

#ifdef MRL_HAVE_READLINE
/* $MOONRL_HISTORY (empty: no history) or ~/.moonrl_history; NULL when there
** is none.  The caller frees it. */
static char *historypath(void) {
  const char *env = getenv("MOONRL_HISTORY");
  const char *home = getenv("HOME");
  char *path;
  if (env != NULL) {
    if (env[0] == '\0') return NULL;
    path = malloc(strlen(env) + 1);
    if (path) strcpy(path, env);
    return path;
  }
  if (home == NULL || home[0] == '\0') return NULL;
  path = malloc(strlen(home) + sizeof "/.moonrl_history");
  if (path) sprintf(path, "%s/.moonrl_history", home);
  return path;
}

static void openhistory(const char *path) {
  using_history();
  stifle_history(HISTORY_MAX);
  /* A multi-line chunk stays one entry: entries are separated by "#<time>"
  ** lines in the file (bash's lithist), so its lines come back together. */
  history_comment_char = '#';
  history_write_timestamps = 1;
  history_multiline_entries = 1;
  if (path) read_history(path); /* a missing or unreadable file: start empty */
}

/* Through a temporary file and a rename, so two sessions ending together
** never leave a torn file; failure is reported, never fatal. */
static void closehistory(const char *path) {
  if (path != NULL && history_length > 0) {
    size_t n = strlen(path) + 32;
    char *tmp = malloc(n);
    int err = ENOMEM;
    if (tmp) {
      snprintf(tmp, n, "%s.%ld.tmp", path, (long)getpid());
      err = write_history(tmp);
      if (err == 0 && rename(tmp, path) != 0) err = errno;
      if (err != 0) remove(tmp);
      free(tmp);
    }
    if (err != 0)
      fprintf(stderr, "%s: history not saved to %s: %s\n", host_progname, path, strerror(err));
  }
  rl_clear_history(); /* entries and their undo lists: nothing left to leak */
}

static void addhistory(const char *line) {
  if (line[0] == '\0') return;
  HIST_ENTRY *last = history_length > 0 ? history_get(history_base + history_length - 1) : NULL;
  if (last && strcmp(last->line, line) == 0) return; /* no immediate repeats */
  add_history(line);
}
#else
static void addhistory(const char *line) { (void)line; }
#endif

/* ---------------------------------------------------------- completion */

#ifdef MRL_HAVE_READLINE
/* readline's completion callbacks take no user data. */
static lua_State *complete_L = NULL;
static int candidates_ref = LUA_NOREF;

/* Hands readline the candidates one by one (it frees them). */
static char *nextcandidate(const char *text, int state) {
  static lua_Integer i;
  lua_State *L = complete_L;
  char *out = NULL;
  (void)text;
  if (state == 0) i = 0;
  if (L == NULL || candidates_ref == LUA_NOREF) return NULL;
  lua_rawgeti(L, LUA_REGISTRYINDEX, candidates_ref);
  lua_rawgeti(L, -1, ++i);
  size_t len;
  const char *s = lua_tolstring(L, -1, &len);
  if (s != NULL && (out = malloc(len + 1)) != NULL) memcpy(out, s, len + 1);
  lua_pop(L, 2);
  return out;
}

static int onlyspace(const char *s, int n) {
  for (int i = 0; i < n; i++)
    if (s[i] != ' ' && s[i] != '\t') return 0;
  return 1;
}

/* text is the word before the cursor (`.` and `:` do not break words, so
** it is a whole `rl.wrap.sh`); moonrl.repl's complete(text) returns the
** full words that may replace it. */
static char **attempt(const char *text, int start, int end) {
  lua_State *L = complete_L;
  (void)end;
  rl_attempted_completion_over = 1; /* never fall back to file names */
  rl_completion_append_character = '\0';
  if (text[0] == '\0' && onlyspace(rl_line_buffer, start)) {
    rl_insert_text("  "); /* Tab on an empty line indents */
    return NULL;
  }
  if (L == NULL || !pushhelper(L, "complete")) return NULL;
  lua_pushstring(L, text);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK || !lua_istable(L, -1)) {
    lua_pop(L, 1);
    return NULL;
  }
  luaL_unref(L, LUA_REGISTRYINDEX, candidates_ref);
  candidates_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  char **m = rl_completion_matches(text, nextcandidate);
  luaL_unref(L, LUA_REGISTRYINDEX, candidates_ref);
  candidates_ref = LUA_NOREF;
  return m;
}

/* readline's own reader, except that a Ctrl-C ends the line: readline's
** handler echoes ^C and resets the terminal (rl_check_signals), ours notes
** it, and the newline returned here makes readline return; the reader then
** drops that line. */
static int getkey(FILE *f) {
  for (;;) {
    unsigned char c;
    rl_check_signals(); /* a resize noted by readline's handler, say */
    if (prompt_interrupted) return '\n';
    ssize_t n = read(fileno(f), &c, 1);
    if (n == 1) return c;
    if (n == 0 || errno != EINTR) return EOF;
  }
}

static void setupreadline(lua_State *L) {
  complete_L = L;
  rl_readline_name = "moonrl"; /* for $if moonrl in ~/.inputrc */
  rl_attempted_completion_function = attempt;
  rl_completer_word_break_characters = " \t\n\"'`@$><=;|&{}()[],+-*/%^~#";
  rl_getc_function = getkey;
}
#endif

/* ------------------------------------------------------------- reading */

static int tty; /* stdin is a terminal: prompts, readline, banner */

/* Reads one line onto the stack: 1, or 0 at end of input, or -1 when
** Ctrl-C dropped it. */
static int pushline(lua_State *L, int first) {
  const char *prompt = first ? PROMPT : PROMPT2;
  struct sigaction old;
  int got = 1;
  prompt_interrupted = 0;
  if (tty) setsigint(on_sigint_prompt, 0, &old);
#ifdef MRL_HAVE_READLINE
  if (tty) {
    char *b = readline(prompt);
    if (b == NULL)
      got = 0;
    else if (!prompt_interrupted)
      lua_pushstring(L, b);
    free(b);
  } else
#endif
  {
    char *b = NULL;
    size_t cap = 0;
    ssize_t n;
    if (tty) {
      fputs(prompt, stdout);
      fflush(stdout);
    }
    n = getline(&b, &cap, stdin);
    if (n < 0) {
      got = 0;
      if (prompt_interrupted) {
        clearerr(stdin);
        fputc('\n', stdout);
      }
    } else if (!prompt_interrupted) {
      if (n > 0 && b[n - 1] == '\n') b[--n] = '\0';
      lua_pushlstring(L, b, (size_t)n);
    }
    free(b);
  }
  if (tty) sigaction(SIGINT, &old, NULL);
  if (prompt_interrupted) {
    prompt_interrupted = 0;
    return -1;
  }
  return got;
}

/* An incomplete chunk: its syntax error is reported at <eof>. */
static int incomplete(lua_State *L, int status) {
  if (status == LUA_ERRSYNTAX) {
    size_t lmsg;
    const char *msg = lua_tolstring(L, -1, &lmsg);
    const char *eof = "<eof>";
    size_t le = strlen(eof);
    if (lmsg >= le && strcmp(msg + lmsg - le, eof) == 0) {
      lua_pop(L, 1);
      return 1;
    }
  }
  return 0;
}

/* Tries "return <line>" (also for Lua 5.1's "= <expr>"); on success
** leaves the function on the stack. */
static int addreturn(lua_State *L) {
  const char *line = lua_tostring(L, -1);
  const char *retline = lua_pushfstring(L, "return %s;", line[0] == '=' ? line + 1 : line);
  int status = luaL_loadbuffer(L, retline, strlen(retline), "=stdin");
  if (status == LUA_OK) {
    lua_remove(L, -2); /* the modified line */
    addhistory(line);
  } else {
    lua_pop(L, 2);
  }
  return status;
}

/* Reads lines until they form a complete statement; leaves the compiled
** chunk (or the error) on the stack, or returns -1 if Ctrl-C dropped it.
** Each longer buffer is tried as an expression first, so a call spread
** over lines (`agent:learn(1e5, {` … `})`) prints its results too. */
static int multiline(lua_State *L) {
  for (;;) {
    size_t len;
    const char *line = lua_tolstring(L, 1, &len);
    int status = luaL_loadbuffer(L, line, len, "=stdin");
    if (!incomplete(L, status)) {
      addhistory(line);
      return status;
    }
    int got = pushline(L, 0);
    if (got < 0) return -1;
    if (got == 0) { /* end of input inside a chunk: report it as lua.c does */
      addhistory(line);
      return luaL_loadbuffer(L, line, len, "=stdin");
    }
    lua_pushliteral(L, "\n");
    lua_insert(L, -2);
    lua_concat(L, 3);
    if (addreturn(L) == LUA_OK) return LUA_OK;
  }
}

/* -2 at end of input, -1 for a dropped line; otherwise a load status with
** the chunk (or the message) on the stack. */
static int loadline(lua_State *L) {
  lua_settop(L, 0);
  int got = pushline(L, 1);
  if (got <= 0) return got == 0 ? -2 : -1;
  int status = addreturn(L);
  if (status != LUA_OK) status = multiline(L);
  if (status == -1) {
    lua_settop(L, 0);
    return -1;
  }
  lua_remove(L, 1); /* the line */
  return status;
}

/* The results on the stack, through moonrl.repl's show(...) when it loaded
** (under host_docall, so Ctrl-C stops a huge table too), else print. */
static void printresults(lua_State *L) {
  int n = lua_gettop(L);
  if (n == 0) return;
  luaL_checkstack(L, LUA_MINSTACK, "too many results to print");
  if (pushhelper(L, "show")) {
    lua_insert(L, 1);
    if (host_report(L, host_docall(L, n, 1)) == LUA_OK) {
      const char *s = lua_tostring(L, -1);
      if (s != NULL) {
        fputs(s, stdout);
        fputc('\n', stdout);
        fflush(stdout);
      }
    }
    lua_settop(L, 0);
    return;
  }
  lua_getglobal(L, "print");
  lua_insert(L, 1);
  host_report(L, host_docall(L, n, 0));
}

static void banner(lua_State *L) {
  lua_getglobal(L, "rl");
  if (lua_istable(L, -1)) {
    lua_getfield(L, -1, "version");
    lua_getfield(L, -2, "core");
    if (lua_istable(L, -1)) lua_getfield(L, -1, "binding");
    else lua_pushnil(L);
    printf("moonrl %s (%s binding, %s)  help() for help, Ctrl-D to quit\n",
           lua_isstring(L, -3) ? lua_tostring(L, -3) : "?",
           lua_isstring(L, -1) ? lua_tostring(L, -1) : "?", LUA_RELEASE);
    lua_pop(L, 3);
  } else {
    printf("moonrl on %s  Ctrl-D to quit\n", LUA_RELEASE);
  }
  lua_pop(L, 1);
  fflush(stdout);
}

void host_repl(lua_State *L) {
  int status;
  tty = isatty(0);
  loadhelpers(L);
#ifdef MRL_HAVE_READLINE
  char *hpath = NULL;
  if (tty) {
    hpath = historypath();
    openhistory(hpath);
    setupreadline(L);
  }
#endif
  if (tty) banner(L);
  while ((status = loadline(L)) != -2) {
    if (status == -1) continue; /* Ctrl-C at a prompt */
    if (status == LUA_OK) status = host_docall(L, 0, LUA_MULTRET);
    if (status == LUA_OK) {
      printresults(L);
    } else {
      if (tty && interrupts > 0) fputc('\n', stderr); /* after the echoed ^C */
      host_report(L, status);
    }
  }
  lua_settop(L, 0);
#ifdef MRL_HAVE_READLINE
  if (tty) {
    closehistory(hpath);
    free(hpath);
    complete_L = NULL;
  }
#endif
  luaL_unref(L, LUA_REGISTRYINDEX, helpers_ref);
  helpers_ref = LUA_NOREF;
  if (tty) fputc('\n', stdout);
  fflush(stdout);
}
