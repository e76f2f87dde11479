# decode.mk - zlib and libbrotli (zlib1g-dev, libbrotli-dev), for decoding
# gzip, deflate and br body excerpts (src/core/decode.c). Linked into what
# formats events: the CLI (collector, attach, replay), the unit tests, the
# fuzzer and the encoder benchmark; never into libhttptape.so, which formats
# nothing and should load no library the app did not ask for.
DECODE_LIBS := -lz -lbrotlidec
$(CLI) $(UNIT_BIN): LDLIBS += $(DECODE_LIBS)
$(BUILD)/fuzz/fuzz_conn: LDLIBS += $(DECODE_LIBS)
$(BUILD)/bench_encoder: LDLIBS += $(DECODE_LIBS)
