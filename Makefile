# moonrl — build, test, benchmark.
#
#   make            build/libmoonrl.a, build/libmoonrl.so, build/moonrl, build/lua/moonrl/core.so
#   make run        install missing Debian packages, build, run the main job
#   make test       install missing packages, build, run every suite (normal + ASan/UBSan)
#   make bench      benchmarks (figures, never pass/fail timing)
#   make install PREFIX=/usr/local
#
# Sources are found by wildcard, so adding a file to runtime/, bindings/ or
# tests/c/ needs no edit here.  Files named *_avx2.c / *_avx512.c are compiled
# with those instruction sets only; the rest of the build stays portable and
# picks a variant at run time.

# Debian packages, pinned by name.  LuaJIT is optional for building, but the
# test suite runs under it too, so `make deps` installs it.
DEPS := gcc make pkg-config liblua5.4-dev lua5.4 lua-busted libreadline-dev \
        luajit libluajit-5.1-dev tmux

PREFIX ?= /usr/local
BUILD ?= build
CC ?= cc
SAN ?=

LUA_CFLAGS := $(shell pkg-config --cflags lua5.4 2>/dev/null || echo -I/usr/include/lua5.4)
LUA_LIBS := $(shell pkg-config --libs lua5.4 2>/dev/null || echo -llua5.4)
HAVE_READLINE := $(shell test -f /usr/include/readline/readline.h && echo 1)

OPT ?= -O2
CFLAGS_BASE := -std=c11 $(OPT) -g -Wall -Wextra -fPIC -fopenmp-simd \
               -fno-trapping-math -fno-math-errno -D_GNU_SOURCE
ifeq ($(SAN),1)
  CFLAGS_BASE += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  LDFLAGS_SAN := -fsanitize=address,undefined
endif
CFLAGS := $(CFLAGS_BASE) -Iruntime $(EXTRA_CFLAGS)
LDLIBS := -lm -lpthread

