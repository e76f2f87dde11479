# bench.mk - `make bench`: httptape's cost next to the other ways to get an
# HTTP audit log (scripts/bench.sh; docs/benchmarks.md). BENCH_PAIRS,
# BENCH_SECONDS, BENCH_GROUPS (e.g. BENCH_GROUPS=nginx_rivals BENCH_SECONDS=3
# BENCH_PAIRS=1 for one short group) and the other BENCH_* settings pass
# through the environment.
.PHONY: bench
bench: all
	$(Q)scripts/bench.sh
