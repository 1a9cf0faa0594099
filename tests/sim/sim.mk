# tests/sim/sim.mk - pki-sim, the Dogtag CA/KRA/TKS double (tests/sim/), its cmocka tests
# (tests/unit/sim/) and its integration scripts (tests/integration/1N-sim-*.sh).

SIM_SRCS := tests/sim/form.c tests/sim/p11.c tests/sim/tks.c tests/sim/store.c tests/sim/ca.c \
            tests/sim/kra.c tests/sim/server.c
SIM_OBJS := $(SIM_SRCS:%.c=$(B)/%.o)
SIM_LDLIBS = $(COMMON_LDLIBS) $(PKG_LDAP) -ldl

PROGRAMS += $(B)/bin/pki-sim

$(B)/bin/pki-sim: $(B)/tests/sim/pki_sim.o $(SIM_OBJS) $(COMMON_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_PROG) -o $@ $^ $(SIM_LDLIBS)

# pkcs11.h comes from p11-kit.
$(B)/tests/sim/p11.o $(B)/tests/sim/tks.o $(B)/tests/sim/pki_sim.o: EXTRA_CFLAGS += $(PKG_P11_CF)

SIM_TESTS := $(patsubst tests/unit/sim/%.c,$(B)/tests/unit/sim/%,\
               $(wildcard tests/unit/sim/test_*.c))
UNIT_TESTS += $(SIM_TESTS)

$(B)/tests/unit/sim/test_%: $(B)/tests/unit/sim/test_%.o $(SIM_OBJS) $(COMMON_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_PROG) -o $@ $^ $(PKG_CMOCKA) $(SIM_LDLIBS)

INTEGRATION += $(sort $(wildcard tests/integration/1*-sim-*.sh))
