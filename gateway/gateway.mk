# gateway/gateway.mk - tpsgw: every gateway/*.c but main.c goes into libtpsgw.a; the daemon is
# main.o + libtpsgw.a + libfailover.a + libtpscommon.a. Every tests/unit/gateway/test_*.c is a
# cmocka test linked with the same libraries; tests/integration/4*-tpsgw-*.sh are integration
# scripts, helped by the test client tests/integration/tps-testclient.c.

GW_SRCS := $(filter-out gateway/main.c,$(wildcard gateway/*.c))
GW_OBJS := $(GW_SRCS:%.c=$(B)/%.o)
GW_LIB  := $(B)/libtpsgw.a
GW_BIN  := $(B)/bin/tpsgw
# libfailover.a exists once libfailover/libfailover.mk does (built by its own fragment).
GW_FO_LIB := $(if $(wildcard libfailover/libfailover.mk),$(B)/libfailover.a)
GW_LDLIBS = $(PKG_LDAP) $(PKG_CURL) $(PKG_JSON) $(COMMON_LDLIBS)

LIBS_OUT += $(GW_LIB)
ifneq ($(wildcard gateway/main.c),)
PROGRAMS += $(GW_BIN)
endif

# libfailover's public header lives under its include/ directory.
$(B)/gateway/%.o $(B)/tests/unit/gateway/%.o $(B)/tests/integration/%.o: \
    CFLAGS_ALL += -Ilibfailover/include

$(GW_LIB): $(GW_OBJS)
	@mkdir -p $(@D)
	rm -f $@
	ar rcs $@ $^

$(GW_BIN): $(B)/gateway/main.o $(GW_LIB) $(GW_FO_LIB) $(COMMON_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_PROG) -o $@ $^ $(GW_LDLIBS)

GW_TESTS := $(patsubst tests/unit/gateway/%.c,$(B)/tests/unit/gateway/%,\
              $(wildcard tests/unit/gateway/test_*.c))
UNIT_TESTS += $(GW_TESTS)

$(B)/tests/unit/gateway/test_%: $(B)/tests/unit/gateway/test_%.o $(GW_LIB) $(GW_FO_LIB) \
                                $(COMMON_LIB)
	$(CC) $(LDFLAGS_PROG) -o $@ $^ $(PKG_CMOCKA) $(GW_LDLIBS) $(PKG_HTTP) $(PKG_Z) -lpthread

INTEGRATION += $(sort $(wildcard tests/integration/4*-tpsgw-*.sh))
# the HA scripts (docs/ha.md): the whole topology of scripts/topology.sh
INTEGRATION += $(sort $(wildcard tests/integration/8*-ha-*.sh))
# the desk client against tpsgw (PC/SC, card pulled, load, terminal): needs the daemon
INTEGRATION += $(sort $(wildcard tests/integration/5*-tokenclient-*.sh))

# test_session drives an in-process vtoken card: libvtoken.a comes before libtpscommon.a.
$(B)/tests/unit/gateway/test_session: $(B)/tests/unit/gateway/test_session.o $(GW_LIB) \
                                      $(VTOKEN_LIB) $(GW_FO_LIB) $(COMMON_LIB)
	$(CC) $(LDFLAGS_PROG) -o $@ $^ $(PKG_CMOCKA) $(GW_LDLIBS) $(PKG_HTTP) $(PKG_Z) -lpthread

# The integration tests' TPS client (tests/integration/tps-testclient.c): in-process vtoken
# card, HTTP or HTTPS. Built with `make build` since `make integration` builds nothing else.
GW_TESTCLIENT := $(B)/tests/integration/tps-testclient
PROGRAMS += $(GW_TESTCLIENT)

$(GW_TESTCLIENT): $(B)/tests/integration/tps-testclient.o $(VTOKEN_LIB) $(COMMON_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_PROG) -o $@ $^ $(COMMON_LDLIBS)

# test_enroll_card enrolls an in-process vtoken card end to end.
$(B)/tests/unit/gateway/test_enroll_card.o: CFLAGS_ALL += -DTPS_TEST_WITH_VTOKEN
$(B)/tests/unit/gateway/test_enroll_card: $(B)/tests/unit/gateway/test_enroll_card.o $(GW_LIB) \
                                          $(VTOKEN_LIB) $(GW_FO_LIB) $(COMMON_LIB)
	$(CC) $(LDFLAGS_PROG) -o $@ $^ $(PKG_CMOCKA) $(GW_LDLIBS) $(PKG_HTTP) $(PKG_Z) -lpthread

# admin-server: the admin API and console on their own, for tests/integration/7*-admin-*.sh.
ADMIN_SERVER := $(B)/bin/admin-server
PROGRAMS += $(ADMIN_SERVER)
$(ADMIN_SERVER): $(B)/tests/integration/admin-server.o $(GW_LIB) $(GW_FO_LIB) $(COMMON_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_PROG) -o $@ $^ $(GW_LDLIBS) -lpthread
INTEGRATION += $(sort $(wildcard tests/integration/7*-admin-*.sh))

# The gateway's parsers of backend answers are fuzzed too (tests/fuzz/fuzz_{ca,kra}_resp.c,
# fuzz_xmlmini.c): link libtpsgw and its libraries into every fuzz target.
FUZZ_LIBS += $(GW_LIB) $(GW_FO_LIB)
FUZZ_LDLIBS += $(GW_LDLIBS)
