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
# LuaJIT's headers, for the LuaJIT binding's env worker library (optional)
LUAJIT_CFLAGS := $(shell pkg-config --cflags luajit 2>/dev/null)
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
LJLIB := $(BUILD)/libmoonrl_luajit.so

.PHONY: all deps run test test-unit test-asan tsan bench install clean check-deps

all: $(LIB_A) $(LIB_SO) $(HOST) $(LUAMOD) $(CDEF) $(if $(LUAJIT_CFLAGS),$(LJLIB))

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

# The LuaJIT binding's env worker states: bindings/lua54/env_worker.c compiled
# against LuaJIT's headers.  The lua_* symbols stay undefined, resolved from
# the process's own LuaJIT (luajit and LOVE export them): never a second copy.
$(LJLIB): bindings/luajit/env_worker_ffi.c bindings/lua54/env_worker.c \
          bindings/lua54/env_worker.h bindings/lua54/lua_compat.h runtime/moonrl.h $(LIB_SO)
	$(CC) $(CFLAGS) $(LUAJIT_CFLAGS) -Ibindings/lua54 -shared -o $@ \
	  bindings/luajit/env_worker_ffi.c bindings/lua54/env_worker.c \
	  -L$(BUILD) -lmoonrl -Wl,-rpath,'$$ORIGIN' $(LDFLAGS_SAN) $(LDLIBS)

# The header with preprocessor lines removed: what the LuaJIT FFI binding cdefs.
$(CDEF): runtime/moonrl.h
	@mkdir -p $(dir $@)
	grep -v '^[[:space:]]*#' $< | sed -e '/^extern "C"/d' -e '/^}$$/d' > $@

