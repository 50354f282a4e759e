# litebrain-proxy — top-level Makefile.  `make`, `make run`, `make test`, `make SAN=1 test`.
# Folder fragments (test/test.mk, bench/bench.mk, k8s/k8s.mk) add their own targets.

SAN        ?= 0
BUILD      ?= $(if $(filter 1,$(SAN)),build-san,build)
CC         ?= cc
PKGS       := libevent jansson libcurl liburing
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm
LLHTTP_DIR := /usr/share/llhttp
LLHTTP_INC := /usr/share/include/llhttp

SAN_FLAGS  := $(if $(filter 1,$(SAN)),-fsanitize=address -fsanitize=undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
OPT        ?= -O2 -g
BASE_FLAGS := $(OPT) $(SAN_FLAGS) -D_GNU_SOURCE -I$(LLHTTP_INC) -I. $(PKG_CFLAGS) -MMD -MP
OUR_FLAGS  := -std=c11 -Wall -Wextra -Werror $(BASE_FLAGS)
LLHTTP_FLAGS := -std=c11 -w $(BASE_FLAGS)
LDFLAGS_ALL := $(SAN_FLAGS) $(LDFLAGS)

MOD_SRCS   := $(wildcard scoring/*.c metrics/*.c k8s/*.c) $(filter-out proxy/px_main.c,$(wildcard proxy/*.c))
MOD_OBJS   := $(MOD_SRCS:%.c=$(BUILD)/%.o)
LLHTTP_OBJS := $(addprefix $(BUILD)/llhttp/,llhttp.o api.o http.o)
LIB        := $(BUILD)/liblitebrain.a
PROXY      := $(BUILD)/litebrain-proxy

.PHONY: all bin run test deps test-deps clean
# `make` first installs missing Debian packages, then builds in a fresh make so pkg-config sees them.
all: deps
	@$(MAKE) --no-print-directory bin
bin: $(PROXY)

$(BUILD)/%.o: %.c | $(BUILD)
	@mkdir -p $(dir $@)
	$(CC) $(OUR_FLAGS) $(CFLAGS) -c $< -o $@
$(BUILD)/llhttp/%.o: $(LLHTTP_DIR)/%.c | $(BUILD)
	@mkdir -p $(dir $@)
	$(CC) $(LLHTTP_FLAGS) $(CFLAGS) -c $< -o $@
$(LIB): $(MOD_OBJS) $(LLHTTP_OBJS)
	rm -f $@ && ar rcs $@ $^
$(PROXY): $(BUILD)/proxy/px_main.o $(LIB)
	$(CC) $^ -o $@ $(LDFLAGS_ALL) $(PKG_LIBS)
$(BUILD):
	@mkdir -p $@

# Debian packages the build, the tests and the benchmarks need; installed only when missing.
DEB_BUILD := build-essential pkg-config curl libevent-dev libjansson-dev libcurl4-openssl-dev liburing-dev node-llhttp
DEB_TEST  := libcmocka-dev prometheus openssl clang libclang-rt-14-dev curl
deps:
	@./scripts/ensure-debs.sh $(DEB_BUILD)
test-deps: deps
	@./scripts/ensure-debs.sh $(DEB_TEST)
	@command -v npm >/dev/null 2>&1 || ./scripts/ensure-debs.sh nodejs npm

run: deps
	@$(MAKE) --no-print-directory $(PROXY) $(BUILD)/ollama-sim
	@./scripts/run.sh $(PROXY) $(BUILD)/ollama-sim

clean:
	rm -rf build build-san

-include $(wildcard */*.mk test/*/*.mk)
-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
