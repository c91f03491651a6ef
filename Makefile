# craft build. Plain GNU Make: see docs/design/build.md for why.
#
#   make            build everything into build/ (programs in build/bin/)
#   make test       build and run every test, including the sanitizer builds
#   make soak       the long seed sweep
#   make mutate     mutation score of the core's tests (MUTATE_ARGS="--mutants 100 --seed 7")
#   make run        the main job
#   make bench      benchmarks that print figures
#   make install    headers, static and shared libraries, pkg-config files, programs
#                   (PREFIX=/usr/local, DESTDIR= for staging)
#
# Variants: BUILD=release (default, build/), BUILD=asan (ASan+UBSan, build/asan/),
# BUILD=tsan (ThreadSanitizer, build/tsan/), BUILD=fuzz (clang libFuzzer, build/fuzz/).

BUILD ?= release
CC ?= cc

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla
# Position-independent objects: the shared libraries link from the same objects as the
# static ones; -fno-semantic-interposition keeps calls within a library direct (the
# static link of the programs relaxes the rest), so the programs pay nothing measurable.
PIC := -fPIC -fno-semantic-interposition
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) $(PIC) -Isrc -Iinclude -MMD -MP
# libcraft needs zlib (checksums) only; libcraftkv adds LMDB.
LDLIBS := -lm -lz
KV_LDLIBS := -llmdb $(LDLIBS)

ifeq ($(BUILD),release)
OUT ?= build
VFLAGS := -O2 -g
else ifeq ($(BUILD),asan)
OUT ?= build/asan
VFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
else ifeq ($(BUILD),tsan)
OUT ?= build/tsan
VFLAGS := -O1 -g -fsanitize=thread
else ifeq ($(BUILD),fuzz)
OUT ?= build/fuzz
CC := clang
VFLAGS := -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
else
$(error unknown BUILD=$(BUILD): use release, asan, tsan or fuzz)
endif

CFLAGS_ALL := $(BASE_CFLAGS) $(VFLAGS) $(CFLAGS)
LDFLAGS_ALL := $(VFLAGS) $(LDFLAGS)

