# build/bench_encoder: events per second of the encoder and of one writer
# thread (used by scripts/bench.sh; not a test).
$(BUILD)/bench_encoder: tests/perf/bench_encoder.c $(CORE_LIB)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -o $@ $< $(CORE_LIB) $(LDFLAGS) $(LDLIBS)

all: $(BUILD)/bench_encoder
