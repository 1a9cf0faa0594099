# Makefile - the only build entry point: GNU make, non-recursive.
#
#   make            build everything (release variant, build/release/)
#   make check      install deps, build, run every test (release + ASan/UBSan, fuzz replay,
#                   integration on loopback)
#   make demo       install deps, build, start the topology on loopback, run an operation
#   make fuzz       libFuzzer campaign, FUZZ_SECONDS per target (default 60)
#   make bench      benchmarks (never run as tests)
#   make lint       cppcheck, banned functions, headers compile on their own
#
# Each component owns a fragment (common/common.mk, libfailover/libfailover.mk, ...) that adds
# its objects, programs and tests to the lists below. Objects go to build/<variant>/<path>.o.

VARIANT ?= release
BUILD_ROOT ?= build
B := $(BUILD_ROOT)/$(VARIANT)
export BUILD_ROOT

ifeq ($(VARIANT),fuzz)
CC := clang
endif
ifeq ($(VARIANT),asan)
CC := gcc
endif
CC ?= gcc

CSTD   = -std=c11 -D_DEFAULT_SOURCE
WARN   = -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes \
         -Wold-style-definition -Wcast-qual -Wwrite-strings -Wvla -Wundef \
         -Wimplicit-fallthrough -Wnull-dereference
HARDEN = -O2 -g -D_FORTIFY_SOURCE=3 -fstack-protector-strong -fstack-clash-protection
SAN    = -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
FUZZF  = -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
         -DCMN_FUZZING=1

ifeq ($(VARIANT),asan)
OPT := $(SAN)
LDSAN := -fsanitize=address,undefined
else ifeq ($(VARIANT),fuzz)
OPT := $(FUZZF)
LDSAN := -fsanitize=address,undefined
else
OPT := $(HARDEN)
LDSAN :=
endif

# Third-party libraries (Debian packages; scripts/deps.sh installs them). Evaluated lazily so
# that `make check` on a fresh machine can install them first.
PKG_SSL     = $(shell pkg-config --libs openssl)
PKG_CURL    = $(shell pkg-config --libs libcurl)
PKG_LDAP    = $(shell pkg-config --libs ldap lber)
PKG_PCSC_CF = $(shell pkg-config --cflags libpcsclite)
PKG_PCSC    = $(shell pkg-config --libs libpcsclite)
PKG_EXPAT   = $(shell pkg-config --libs expat)
PKG_JSON_CF = $(shell pkg-config --cflags json-c)
PKG_JSON    = $(shell pkg-config --libs json-c)
PKG_CMOCKA  = $(shell pkg-config --libs cmocka)
PKG_P11_CF  = $(shell pkg-config --cflags p11-kit-1)
PKG_Z       = -lz
PKG_HTTP    = -lhttp_parser

BASE_CFLAGS = $(CSTD) $(WARN) $(OPT) -I.
CFLAGS_ALL = $(BASE_CFLAGS) -MMD -MP $(EXTRA_CFLAGS)
LDFLAGS_PROG = -pie -Wl,-z,relro,-z,now $(LDSAN)
ifeq ($(VARIANT),fuzz)
LDFLAGS_PROG = $(LDSAN)
endif

# Lists filled by the fragments.
LIBS_OUT      :=   # static/shared libraries
PROGRAMS      :=   # installed programs (build/<variant>/bin/...)
UNIT_TESTS    :=   # cmocka test binaries
FUZZ_TARGETS  :=   # names: tests/fuzz/fuzz_<name>.c, corpus tests/fuzz/corpus/<name>/
INTEGRATION   :=   # tests/integration/NN-topic.sh scripts
BENCHES       :=   # bench scripts or binaries

.PHONY: all deps check check-run build-tests unit integration fuzz fuzz-build lint demo \
        demo-stop bench clean format
all: deps
	@$(MAKE) --no-print-directory build

# The flags stamp: a change of flags rebuilds every object of the variant. It records the
# flags every object shares (not the per-target EXTRA_CFLAGS, which reach this prerequisite
# too and would make the stamp flap between targets).
$(B)/.flags: FORCE
	@mkdir -p $(@D)
	@echo '$(CC) $(BASE_CFLAGS)' | cmp -s - $@ || echo '$(CC) $(BASE_CFLAGS)' > $@
FORCE:

# Keep objects of pattern-built programs (tests) between runs.
.SECONDARY:

# V=1 shows whole command lines.
ifeq ($(V),1)
Q :=
else
Q := @
endif

$(B)/%.o: %.c $(B)/.flags
	@mkdir -p $(@D)
	@$(if $(Q),echo '  CC      $<  [$(VARIANT)]')
	$(Q)$(CC) $(CFLAGS_ALL) -c $< -o $@

