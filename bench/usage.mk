# bench/usage.mk — `make bench-usage`: mx_usage_feed throughput (MB/s) on three response shapes.
# Included by ../Makefile.  Links the scanner's object directly (it depends on nothing else).
# `make bench-usage USAGE_BENCH_ROUNDS=N` runs N fixed rounds per shape instead of timing
# (for `valgrind --tool=callgrind`, whose instruction counts are stable on a noisy machine).

BENCH_USAGE        := $(BUILD)/bench/usage_bench
USAGE_BENCH_ROUNDS ?=

.PHONY: bench-usage
$(BENCH_USAGE): $(BUILD)/bench/usage_bench.o $(BUILD)/metrics/mx_usage.o
	@mkdir -p $(dir $@)
	$(CC) $^ -o $@ $(LDFLAGS_ALL)

bench-usage: deps
	@$(MAKE) --no-print-directory $(BENCH_USAGE)
	@$(BENCH_USAGE) $(USAGE_BENCH_ROUNDS)
