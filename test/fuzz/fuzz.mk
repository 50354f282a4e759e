# test/fuzz/fuzz.mk — libFuzzer target over the scorer (included by ../../Makefile).
#   make fuzz                    fuzz for FUZZ_SECONDS (default 300) from the seed corpus
#   make fuzz-build              just build $(FUZZ_BIN)
# New inputs go to $(BUILD)/fuzz/corpus (the committed seeds in test/fuzz/corpus stay as they
# are); crashes are written to $(BUILD)/fuzz/ as crash-*, leak-*, timeout-*.

FUZZ_SECONDS ?= 300
FUZZ_CC      ?= clang
FUZZ_DIR     := $(BUILD)/fuzz
FUZZ_BIN     := $(FUZZ_DIR)/fuzz_scoring
FUZZ_SRCS    := test/fuzz/fuzz_scoring.c $(wildcard scoring/*.c)
FUZZ_CFLAGS  := -std=c11 -Wall -Wextra -Werror -g -O1 -D_GNU_SOURCE -I. $(PKG_CFLAGS) \
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_ARGS    := -dict=test/fuzz/json.dict -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
                -artifact_prefix=$(FUZZ_DIR)/

.PHONY: fuzz fuzz-build
$(FUZZ_BIN): $(FUZZ_SRCS) $(wildcard scoring/*.h)
	@mkdir -p $(FUZZ_DIR)/corpus
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SRCS) -o $@ $(PKG_LIBS)

fuzz-build: $(FUZZ_BIN)

fuzz: deps
	@./scripts/ensure-debs.sh clang libclang-rt-14-dev
	@$(MAKE) --no-print-directory $(FUZZ_BIN)
	$(FUZZ_BIN) $(FUZZ_ARGS) -max_total_time=$(FUZZ_SECONDS) $(FUZZ_DIR)/corpus test/fuzz/corpus