include common/common.mk
-include libfailover/libfailover.mk
-include tests/sim/sim.mk
-include tokenclient/tokenclient.mk
-include tokenclient/tc.mk
-include gateway/gateway.mk
-include tools/tkskey/tkskey.mk
-include bench/bench.mk
-include tests/chaos/chaos.mk

FUZZ_BINS   = $(FUZZ_TARGETS:%=$(B)/fuzz/fuzz_%)
REPLAY_BINS = $(FUZZ_TARGETS:%=$(B)/fuzz/replay_%)

.PHONY: build
build: $(LIBS_OUT) $(PROGRAMS)

build-tests: build $(UNIT_TESTS) $(REPLAY_BINS)

deps:
	@sh scripts/deps.sh

# Libfuzzer binaries (VARIANT=fuzz) and plain replay binaries (other variants) from one source.
$(B)/fuzz/fuzz_%: $(B)/tests/fuzz/fuzz_%.o $(FUZZ_LIBS)
	@mkdir -p $(@D)
	$(CC) -fsanitize=fuzzer $(LDSAN) -o $@ $(filter %.o,$^) \
	    -Wl,--start-group $(filter %.a,$^) -Wl,--end-group $(FUZZ_LDLIBS)
$(B)/fuzz/replay_%: $(B)/tests/fuzz/fuzz_%.o $(B)/tests/fuzz/replay_main.o $(FUZZ_LIBS)
	@mkdir -p $(@D)
	$(CC) $(LDSAN) -o $@ $(filter %.o,$^) \
	    -Wl,--start-group $(filter %.a,$^) -Wl,--end-group $(FUZZ_LDLIBS)

# `make check`: everything, from a fresh machine. Unit tests run twice (release and
# ASan/UBSan); fuzz corpora replay under ASan; integration scripts start real daemons.
check: deps
	@$(MAKE) --no-print-directory lint
	@$(MAKE) --no-print-directory VARIANT=release build-tests
	@$(MAKE) --no-print-directory VARIANT=asan build-tests
	@$(MAKE) --no-print-directory check-run

check-run:
	@sh tests/run-tests.sh \
	    $(addprefix release:,$(subst $(B)/,$(BUILD_ROOT)/release/,$(UNIT_TESTS))) \
	    $(addprefix asan:,$(subst $(B)/,$(BUILD_ROOT)/asan/,$(UNIT_TESTS))) \
	    $(addprefix replay:,$(FUZZ_TARGETS)) \
	    $(addprefix integration:,$(INTEGRATION))

unit: build-tests
	@sh tests/run-tests.sh $(addprefix $(VARIANT):,$(UNIT_TESTS))

integration: build
	@sh tests/run-tests.sh $(addprefix integration:,$(INTEGRATION))

fuzz-build:
	@$(MAKE) --no-print-directory VARIANT=fuzz $(FUZZ_TARGETS:%=$(BUILD_ROOT)/fuzz/fuzz/fuzz_%)

FUZZ_SECONDS ?= 60
FUZZ_JOBS ?= 1
fuzz: deps fuzz-build
	@FUZZ_JOBS=$(FUZZ_JOBS) BUILD_ROOT=$(BUILD_ROOT) bash tests/fuzz/run-fuzz.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

bench: deps
	@$(MAKE) --no-print-directory VARIANT=release build
	@sh bench/run-bench.sh $(BENCHES)

demo: deps
	@$(MAKE) --no-print-directory VARIANT=release build
	@sh scripts/demo.sh

demo-stop:
	@sh scripts/demo.sh stop

BANNED = strcpy|strcat|sprintf|vsprintf|gets|strtok|atoi|atol
SRC_DIRS = common gateway libfailover tokenclient tools tests bench
LINT_C = $(shell find $(SRC_DIRS) -name '*.c' -not -path 'tests/fuzz/*' | sort)
LINT_H = $(shell find $(SRC_DIRS) -name '*.h' -not -path 'tests/*' | sort)
lint:
	@! grep -nEw '($(BANNED))[[:space:]]*\(' $(LINT_C) $(LINT_H) \
	    || { echo 'lint: banned function used (see STYLE: use snprintf, cmn_parse_uint)'; exit 1; }
	@for h in $(LINT_H); do \
	    echo "#include \"$$h\"" | $(CC) $(CSTD) $(WARN) -I. -Ilibfailover/include \
	        $(PKG_PCSC_CF) $(PKG_P11_CF) -x c -fsyntax-only - || exit 1; done
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability --inline-suppr \
	    --suppress=missingIncludeSystem -I. -Ilibfailover/include $(LINT_C)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build

-include $(shell find $(B) -name '*.d' 2>/dev/null)
