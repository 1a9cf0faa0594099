# tokenclient/tc.mk - tokenclient, the desk-side client: every tokenclient/*.c but main.c goes
# into libtokenclient.a; the program links it with libvtoken.a (the --emulate cards).

TC_SRCS := $(filter-out tokenclient/main.c,$(wildcard tokenclient/*.c))
TC_OBJS := $(TC_SRCS:%.c=$(B)/%.o)
TC_LIB  := $(B)/libtokenclient.a
TC_LDLIBS = $(PKG_PCSC) $(PKG_CURL) $(PKG_EXPAT) $(COMMON_LDLIBS)

LIBS_OUT += $(TC_LIB)
PROGRAMS += $(B)/bin/tokenclient

$(TC_OBJS) $(B)/tokenclient/main.o: EXTRA_CFLAGS += $(PKG_PCSC_CF)
$(B)/tests/unit/tokenclient/%.o: EXTRA_CFLAGS += $(PKG_PCSC_CF)

$(TC_LIB): $(TC_OBJS)
	@mkdir -p $(@D)
	rm -f $@
	ar rcs $@ $^

$(B)/bin/tokenclient: $(B)/tokenclient/main.o $(TC_LIB) $(VTOKEN_LIB) $(COMMON_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_PROG) -o $@ $^ $(TC_LDLIBS)

TC_TESTS := $(patsubst tests/unit/tokenclient/%.c,$(B)/tests/unit/tokenclient/%,\
              $(wildcard tests/unit/tokenclient/test_*.c))
UNIT_TESTS += $(TC_TESTS)
$(B)/tests/unit/tokenclient/test_%: $(B)/tests/unit/tokenclient/test_%.o $(TC_LIB) \
        $(VTOKEN_LIB) $(COMMON_LIB)
	$(CC) $(LDFLAGS_PROG) -o $@ $^ $(PKG_CMOCKA) $(TC_LDLIBS)

FUZZ_LIBS += $(TC_LIB)
FUZZ_LDLIBS += $(PKG_PCSC) $(PKG_CURL) $(PKG_EXPAT)
