# libfailover/libfailover.mk - libfailover.a/.so (+ .pc), failover-check, cmocka tests with
# their loopback test servers, the endpoint-list fuzz target, the benchmark, integration.
# libfailover depends on libc, pthreads and libcurl only; tests and bench also use OpenSSL.

FO_VERSION  := 1.0.0
FO_SRCS     := $(wildcard libfailover/src/*.c)
FO_OBJS     := $(FO_SRCS:%.c=$(B)/%.o)
FO_LIB      := $(B)/libfailover.a
FO_SO       := $(B)/libfailover.so
FO_PC       := $(B)/libfailover.pc
FO_LDLIBS    = $(PKG_CURL) -lpthread
FO_PREFIX   ?= /usr/local

LIBS_OUT += $(FO_LIB) $(FO_SO) $(FO_PC)
PROGRAMS += $(B)/bin/failover-check

$(FO_OBJS): EXTRA_CFLAGS += -fPIC -fvisibility=hidden -Ilibfailover/include

$(FO_LIB): $(FO_OBJS)
	@mkdir -p $(@D)
	rm -f $@
	ar rcs $@ $^

$(FO_SO): $(FO_OBJS) libfailover/libfailover.map
	@mkdir -p $(@D)
	$(CC) -shared -Wl,-soname,libfailover.so.1 -Wl,--version-script=libfailover/libfailover.map \
	    -Wl,-z,relro,-z,now -Wl,--no-undefined $(LDSAN) -o $@ $(FO_OBJS) $(FO_LDLIBS)

$(FO_PC): libfailover/libfailover.pc.in
	@mkdir -p $(@D)
	sed -e 's|@PREFIX@|$(FO_PREFIX)|' -e 's|@VERSION@|$(FO_VERSION)|' $< > $@

# failover-check: the admin's CLI, linked statically with libfailover.
$(B)/libfailover/tools/failover-check.o: EXTRA_CFLAGS += -Ilibfailover/include
$(B)/bin/failover-check: $(B)/libfailover/tools/failover-check.o $(FO_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_PROG) -o $@ $^ $(FO_LDLIBS)

# Unit tests: every tests/unit/libfailover/test_*.c, linked with the loopback test servers.
FO_TEST_SUPPORT := $(B)/tests/unit/libfailover/fo_testsrv.o
FO_TESTS := $(patsubst tests/unit/libfailover/%.c,$(B)/tests/unit/libfailover/%,\
              $(wildcard tests/unit/libfailover/test_*.c))
UNIT_TESTS += $(FO_TESTS)

$(B)/tests/unit/libfailover/%.o: EXTRA_CFLAGS += -Ilibfailover/include -Ilibfailover/src
$(FO_TESTS): $(B)/tests/unit/libfailover/test_%: $(B)/tests/unit/libfailover/test_%.o \
             $(FO_TEST_SUPPORT) $(FO_LIB)
	$(CC) $(LDFLAGS_PROG) -o $@ $^ $(PKG_CMOCKA) $(FO_LDLIBS) $(PKG_SSL)

# Fuzz target tests/fuzz/fuzz_fo_list.c (picked up by common.mk's wildcard).
$(B)/tests/fuzz/fuzz_fo_list.o: EXTRA_CFLAGS += -Ilibfailover/include -Ilibfailover/src
FUZZ_LIBS   += $(FO_LIB)
FUZZ_LDLIBS += $(PKG_CURL) -lpthread

# Benchmark (make bench): bench/failover/bench_failover, built before the bench runs.
FO_BENCH := $(B)/bench/failover/bench_failover
BENCHES += $(FO_BENCH)
$(B)/bench/failover/%.o: EXTRA_CFLAGS += -Ilibfailover/include -Itests/unit/libfailover
$(FO_BENCH): $(B)/bench/failover/bench_failover.o $(FO_TEST_SUPPORT) $(FO_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_PROG) -o $@ $^ $(FO_LDLIBS) $(PKG_SSL)
bench: $(FO_BENCH)

INTEGRATION += tests/integration/20-failover-check.sh