# Two libraries: libcraft (the Raft library an application embeds: no LMDB, no server) and
# libcraftkv (craftkv's state machine, stores, RESP server and client, on libcraft).
LIB_SRCS := $(wildcard src/base/*.c src/core/*.c src/codec/*.c src/storage/*.c src/transport/*.c src/runtime/*.c)
KV_SRCS := $(wildcard src/kv/*.c src/shard/*.c)
SIM_SRCS := $(wildcard src/sim/*.c tests/sim/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(OUT)/obj/%.o)
KV_OBJS := $(KV_SRCS:%.c=$(OUT)/obj/%.o)
SIM_OBJS := $(SIM_SRCS:%.c=$(OUT)/obj/%.o)
LIB := $(OUT)/lib/libcraft.a
KVLIB := $(OUT)/lib/libcraftkv.a
# Shared libraries: libcraft.so.0 and libcraftkv.so.0 (the soname's major changes with the
# ABI); only craft_* symbols are exported (scripts/libcraft.map).
VERSION := 0.1.0
SOVERSION := 0
SOLIB := $(OUT)/lib/libcraft.so.$(VERSION)
KVSOLIB := $(OUT)/lib/libcraftkv.so.$(VERSION)
PREFIX ?= /usr/local
DESTDIR ?=
SIMLIB := $(OUT)/lib/libcraftsim.a

TOOLS := craft-sim craft-log craftkv craftkv-check
TOOL_BINS := $(TOOLS:%=$(OUT)/bin/%)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(OUT)/tests/%)
BENCH_SRCS := $(wildcard bench/*.c)
BENCH_BINS := $(BENCH_SRCS:bench/%.c=$(OUT)/bench/%)
EXAMPLE_SRCS := $(wildcard examples/*.c)
EXAMPLE_BINS := $(EXAMPLE_SRCS:examples/%.c=$(OUT)/examples/%)
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(OUT)/fuzz/%)

.PHONY: all test soak mutate run sim-view bench clean deps install shared
# Keep test, bench and fuzz objects: they are not throwaway intermediates.
.SECONDARY:
.DEFAULT_GOAL := all

ifeq ($(BUILD),fuzz)
all: $(FUZZ_BINS)
else
all: $(TOOL_BINS) $(UNIT_BINS) $(BENCH_BINS) $(EXAMPLE_BINS)
endif

$(OUT)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

# Examples are what an application writes: public headers only (-Iinclude, no -Isrc).
$(OUT)/obj/examples/%.o: examples/%.c
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -Isrc,$(CFLAGS_ALL)) -c $< -o $@

$(LIB): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(KVLIB): $(KV_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(SOLIB): $(LIB_OBJS) scripts/libcraft.map
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,-soname,libcraft.so.$(SOVERSION) -Wl,--version-script=scripts/libcraft.map \
		-Wl,--no-undefined $(LDFLAGS_ALL) $(LIB_OBJS) -o $@ $(LDLIBS)

$(KVSOLIB): $(KV_OBJS) $(SOLIB) scripts/libcraft.map
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,-soname,libcraftkv.so.$(SOVERSION) -Wl,--version-script=scripts/libcraft.map \
		-Wl,--no-undefined $(LDFLAGS_ALL) $(KV_OBJS) $(SOLIB) -o $@ $(KV_LDLIBS)

$(OUT)/lib/%.pc: scripts/%.pc.in Makefile
	@mkdir -p $(dir $@)
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' $< > $@

shared: $(SOLIB) $(KVSOLIB)

# What an application needs to build against craft, and the programs. Everything comes
# from the release build (BUILD=release); docs/design/build.md "Installing".
INSTALL_PROGRAMS := craftkv craftkv-check craft-log
install: $(LIB) $(KVLIB) $(SOLIB) $(KVSOLIB) $(OUT)/lib/libcraft.pc $(OUT)/lib/libcraftkv.pc \
		$(INSTALL_PROGRAMS:%=$(OUT)/bin/%)
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig \
		$(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/craft
	install -m 644 include/craft.h include/craft_base.h include/craft_kv_client.h \
		$(DESTDIR)$(PREFIX)/include/
	install -m 644 $(LIB) $(KVLIB) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(SOLIB) $(KVSOLIB) $(DESTDIR)$(PREFIX)/lib/
	for l in libcraft libcraftkv; do \
		ln -sf $$l.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/$$l.so.$(SOVERSION) && \
		ln -sf $$l.so.$(SOVERSION) $(DESTDIR)$(PREFIX)/lib/$$l.so || exit 1; done
	install -m 644 $(OUT)/lib/libcraft.pc $(OUT)/lib/libcraftkv.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/
	install -m 755 $(INSTALL_PROGRAMS:%=$(OUT)/bin/%) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 scripts/craftkv.service $(DESTDIR)$(PREFIX)/share/craft/

$(SIMLIB): $(SIM_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(OUT)/bin/craft-sim: $(OUT)/obj/tools/craft_sim.o $(SIMLIB) $(KVLIB) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) $^ -o $@ $(KV_LDLIBS)

$(OUT)/bin/craft-log: $(OUT)/obj/tools/craft_log.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) $^ -o $@ $(LDLIBS)

$(OUT)/bin/craftkv: $(OUT)/obj/tools/craftkv.o $(KVLIB) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) $^ -o $@ $(KV_LDLIBS)

$(OUT)/bin/craftkv-check: $(OUT)/obj/tools/craftkv_check.o $(SIMLIB) $(KVLIB) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) $^ -o $@ $(KV_LDLIBS)

$(OUT)/tests/%: $(OUT)/obj/tests/unit/%.o $(SIMLIB) $(KVLIB) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) $^ -o $@ $(KV_LDLIBS)

$(OUT)/bench/%: $(OUT)/obj/bench/%.o $(SIMLIB) $(KVLIB) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) $^ -o $@ $(KV_LDLIBS)

# An example that embeds libcraft alone links no LMDB: the proof that the library does not
# pull craftkv in. The client example uses libcraftkv's C client.
$(OUT)/examples/kv_client_demo: $(OUT)/obj/examples/kv_client_demo.o $(KVLIB) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) $^ -o $@ $(KV_LDLIBS)

$(OUT)/examples/%: $(OUT)/obj/examples/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) $^ -o $@ $(LDLIBS)

$(OUT)/fuzz/%: $(OUT)/obj/tests/fuzz/%.o $(KVLIB) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -fsanitize=fuzzer $^ -o $@ $(KV_LDLIBS)

deps:
	./scripts/deps.sh

test:
	./scripts/test.sh

soak:
	./scripts/soak.sh

mutate:
	python3 scripts/mutate.py $(MUTATE_ARGS)

run: all
	./scripts/run.sh

sim-view: all
	./scripts/sim_view.sh

bench: all
	./scripts/bench.sh

clean:
	rm -rf build

-include $(shell find $(OUT)/obj -name '*.d' 2>/dev/null)
