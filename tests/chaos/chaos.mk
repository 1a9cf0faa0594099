# tests/chaos/chaos.mk - the chaos run and its consistency audit (docs/RELIABILITY.md).
# `make chaos` runs the full length (CHAOS_CARDS enrollments, one instance of each pair killed
# and restarted in rotation, then the audit); tests/integration/90-chaos-short.sh is the short
# version, in `make check` (and alone: `make chaos-short`). chaos-card (a reader of vtoken state files) is built with the programs.

CHAOS_CARD := $(B)/bin/chaos-card
PROGRAMS += $(CHAOS_CARD)
INTEGRATION += tests/integration/90-chaos-short.sh

$(CHAOS_CARD): $(B)/tests/chaos/chaos_card.o $(COMMON_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_PROG) -o $@ $^ $(COMMON_LDLIBS)

CHAOS_CARDS ?= 1000
CHAOS_CONCURRENCY ?= 20
CHAOS_KILL_INTERVAL ?= 5
CHAOS_MAX_SECONDS ?= 1500
CHAOS_BACKEND_DELAY ?= 100

.PHONY: chaos
chaos: deps
	@$(MAKE) --no-print-directory VARIANT=release build
	@BUILD=$(BUILD_ROOT)/release sh tests/chaos/chaos.sh --cards $(CHAOS_CARDS) \
	    --concurrency $(CHAOS_CONCURRENCY) --kill-interval $(CHAOS_KILL_INTERVAL) \
	    --max-seconds $(CHAOS_MAX_SECONDS) --backend-delay $(CHAOS_BACKEND_DELAY) \
	    --out $(BUILD_ROOT)/chaos

.PHONY: chaos-short
chaos-short: deps
	@$(MAKE) --no-print-directory VARIANT=release build
	@sh tests/run-tests.sh integration:tests/integration/90-chaos-short.sh
