# tlsfwd — plain Makefile.  `make` builds build/tlsfwd-{client,server,certs}.
#   make WOLFSSL=system      link Debian's libwolfssl instead of the static build
#   make SANITIZE=address,undefined   (what `make check` uses, in build/san)
#   make CC=clang            the same code must build warning-free with clang

WOLFSSL  ?= static
B        ?= build
CC       ?= cc
OPT      ?= -O2 -g
WARN     := -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wstrict-prototypes \
            -Wmissing-prototypes -Wformat=2 -Wno-format-nonliteral
CFLAGS   += -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) -fno-strict-aliasing -pthread -Ishared
LDLIBS   += -lev -lmsgpackc -lseccomp -lm -pthread

ifeq ($(WOLFSSL),system)
  WOLF_CFLAGS := $(shell pkg-config --cflags wolfssl)
  WOLF_LIBS   := $(shell pkg-config --libs wolfssl)
  WOLF_DEP    :=
else
  WOLF_CFLAGS := -Ibuild/wolfssl/include
  WOLF_LIBS   := build/wolfssl/lib/libwolfssl.a
  WOLF_DEP    := build/wolfssl/lib/libwolfssl.a
endif
CFLAGS += $(WOLF_CFLAGS)

ifneq ($(SANITIZE),)
  CFLAGS  += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
  LDFLAGS += -fsanitize=$(SANITIZE)
endif

