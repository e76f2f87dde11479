# bench.mk - `make bench`: httptape's cost next to the other ways to get an
# HTTP audit log (scripts/bench.sh; docs/benchmarks.md). BENCH_PAIRS,
# BENCH_SECONDS and the other BENCH_* settings pass through the environment.
.PHONY: bench
bench: all
	$(Q)scripts/bench.sh
