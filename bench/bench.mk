# bench/bench.mk — `make simulate` (the scaling simulator on the Azure code trace),
# `make bench` (proxy vs nginx vs direct), `make soak`.  Included by ../Makefile.

SCALESIM      := $(BUILD)/scalesim
SCALESIM_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(wildcard bench/scalesim*.c))
SIMULATE_ARGS ?=

.PHONY: simulate
$(SCALESIM): $(SCALESIM_OBJS) $(LIB)
	$(CC) $^ -o $@ $(LDFLAGS_ALL) $(PKG_LIBS)

simulate: deps
	@$(MAKE) --no-print-directory $(SCALESIM)
	@$(SCALESIM) $(SIMULATE_ARGS)

# the simulator's check (test/checks/scalesim.sh) needs the binary
test-build: $(SCALESIM)

LBLOAD := $(BUILD)/lbload
$(LBLOAD): $(BUILD)/bench/lbload.o
	$(CC) $^ -o $@ $(LDFLAGS_ALL) -lm

.PHONY: bench soak
# nginx and wrk come from Debian; the proxy, the Ollama simulator and the client are ours.
bench: deps
	@./scripts/ensure-debs.sh nginx-light wrk
	@$(MAKE) --no-print-directory $(PROXY) $(SIM) $(LBLOAD)
	@mkdir -p $(BUILD)/bench
	@$(MAKE) --no-print-directory bench-scoring | tee $(BUILD)/bench/scoring.txt
	@$(MAKE) --no-print-directory bench-usage | tee $(BUILD)/bench/usage.txt
	@LB_BUILD=$(BUILD) BENCH_SCORING=$(BUILD)/bench/scoring.txt BENCH_USAGE=$(BUILD)/bench/usage.txt ./bench/bench.sh

SOAK_REQUESTS ?= 1000000
soak: deps
	@$(MAKE) --no-print-directory $(PROXY) $(SIM) $(LBLOAD)
	@LB_BUILD=$(BUILD) SOAK_REQUESTS=$(SOAK_REQUESTS) ./bench/soak.sh

.PHONY: bench-profile
# perf comes from Debian's linux-perf; profile.sh says in one line when it cannot count here
bench-profile: deps
	@./scripts/ensure-debs.sh nginx-light wrk linux-perf
	@$(MAKE) --no-print-directory $(PROXY) $(SIM)
	@LB_BUILD=$(BUILD) ./bench/profile.sh

.PHONY: bench-instructions
# callgrind comes from Debian's valgrind; instructions.sh counts both servers under it
bench-instructions: deps
	@./scripts/ensure-debs.sh nginx-light valgrind
	@$(MAKE) --no-print-directory $(PROXY) $(SIM) $(LBLOAD)
	@LB_BUILD=$(BUILD) ./bench/instructions.sh
