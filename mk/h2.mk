# h2.mk - libnghttp2 (libnghttp2-dev), for HPACK in the HTTP/2 parser
# (src/core/h2.c): its header-block inflater only, none of its sessions.
# Linked, as zlib and libbrotli are (decode.mk), into what runs the core: the
# CLI (collector, attach, replay), the unit tests, the fuzzer and the encoder
# benchmark; never into libhttptape.so. Needs libnghttp2 1.47 or later (Debian 12
# has 1.52): before it, raising the decoder's table bound made it demand a size
# update the encoder need not send (h2.c, HPACK_TABLE_MAX).
H2_LIBS := -lnghttp2
$(CLI) $(UNIT_BIN): LDLIBS += $(H2_LIBS)
$(BUILD)/fuzz/fuzz_conn: LDLIBS += $(H2_LIBS)
$(BUILD)/bench_encoder: LDLIBS += $(H2_LIBS)
