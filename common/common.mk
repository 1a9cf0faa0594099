# common/common.mk - libtpscommon.a: code shared by gateway, tokenclient, tools and sims.
# Every common/*.c goes into the library; every tests/unit/common/test_*.c is a cmocka test.

COMMON_SRCS := $(wildcard common/*.c)
COMMON_OBJS := $(COMMON_SRCS:%.c=$(B)/%.o)
COMMON_LIB  := $(B)/libtpscommon.a
COMMON_LDLIBS = $(PKG_SSL) $(PKG_HTTP) $(PKG_Z) -lpthread

LIBS_OUT += $(COMMON_LIB)

$(COMMON_LIB): $(COMMON_OBJS)
	@mkdir -p $(@D)
	rm -f $@
	ar rcs $@ $^

COMMON_TESTS := $(patsubst tests/unit/common/%.c,$(B)/tests/unit/common/%,\
                  $(wildcard tests/unit/common/test_*.c))
UNIT_TESTS += $(COMMON_TESTS)

$(B)/tests/unit/common/test_%: $(B)/tests/unit/common/test_%.o $(COMMON_LIB)
	$(CC) $(LDFLAGS_PROG) -o $@ $^ $(PKG_CMOCKA) $(COMMON_LDLIBS)

# Fuzz targets of common/ parsers: tests/fuzz/fuzz_<name>.c with corpus/<name>/.
FUZZ_TARGETS += $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_LIBS    += $(COMMON_LIB)
FUZZ_LDLIBS  += $(COMMON_LDLIBS)
