# bench/scoring.mk — `make bench-scoring`: sc_score throughput on three body shapes (MB/s),
# with jansson's json_loadb on the same bytes for comparison.  Included by ../Makefile.
# Links the scoring objects directly, so it does not wait on the rest of the library.

SC_OBJS        := $(patsubst %.c,$(BUILD)/%.o,$(wildcard scoring/*.c))
BENCH_SCORING  := $(BUILD)/bench/scoring_bench

.PHONY: bench-scoring
$(BENCH_SCORING): $(BUILD)/bench/scoring_bench.o $(SC_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $^ -o $@ $(LDFLAGS_ALL) $(PKG_LIBS)

bench-scoring: deps
	@$(MAKE) --no-print-directory $(BENCH_SCORING)
	@$(BENCH_SCORING)
