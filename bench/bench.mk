# bench/bench.mk - the tpsgw benchmarks of `make bench` (never run as tests): full operations
# per second, per-message overhead, idle-session memory, back-end failures under load. Each
# prints its figures and the command that produced them; docs/PERFORMANCE.md has the results.
# (libfailover/libfailover.mk adds its own bench/failover/bench_failover to BENCHES.)

BENCH_TPS_HELPERS := $(B)/bench/tpsgw/msg_overhead $(B)/bench/tpsgw/idle_sessions

BENCHES += bench/tpsgw/ops.sh bench/tpsgw/msg_overhead.sh bench/tpsgw/idle_sessions.sh \
           bench/tpsgw/failover.sh

# The helpers are built before the benchmarks run (as libfailover.mk does for its own).
bench: $(BENCH_TPS_HELPERS)

$(B)/bench/tpsgw/msg_overhead: $(B)/bench/tpsgw/msg_overhead.o $(VTOKEN_LIB) $(COMMON_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_PROG) -o $@ $^ $(COMMON_LDLIBS)

$(B)/bench/tpsgw/idle_sessions: $(B)/bench/tpsgw/idle_sessions.o $(COMMON_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_PROG) -o $@ $^ $(COMMON_LDLIBS)
