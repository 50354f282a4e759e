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
