# metrics/metrics.mk — the exposition dump tool for test/checks/promtool-metrics.sh.
MX_DUMP := $(BUILD)/mx-dump
$(MX_DUMP): $(BUILD)/metrics/tools/mx_dump.o $(LIB)
	$(CC) $^ -o $@ $(LDFLAGS_ALL) $(PKG_LIBS)
test-build: $(MX_DUMP)
