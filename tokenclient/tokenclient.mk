# tokenclient/tokenclient.mk - the desk-side client (tokenclient) and vtoken, the emulated
# CoolKey card. Each program keeps its own section with its own prefix.

# --- VTOKEN_: libvtoken.a (the card, usable in process), bin/vtoken (the card behind vpcd) ---
# Every tokenclient/vtoken/*.c but the program's main goes into the library.
VTOKEN_MAIN    := tokenclient/vtoken/main.c
VTOKEN_SRCS    := $(filter-out $(VTOKEN_MAIN),$(wildcard tokenclient/vtoken/*.c))
VTOKEN_OBJS    := $(VTOKEN_SRCS:%.c=$(B)/%.o)
VTOKEN_LIB     := $(B)/libvtoken.a
VTOKEN_LDLIBS   = $(COMMON_LDLIBS)

LIBS_OUT += $(VTOKEN_LIB)
PROGRAMS += $(B)/bin/vtoken

$(VTOKEN_LIB): $(VTOKEN_OBJS)
	@mkdir -p $(@D)
	rm -f $@
	ar rcs $@ $^

$(B)/bin/vtoken: $(B)/tokenclient/vtoken/main.o $(VTOKEN_LIB) $(COMMON_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_PROG) -o $@ $^ $(VTOKEN_LDLIBS)

# cmocka tests: tests/unit/vtoken/test_*.c
VTOKEN_TESTS := $(patsubst tests/unit/vtoken/%.c,$(B)/tests/unit/vtoken/%,\
                  $(wildcard tests/unit/vtoken/test_*.c))
UNIT_TESTS += $(VTOKEN_TESTS)

$(B)/tests/unit/vtoken/test_%: $(B)/tests/unit/vtoken/test_%.o $(VTOKEN_LIB) $(COMMON_LIB)
	$(CC) $(LDFLAGS_PROG) -o $@ $^ $(PKG_CMOCKA) $(VTOKEN_LDLIBS)

# Test helper of the integration scripts: personalises a card through PC/SC the way a TPS
# does. Built with `make build` because `make integration` builds nothing else.
VTOKEN_PERSO := $(B)/tests/integration/vtoken-personalise
PROGRAMS += $(VTOKEN_PERSO)

$(B)/tests/integration/vtoken-personalise.o: tests/integration/vtoken-personalise.c $(B)/.flags
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) $(PKG_PCSC_CF) -c $< -o $@

$(VTOKEN_PERSO): $(B)/tests/integration/vtoken-personalise.o $(COMMON_LIB)
	$(CC) $(LDFLAGS_PROG) -o $@ $^ $(PKG_PCSC) $(COMMON_LDLIBS)

INTEGRATION += $(sort $(wildcard tests/integration/3*-vtoken-*.sh))

# tests/fuzz/fuzz_vtoken.c drives the card: the library must come before libtpscommon.a on
# the link line, so it is prepended.
FUZZ_LIBS := $(VTOKEN_LIB) $(FUZZ_LIBS)
# --- end VTOKEN_ ---
