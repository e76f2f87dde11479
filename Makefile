# httptape: one non-recursive Makefile; every output goes under build/.
#   make            library + CLI
#   make test       install deps, build, run every suite; ends with "N passed, N failed"
#   make demo       install deps, build, run the FastAPI example under httptape
#   make asan       the same code built with ASan+UBSan under build/asan/ (and
#                   HT_CHECK_FIELDS: the event writer checks the parser's
#                   field list against the head, as the fuzzer does)
#   make install    PREFIX (/usr/local) and DESTDIR as usual (mk/install.mk);
#                   make uninstall; make deb (mk/deb.mk)
#   V=1             show the commands

CC      ?= cc
BUILD   ?= build
CSTD    := -std=c11 -D_GNU_SOURCE
WARN    := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
OPT     ?= -O2 -g
CFLAGS  += $(CSTD) $(WARN) $(OPT) -fPIC -fvisibility=hidden -Isrc
LDLIBS  := -ljansson -lpthread -lm

ifeq ($(V),1)
Q :=
else
Q := @
endif

# Generated headers (version.h from mk/version.mk, paths.h from
# mk/install.mk) live in $(GEN). Their rules run every time (FORCE) but
# rewrite the file only when its text changes, so only what includes it
# is rebuilt, and only then.
GEN     := $(BUILD)/gen
CFLAGS  += -I$(GEN)
VERSION_TXT := $(GEN)/version
VERSION_H   := $(GEN)/version.h
# $(call write_if_changed,FILE,COMMAND): FILE holds what COMMAND prints.
define write_if_changed
	@mkdir -p $(dir $(1))
	$(Q){ $(2); } >$(1).tmp && { cmp -s $(1).tmp $(1) && rm -f $(1).tmp || mv -f $(1).tmp $(1); }
endef

CORE_SRC    := $(wildcard src/core/*.c)
PRELOAD_SRC := $(wildcard src/preload/*.c)
CLI_SRC     := $(wildcard src/cli/*.c)
CAPTURE_SRC := $(wildcard src/capture/*.c)
COLLECTOR_SRC := $(wildcard src/collector/*.c)
UNIT_SRC    := $(wildcard tests/unit/test_*.c)

CORE_OBJ    := $(CORE_SRC:%.c=$(BUILD)/%.o)
PRELOAD_OBJ := $(PRELOAD_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ     := $(CLI_SRC:%.c=$(BUILD)/%.o)
CAPTURE_OBJ := $(CAPTURE_SRC:%.c=$(BUILD)/%.o)
COLLECTOR_OBJ := $(COLLECTOR_SRC:%.c=$(BUILD)/%.o)
UNIT_BIN    := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

CORE_LIB    := $(BUILD)/libhtcore.a
CAPTURE_LIB := $(BUILD)/libhtcapture.a
COLLECTOR_LIB := $(BUILD)/libhtcollector.a
CLI_LIB     := $(BUILD)/libhtcli.a
SO          := $(BUILD)/libhttptape.so
CLI         := $(BUILD)/httptape

.PHONY: all test unit demo asan fuzz clean deps FORCE
all: $(SO) $(CLI) $(UNIT_BIN)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

$(CORE_LIB): $(CORE_OBJ)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

# What capture front ends write and the collector reads (src/capture).
$(CAPTURE_LIB): $(CAPTURE_OBJ)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

# The collector process's loop (src/collector), linked into the CLI.
$(COLLECTOR_LIB): $(COLLECTOR_OBJ)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

# The CLI's modules but main, so unit tests can link the ones they test
# (select.c, sketch.c, ...); the archive pulls in only what is referenced.
$(CLI_LIB): $(filter-out $(BUILD)/src/cli/main.o,$(CLI_OBJ))
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

# The .so exports only the hooked libc names (src/preload/exports.map).
$(SO): $(PRELOAD_OBJ) $(CAPTURE_LIB) $(CORE_LIB) src/preload/exports.map
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -shared -o $@ $(PRELOAD_OBJ) $(CAPTURE_LIB) $(CORE_LIB) \
	    -Wl,--version-script=src/preload/exports.map -Wl,-z,now -Wl,-z,relro \
	    $(LDFLAGS) $(LDLIBS) -ldl

$(CLI): $(CLI_OBJ) $(COLLECTOR_LIB) $(CORE_LIB) $(CAPTURE_LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -o $@ $(CLI_OBJ) $(COLLECTOR_LIB) $(CORE_LIB) $(CAPTURE_LIB) \
	    -Wl,--export-dynamic-symbol=httptape_no_capture $(LDFLAGS) $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(CLI_LIB) $(COLLECTOR_LIB) $(CORE_LIB) $(CAPTURE_LIB) tests/unit/tap.h
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(CLI_LIB) $(COLLECTOR_LIB) $(CORE_LIB) $(CAPTURE_LIB) $(LDFLAGS) $(LDLIBS)

deps:
	$(Q)scripts/install-deps.sh

# Tests run against the normal build; scripts/run-tests.sh prints the final tally.
test: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)scripts/run-tests.sh

unit: all
	$(Q)scripts/run-tests.sh unit

demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)scripts/demo.sh

asan:
	$(Q)$(MAKE) --no-print-directory BUILD=build/asan CC=clang \
	    OPT="-O1 -g -DHT_CHECK_FIELDS -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" \
	    LDFLAGS="-fsanitize=address,undefined" $(BUILD)/asan/httptape \
	    $(UNIT_SRC:tests/unit/%.c=build/asan/tests/%)

# libFuzzer over the core (clang). make fuzz FUZZ_SECONDS=1800 for a long run;
# the corpus (seeded from tests/cases) persists in build/fuzz/corpus.
FUZZ_SECONDS ?= 60
FUZZ_FLAGS := $(CSTD) -O1 -g -Isrc -DHT_CHECK_FIELDS -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
$(BUILD)/fuzz/fuzz_conn: tests/fuzz/fuzz_conn.c $(CORE_SRC) $(wildcard src/core/*.h)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)clang $(FUZZ_FLAGS) -o $@ tests/fuzz/fuzz_conn.c $(CORE_SRC) $(LDLIBS)

$(BUILD)/fuzz/mkseed: tests/fuzz/mkseed.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) -O2 -o $@ $<

fuzz: $(BUILD)/fuzz/fuzz_conn $(BUILD)/fuzz/mkseed
	$(Q)mkdir -p $(BUILD)/fuzz/corpus
	$(Q)for d in tests/cases/*/; do $(BUILD)/fuzz/mkseed $$d $(BUILD)/fuzz/corpus/seed-$$(basename $$d); done
	$(Q)$(BUILD)/fuzz/fuzz_conn -max_total_time=$(FUZZ_SECONDS) -max_len=16384 -timeout=10 \
	    -print_final_stats=1 $(BUILD)/fuzz/corpus

clean:
	rm -rf $(BUILD)

# Further targets live in mk/*.mk (bench, attach, ...), one file per concern.
-include $(sort $(wildcard mk/*.mk))

-include $(CORE_OBJ:.o=.d) $(PRELOAD_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(CAPTURE_OBJ:.o=.d) $(COLLECTOR_OBJ:.o=.d)