$(BUILD)/tests/%: tests/c/%.c $(LIB_A) $(wildcard tests/c/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/c -o $@ $< $(LIB_A) $(LDFLAGS_SAN) $(LDLIBS)

$(BUILD)/bench/%: bench/%.c bench/fma_peak.h $(LIB_A)
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

# ThreadSanitizer over the threaded code (the background trainer's game
# loop against an update, the parked worker) in its own build dir; any
# report fails the run.  Then the Lua 5.4 host built the same way runs
# rl.agent's background mode (act/observe/publish on the game thread while
# an update runs; save/load/close during one) and core.bgtrain's spec,
# without their learning checks.  A few seconds.
TSAN_BUILD ?= build-tsan
TSAN_TESTS := test_bgtrain test_worker test_pool
TSAN_SPECS := tests/lua/agent_bg_spec.lua tests/lua/bgtrain_spec.lua
tsan:
	$(MAKE) --no-print-directory BUILD=$(TSAN_BUILD) OPT=-O1 \
	  EXTRA_CFLAGS=-fsanitize=thread LDFLAGS_SAN=-fsanitize=thread \
	  $(TSAN_TESTS:%=$(TSAN_BUILD)/tests/%) $(TSAN_BUILD)/moonrl
	@for t in $(TSAN_TESTS); do \
	  echo "tsan: $$t"; \
	  TSAN_OPTIONS="halt_on_error=1 exitcode=66" $(TSAN_BUILD)/tests/$$t >/dev/null || exit 1; \
	done
	@if command -v busted >/dev/null 2>&1; then \
	  echo "tsan: $(TSAN_SPECS) on the Lua 5.4 host"; \
	  TSAN_OPTIONS="halt_on_error=1 exitcode=66" BUILD=$(TSAN_BUILD) $(TSAN_BUILD)/moonrl \
	    "$$(command -v busted)" -o TAP --filter-out=learns $(TSAN_SPECS) >/dev/null || exit 1; \
	else echo "tsan: busted not installed, Lua host specs skipped"; fi

test: deps
	$(MAKE) --no-print-directory test-unit
	$(MAKE) --no-print-directory test-asan
	$(MAKE) --no-print-directory tsan

# A sub-make after deps, so what deps just installed (readline, mpicc,
# pkg-config) is seen by the variables computed when make reads this file.
run: deps
	$(MAKE) --no-print-directory all
	$(HOST) examples/main.lua

# bench/run_all.lua runs every build/bench/* program and bench/*.lua, then
# prints the issues' figures beside their targets and writes $(BUILD)/bench.json.
bench: all $(BENCH_BIN)
	BUILD=$(BUILD) $(HOST) bench/run_all.lua

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

# ---------------------------------------------------------------- MPI
# make MPI=1 (the default when mpicc is found, except in sanitizer builds;
# MPI=0 turns it off): the moonrl host gains bindings/mpi — MPI_Init when
# started by mpirun, the moonrl.mpi module, the reduction hook over
# MPI_Allreduce — compiled and linked by mpicc.  libmoonrl and the Lua
# module core.so stay free of MPI.  See docs/MPI.md; tests/mpi.t builds
# its own variant in build-mpi/ and runs it under mpirun.
DEPS += libopenmpi-dev openmpi-bin
MPICC ?= mpicc
ifeq ($(origin MPI),undefined)
  MPI := $(if $(filter 1,$(SAN)),0,$(if $(shell command -v $(MPICC) 2>/dev/null),1,0))
endif
# main.o is rebuilt when MPI flips in the same BUILD dir (the flag file
# changes only then).
MPI_FLAG := $(BUILD)/obj/mpi.flag
.PHONY: mpi-flag-check
mpi-flag-check:
$(MPI_FLAG): mpi-flag-check
	@mkdir -p $(dir $@); echo $(MPI) | cmp -s - $@ 2>/dev/null || echo $(MPI) > $@
$(BUILD)/obj/bindings/host/main.o: $(MPI_FLAG)
ifeq ($(MPI),1)
MPI_SRC := $(wildcard bindings/mpi/*.c)
MPI_OBJ := $(MPI_SRC:%.c=$(BUILD)/obj/%.o)
HOST_OBJ += $(MPI_OBJ)
$(HOST): $(MPI_OBJ)
$(HOST): CC := $(MPICC)
$(MPI_OBJ): CC := $(MPICC)
$(MPI_OBJ): bindings/mpi/moonrl_mpi.h bindings/lua54/l_reduce.h
$(BUILD)/obj/bindings/host/main.o: CFLAGS += -DMRL_HAVE_MPI -Ibindings/mpi
$(BUILD)/obj/bindings/host/main.o: bindings/mpi/moonrl_mpi.h
endif

# Steps/s with 1 and 2 ranks and the share of update time in communication.
.PHONY: bench-mpi
bench-mpi:
	$(MAKE) --no-print-directory MPI=1 BUILD=build-mpi build-mpi/moonrl
	sh bench/mpi_scaling.sh build-mpi

# ---------------------------------------------------------------- embedding
# examples/embed: embed_lua (a C program embedding Lua 5.4 with moonrl.core
# linked in; finds the Lua scripts in this source tree or $MOONRL_ROOT) and
# infer (plain C, no Lua: loads a saved policy and acts).  Part of `all`, so
# the ASan build makes them with its flags; tests/embed.t runs them.
# love/xvfb run the LÖVE example headless (tests/love.t; skipped without them).
DEPS += love xvfb xauth
EMBED_BIN := $(BUILD)/examples/embed_lua $(BUILD)/examples/infer
.PHONY: examples
examples: $(EMBED_BIN)
all: $(EMBED_BIN)

$(BUILD)/examples/embed_lua: examples/embed/embed_lua.c $(BINDING_OBJ) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LUA_CFLAGS) -DMRL_SOURCE_ROOT='"$(CURDIR)"' -o $@ $< \
	  $(BINDING_OBJ) $(LIB_A) $(LDFLAGS_SAN) $(LUA_LIBS) $(LDLIBS) -ldl

$(BUILD)/examples/infer: examples/embed/infer.c runtime/moonrl.h $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LIB_A) $(LDFLAGS_SAN) $(LDLIBS)

# ---------------------------------------------------------------- reliability
# make fuzz: the safetensors reader under libFuzzer (ASan + UBSan) for
# FUZZ_SECONDS, growing $(BUILD)/fuzz/corpus from tests/fuzz/corpus; a
# short run of it is part of the tests (tests/fuzz.t).
# make soak: PPO with worker threads for SOAK_SECONDS, reloading the env
# script and saving checkpoints as it goes; reports RSS and errors
# (bench/soak.lua; fails on an error or RSS growth beyond its bound).
DEPS += clang libclang-rt-14-dev
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 300
SOAK_SECONDS ?= 600
.PHONY: fuzz soak
fuzz:
	@mkdir -p $(BUILD)/fuzz/corpus
	$(FUZZ_CC) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	  -Iruntime -o $(BUILD)/fuzz/fuzz_safetensors tests/fuzz/fuzz_safetensors.c \
	  runtime/safetensors.c runtime/atomic_file.c runtime/status.c
	$(BUILD)/fuzz/fuzz_safetensors -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	  -dict=tests/fuzz/safetensors.dict $(BUILD)/fuzz/corpus tests/fuzz/corpus

soak: all
	$(HOST) bench/soak.lua $(SOAK_SECONDS)

# ---------------------------------------------------------------- peers
# make bench-peers: moonrl beside the Python stack (PyTorch from Debian's
# python3-torch, run single-threaded), measured in one run on this machine
# (bench/peers/compare.lua runs bench/peers/torch_bench.py; writes
# $(BUILD)/peers.json).  Not part of `make test` or `make bench`.
PEER_PYTHON ?= /usr/bin/python3
PEER_STEPS ?= 100000
.PHONY: bench-peers
bench-peers: all $(BENCH_BIN)
	@if ! $(PEER_PYTHON) -c 'import torch, numpy' 2>/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get install -y python3-torch python3-numpy; \
	  else echo "needs: sudo apt-get install -y python3-torch python3-numpy"; exit 1; fi; \
	fi
	BUILD=$(BUILD) PYTHON=$(PEER_PYTHON) $(HOST) bench/peers/compare.lua $(PEER_STEPS)
