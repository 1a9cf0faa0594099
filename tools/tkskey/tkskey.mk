# tools/tkskey/tkskey.mk - tkskey: TKS master keys on any PKCS#11 module.

TKSKEY_OBJS := $(patsubst %.c,$(B)/%.o,$(wildcard tools/tkskey/*.c))
TKSKEY_LIB_OBJS := $(filter-out $(B)/tools/tkskey/tkskey.o,$(TKSKEY_OBJS))
PROGRAMS += $(B)/bin/tkskey

$(TKSKEY_OBJS): EXTRA_CFLAGS += $(PKG_P11_CF)

$(B)/bin/tkskey: $(TKSKEY_OBJS) $(COMMON_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_PROG) -o $@ $^ $(COMMON_LDLIBS) -ldl

TKSKEY_TESTS := $(patsubst tests/unit/tkskey/%.c,$(B)/tests/unit/tkskey/%,\
                  $(wildcard tests/unit/tkskey/test_*.c))
UNIT_TESTS += $(TKSKEY_TESTS)
$(B)/tests/unit/tkskey/test_%: $(B)/tests/unit/tkskey/test_%.o $(TKSKEY_LIB_OBJS) $(COMMON_LIB)
	$(CC) $(LDFLAGS_PROG) -o $@ $^ $(PKG_CMOCKA) $(COMMON_LDLIBS) -ldl

INTEGRATION += tests/integration/60-tkskey.sh
FUZZ_LIBS += $(B)/tools/tkskey/keyfile.o