RUNTIME_SRC := $(wildcard runtime/*.c)
RUNTIME_OBJ := $(RUNTIME_SRC:%.c=$(BUILD)/obj/%.o)
BINDING_SRC := $(wildcard bindings/lua54/*.c)
BINDING_OBJ := $(BINDING_SRC:%.c=$(BUILD)/obj/%.o)
HOST_SRC := $(wildcard bindings/host/*.c)
HOST_OBJ := $(HOST_SRC:%.c=$(BUILD)/obj/%.o)
CTEST_SRC := $(wildcard tests/c/test_*.c)
CTEST_BIN := $(CTEST_SRC:tests/c/%.c=$(BUILD)/tests/%)
BENCH_SRC := $(wildcard bench/*.c)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

LIB_A := $(BUILD)/libmoonrl.a
LIB_SO := $(BUILD)/libmoonrl.so
HOST := $(BUILD)/moonrl
LUAMOD := $(BUILD)/lua/moonrl/core.so
CDEF := $(BUILD)/moonrl_cdef.h

.PHONY: all deps run test test-unit test-asan bench install clean check-deps

all: $(LIB_A) $(LIB_SO) $(HOST) $(LUAMOD) $(CDEF)

# ---------------------------------------------------------------- packages
# As root: apt-get installs what is missing.  Otherwise print the line and stop.
deps:
	@missing=""; for p in $(DEPS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null || exit 1; \
	  else \
	    echo "missing Debian packages; run:"; \
	    echo "  sudo apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi

# ---------------------------------------------------------------- objects
# (Stems must be as specific as the generic rule's, or make prefers that one.)
$(BUILD)/obj/runtime/%_avx2.o: runtime/%_avx2.c runtime/*.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -mavx2 -mfma -c $< -o $@

$(BUILD)/obj/runtime/%_avx512.o: runtime/%_avx512.c runtime/*.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -mavx512f -mavx512dq -mavx512vl -mavx2 -mfma -c $< -o $@

$(BUILD)/obj/runtime/%.o: runtime/%.c runtime/*.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/obj/bindings/%.o: bindings/%.c runtime/moonrl.h $(wildcard bindings/lua54/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LUA_CFLAGS) -Ibindings/lua54 $(if $(HAVE_READLINE),-DMRL_HAVE_READLINE) -c $< -o $@

$(LIB_A): $(RUNTIME_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@; ar rcs $@ $^

$(LIB_SO): $(RUNTIME_OBJ)
	$(CC) -shared -o $@ $^ $(LDFLAGS_SAN) $(LDLIBS)

# The Lua module links the runtime in, so it needs no LD_LIBRARY_PATH.
$(LUAMOD): $(BINDING_OBJ) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ $(BINDING_OBJ) $(LIB_A) $(LDFLAGS_SAN) $(LDLIBS)

$(HOST): $(HOST_OBJ) $(BINDING_OBJ) $(LIB_A)
	$(CC) -o $@ $(HOST_OBJ) $(BINDING_OBJ) $(LIB_A) $(LDFLAGS_SAN) $(LUA_LIBS) \
	  $(if $(HAVE_READLINE),-lreadline) $(LDLIBS) -ldl -Wl,-E

# The header with preprocessor lines removed: what the LuaJIT FFI binding cdefs.
$(CDEF): runtime/moonrl.h
	@mkdir -p $(dir $@)
	grep -v '^[[:space:]]*#' $< | sed -e '/^extern "C"/d' -e '/^}$$/d' > $@

$(BUILD)/tests/%: tests/c/%.c $(LIB_A) $(wildcard tests/c/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/c -o $@ $< $(LIB_A) $(LDFLAGS_SAN) $(LDLIBS)

$(BUILD)/bench/%: bench/%.c $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -O3 -Iruntime -o $@ $< $(LIB_A) $(LDLIBS)

# ---------------------------------------------------------------- tests
GOLDEN_DIR ?= ../shared/golden

# The suites in TAP, gathered by prove: C unit tests, busted specs, golden
# vectors and learning checks (tests/*.t drive the non-C suites).
test-unit: all $(CTEST_BIN)
	BUILD=$(BUILD) GOLDEN_DIR=$(GOLDEN_DIR) prove -e '' $(CTEST_BIN) $(sort $(wildcard tests/*.t))

test-asan:
	ASAN_OPTIONS=detect_leaks=1 $(MAKE) --no-print-directory BUILD=build-asan SAN=1 OPT=-O1 test-unit

test: deps
	$(MAKE) --no-print-directory test-unit
	$(MAKE) --no-print-directory test-asan

run: deps all
	$(HOST) examples/main.lua

bench: all $(BENCH_BIN)
	@for b in $(BENCH_BIN); do $$b || exit 1; done
	@for b in $(sort $(wildcard bench/*.lua)); do $(HOST) $$b || exit 1; done

# ---------------------------------------------------------------- install
LUA_SHARE := $(PREFIX)/share/lua/5.4
LUA_LIB := $(PREFIX)/lib/lua/5.4

install: all
	install -d $(PREFIX)/lib $(PREFIX)/include $(PREFIX)/bin $(PREFIX)/lib/pkgconfig \
	  $(LUA_SHARE)/moonrl $(LUA_LIB)/moonrl $(PREFIX)/share/moonrl/envs
	install -m 644 $(LIB_A) $(LIB_SO) $(PREFIX)/lib/
	install -m 644 runtime/moonrl.h $(PREFIX)/include/
	install -m 755 $(HOST) $(PREFIX)/bin/
	install -m 755 $(LUAMOD) $(LUA_LIB)/moonrl/core.so
	install -m 644 scripts/moonrl/*.lua $(LUA_SHARE)/moonrl/
	install -d $(LUA_SHARE)/moonrl/cli
	install -m 644 scripts/moonrl/cli/*.lua $(LUA_SHARE)/moonrl/cli/
	install -m 644 envs/*.lua $(PREFIX)/share/moonrl/envs/
	sed -e 's|@PREFIX@|$(PREFIX)|' moonrl.pc.in > $(PREFIX)/lib/pkgconfig/moonrl.pc

clean:
	rm -rf build build-asan

# ---------------------------------------------------------------- learning
# Learning benchmarks (tests/learn/*.lua over seeds 1–5): CartPole (PPO,
# TRPO), Acrobot, Pendulum, MountainCarContinuous; prints a table.
.PHONY: bench-learn
bench-learn: all
	$(HOST) tests/learn/bench.lua
