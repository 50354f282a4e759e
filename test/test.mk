# test/test.mk — the simulator, unit tests and the `make test` driver (included by ../Makefile).

SIM        := $(BUILD)/ollama-sim
SIM_OBJS   := $(patsubst %.c,$(BUILD)/%.o,$(wildcard test/sim/*.c))
UNIT_SRCS  := $(wildcard test/unit/test_*.c)
UNIT_BINS  := $(patsubst test/unit/%.c,$(BUILD)/unit/%,$(UNIT_SRCS))

.PHONY: test test-build
$(SIM): $(SIM_OBJS) $(LLHTTP_OBJS)
	$(CC) $^ -o $@ $(LDFLAGS_ALL) $(PKG_LIBS)
NO_IO_URING := $(BUILD)/no-io-uring
$(NO_IO_URING): test/tools/no-io-uring.c
	@mkdir -p $(dir $@)
	$(CC) $(OUR_FLAGS) $(CFLAGS) $< -o $@ $(LDFLAGS_ALL)
$(BUILD)/unit/%: $(BUILD)/test/unit/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $^ -o $@ $(LDFLAGS_ALL) $(PKG_LIBS) -lcmocka

test-build: $(PROXY) $(SIM) $(UNIT_BINS) $(NO_IO_URING)

# npm test clients live in test/node_modules (lock file committed).
test/node_modules/.installed: test/package.json test/package-lock.json
	cd test && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed

test: test-deps
	@$(MAKE) --no-print-directory test-build test/node_modules/.installed
	@LB_BUILD=$(BUILD) SAN=$(SAN) ./test/run.sh