# Four rooms, each a static library: shared/ (what both daemons run), client/,
# server/ and certs/ (each role's own code); each program is its main.o over
# its room's library and shared's.  A file moves between rooms without a
# change here.  The preload shim is client/preload*.c over client/ and shared/.
SHARED_SRC := $(wildcard shared/*.c)
CLIENT_SRC := $(filter-out client/main.c client/preload%.c,$(wildcard client/*.c))
SERVER_SRC := $(filter-out server/main.c,$(wildcard server/*.c))
CERTS_SRC  := $(filter-out certs/main.c,$(wildcard certs/*.c))
ROOM_LIBS  := $(B)/libtlsfwd-certs.a $(B)/libtlsfwd-server.a $(B)/libtlsfwd-client.a \
              $(B)/libtlsfwd.a
PRELOAD_SRC := $(wildcard client/preload*.c)
PRELOAD    := $(if $(PRELOAD_SRC),$(B)/libtlsfwd-preload.so)
# Not in the shim: the metrics HTTP server (libmicrohttpd) is the daemons'
# alone, and the shim installs no sandbox (it lives in someone else's program):
# not shared/sandbox.c, whose calls client/preload_sandbox.c answers with an
# error, so the shim does not link libseccomp.
HTTP_SRC   := shared/metrics_http.c
PIC_OBJ    := $(patsubst %.c,$(B)/pic/%.o,$(filter-out $(HTTP_SRC) shared/sandbox.c,$(SHARED_SRC)) \
              $(CLIENT_SRC) $(PRELOAD_SRC))
PROBE_SRC  := $(wildcard tests/preload/*.c)
PROBE_BIN  := $(PROBE_SRC:tests/preload/%.c=$(B)/probe/%)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(B)/unit/%)
BINS       := $(B)/tlsfwd-client $(B)/tlsfwd-server $(B)/tlsfwd-certs

PYTEST     := /usr/bin/python3 -m pytest

.PHONY: all deps install test unit e2e check valgrind demo bench clean distclean
PREFIX     ?= /usr/local
all: $(BINS) $(PRELOAD) $(PROBE_BIN)

deps:
	@scripts/deps.sh $(if $(filter system,$(WOLFSSL)),system)

# What scripts/deps.sh makes (libev's source, the static wolfSSL) is made by
# `deps` alone, so `make -j` from a clean tree runs deps.sh once, not once per
# missing file at the same time (they would collide on apt's lock).  Only the
# missing files depend on `deps`: a tree that has them does not run it.
DEPS_OUT     := build/libev/ev.c $(WOLF_DEP)
$(filter-out $(wildcard $(DEPS_OUT)),$(DEPS_OUT)): deps

# Every object depends on the wolfSSL build: a rebuilt wolfSSL (new flags,
# new options.h) rebuilds everything.
$(B)/obj/%.o: %.c $(WOLF_DEP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(B)/libtlsfwd.a: $(SHARED_SRC:%.c=$(B)/obj/%.o)
$(B)/libtlsfwd-client.a: $(CLIENT_SRC:%.c=$(B)/obj/%.o)
$(B)/libtlsfwd-server.a: $(SERVER_SRC:%.c=$(B)/obj/%.o)
$(B)/libtlsfwd-certs.a: $(CERTS_SRC:%.c=$(B)/obj/%.o)
$(ROOM_LIBS):
	rm -f $@
	$(AR) rcs $@ $^

$(B)/tlsfwd-%: $(B)/obj/%/main.o $(B)/libtlsfwd-%.a $(B)/libtlsfwd.a
	$(CC) $(LDFLAGS) -o $@ $^ $(WOLF_LIBS) $(LDLIBS)

# The server's forward-protocol reader (server/fwd*.c) decompresses gzip and
# zstd requests; nothing else needs them.
SERVER_LIBS := -lz -lzstd
$(B)/tlsfwd-server: LDLIBS += $(SERVER_LIBS)
# --metrics-listen (shared/metrics_http.c) in both daemons and the unit tests:
# libmicrohttpd (its header from libmicrohttpd-dev) is loaded with dlopen()
# only when the option is given (see there why).
HTTP_LIBS := -ldl
$(B)/tlsfwd-client $(B)/tlsfwd-server: LDLIBS += $(HTTP_LIBS)

# The LD_PRELOAD shim: the hooks and, for inline mode, the whole client core
# (libtlsfwd, wolfSSL, libev, msgpack-c) linked in statically and hidden: only
# the hooked libc symbols are exported (client/preload.map), so a host program
# with its own OpenSSL or libev is unaffected.  Never sanitized: an ASan
# library cannot be preloaded into uninstrumented programs (the ASan runtime
# must come first).
# -z now: the shim's imports are bound at load, so a hook never runs the lazy
# resolver (about 3 KiB) on a host thread's stack, which may be small.
# libev comes from Debian's source package (scripts/deps.sh puts it in
# build/libev): Debian's libev.a is not position-independent.  Compiled as
# libev's docs describe for embedding (EV_STANDALONE), without its warnings:
# it is not our code.
PRELOAD_CFLAGS := -Ibuild/libev $(filter-out -fsanitize=% -fno-sanitize-recover=%,$(CFLAGS))
$(B)/pic/%.o: %.c $(WOLF_DEP) build/libev/ev.c
	@mkdir -p $(@D)
	$(CC) $(PRELOAD_CFLAGS) -fPIC -fvisibility=hidden -MMD -MP -c -o $@ $<

$(B)/pic/libev.o: build/libev/ev.c
	@mkdir -p $(@D)
	$(CC) -O2 -g -fPIC -fvisibility=hidden -DEV_STANDALONE=1 -DEV_USE_IOURING=0 -w -c -o $@ $<

$(B)/libtlsfwd-preload.so: $(PIC_OBJ) $(B)/pic/libev.o client/preload.map
	$(CC) -shared -Wl,--version-script=client/preload.map -Wl,--exclude-libs,ALL \
	    -Wl,-z,defs -Wl,-z,now -Wl,--gc-sections -o $@ $(PIC_OBJ) $(B)/pic/libev.o $(WOLF_LIBS) \
	    -Wl,-Bstatic -lmsgpackc -Wl,-Bdynamic -lm -ldl -pthread

# Small C programs the preload e2e tests run under the shim.
$(B)/probe/%: tests/preload/%.c tests/preload/probe.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(if $(findstring openssl,$*),-lssl -lcrypto) -pthread

# Unit tests see every room.
ROOM_INC   := -Iclient -Iserver -Icerts
$(B)/unit/%: tests/unit/%.c $(ROOM_LIBS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(ROOM_INC) $(LDFLAGS) -o $@ $^ $(WOLF_LIBS) -lcmocka $(LDLIBS) $(SERVER_LIBS) \
	    $(HTTP_LIBS)

unit: deps $(UNIT_BIN)
	@rc=0; for t in $(UNIT_BIN); do echo "== $$t"; $$t || rc=1; done; exit $$rc

e2e: deps all
	TLSFWD_BUILD=$(abspath $(B)) $(PYTEST) -q tests/e2e $(PYTEST_ARGS)

test: deps
	$(MAKE) all
	$(MAKE) unit
	$(MAKE) e2e
	$(MAKE) faults

# The fault suite: both daemons in network namespaces the tests make, a
# partition (nft), SIGKILL and SIGSTOP of each process.  Needs root.
.PHONY: faults
faults: deps all
	TLSFWD_BUILD=$(abspath $(B)) $(PYTEST) -q tests/faults $(PYTEST_ARGS)

check: deps
	$(MAKE) B=build/clang CC=clang all
	$(MAKE) B=build/san SANITIZE=address,undefined OPT="-O1 -g" test

# The e2e suite with both daemons under valgrind (memcheck, leaks); big
# transfers scaled down to 2% (1 GiB becomes 20 MiB), waits ten times longer.
TLSFWD_SCALE ?= 0.02
valgrind: deps all
	TLSFWD_VALGRIND=1 TLSFWD_SCALE=$(TLSFWD_SCALE) TLSFWD_BUILD=$(abspath $(B)) \
	    $(PYTEST) -q tests/e2e $(PYTEST_ARGS)

demo: deps all
	@scripts/demo.sh

bench: deps all
	@bench/run.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/tlsfwd
	install -m 0755 $(BINS) $(DESTDIR)$(PREFIX)/bin/
	$(if $(PRELOAD),install -m 0755 $(PRELOAD) $(DESTDIR)$(PREFIX)/lib/tlsfwd/)

clean:
	rm -rf build/obj build/pic build/unit build/san build/clang build/demo build/fuzz build/tlsfwd-* build/libtlsfwd*.a build/libtlsfwd-preload.so build/probe

distclean:
	rm -rf build

# ---- fuzzing: `make fuzz` ----
# libFuzzer targets (tests/fuzz/fuzz_*.c) for the parsers of untrusted and
# operator input, built with clang against the shared sources compiled with
# the same sanitizers into build/fuzz/, and the static wolfSSL.  Each runs for
# FUZZ_SECONDS from its seed corpus (tests/fuzz/corpus/NAME, read only; new
# inputs go to build/fuzz/corpus/NAME); a crash, leak, timeout or failed
# invariant fails the run and leaves the input in build/fuzz/artifacts/.
# FUZZ_TARGETS="x509 fp" runs some of them.  See tests/fuzz/README.md.
FUZZ_SECONDS ?= 60
FUZZ_CC      := clang
FUZZ_B       := build/fuzz
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS  := -std=c11 -D_GNU_SOURCE -O1 -g $(WARN) -fno-strict-aliasing -pthread -Ishared \
                -Iclient -Iserver -Icerts \
                $(WOLF_CFLAGS) $(FUZZ_SAN)
FUZZ_SRC     := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_TARGETS ?= $(FUZZ_SRC:tests/fuzz/fuzz_%.c=%)
FUZZ_BIN     := $(FUZZ_TARGETS:%=$(FUZZ_B)/fuzz_%)
FUZZ_OBJ     := $(patsubst %.c,$(FUZZ_B)/obj/%.o,$(SHARED_SRC) $(CLIENT_SRC) $(SERVER_SRC) $(CERTS_SRC))

$(FUZZ_B)/obj/%.o: %.c $(WOLF_DEP)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<

$(FUZZ_B)/libtlsfwd.a: $(FUZZ_OBJ)
	$(AR) rcs $@ $^

$(FUZZ_B)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_B)/libtlsfwd.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_B)/libtlsfwd.a \
	    $(WOLF_LIBS) $(LDLIBS) $(SERVER_LIBS) $(HTTP_LIBS)

.PHONY: fuzz fuzz-build
fuzz-build: deps $(FUZZ_BIN)

fuzz: fuzz-build
	@tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

-include $(shell find $(FUZZ_B)/obj -name '*.d' 2>/dev/null)

-include $(shell find $(B)/obj $(B)/pic -name '*.d' 2>/dev/null)
