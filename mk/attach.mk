# attach.mk - `httptape attach` (eBPF through libbpf) and the static server example.
#
# The kernel side is built the libbpf-bootstrap way, everything under $(BUILD)/attach/:
#   vmlinux.h         bpftool btf dump of $(VMLINUX_BTF)   (the running kernel's BTF)
#   httptape.bpf.o    clang -target bpf -g -O2 (CO-RE: runs on other kernels with BTF)
#   httptape.skel.h   bpftool gen skeleton: the object embedded in the CLI
# src/attach/attach.c and src/cli/cmd_attach.c join the CLI (not the preload .so)
# with -lbpf -lelf -lz and -DHT_HAVE_ATTACH. Without clang, bpftool, the libbpf
# headers or kernel BTF, make says so once and builds everything else;
# `httptape attach` then says attach is unavailable in this build.

BPF_CLANG   ?= clang
LLVM_STRIP  ?= llvm-strip
BPFTOOL     ?= $(firstword $(shell command -v bpftool 2>/dev/null) $(wildcard /usr/sbin/bpftool /sbin/bpftool))
VMLINUX_BTF ?= /sys/kernel/btf/vmlinux
BPF_ARCH    := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/' -e 's/ppc64le/powerpc/' \
                   -e 's/s390x/s390/' -e 's/riscv64/riscv/' -e 's/loongarch64/loongarch/')

ATTACH_GEN  := $(BUILD)/attach
ATTACH_OBJ  := $(patsubst %.c,$(BUILD)/%.o,$(filter-out %.bpf.c,$(wildcard src/attach/*.c)))
ATTACH_SKEL := $(ATTACH_GEN)/httptape.skel.h

# What is missing, if anything (empty: attach is built).
ATTACH_MISSING := $(strip \
    $(if $(shell command -v $(BPF_CLANG) 2>/dev/null),,clang) \
    $(if $(BPFTOOL),,bpftool) \
    $(if $(wildcard /usr/include/bpf/libbpf.h /usr/local/include/bpf/libbpf.h),,libbpf-dev) \
    $(if $(wildcard /usr/include/libelf.h /usr/local/include/libelf.h),,libelf-dev) \
    $(if $(wildcard $(VMLINUX_BTF)),,kernel-BTF($(VMLINUX_BTF))))

# cmd_attach.o is compiled one way or the other: rebuild it when that changes
# (the toolchain installed after a first build).
ATTACH_STAMP := $(ATTACH_GEN)/.config
ATTACH_STATE := $(if $(ATTACH_MISSING),missing $(ATTACH_MISSING),built)
$(shell mkdir -p $(ATTACH_GEN) && { [ "$$(cat $(ATTACH_STAMP) 2>/dev/null)" = "$(ATTACH_STATE)" ] || \
    echo "$(ATTACH_STATE)" >$(ATTACH_STAMP); })
$(BUILD)/src/cli/cmd_attach.o: $(ATTACH_STAMP)

ifeq ($(ATTACH_MISSING),)

CLI_OBJ += $(ATTACH_OBJ)
$(CLI): $(ATTACH_OBJ)
$(CLI): LDLIBS += -lbpf -lelf -lz
$(ATTACH_OBJ) $(BUILD)/src/cli/cmd_attach.o: CFLAGS += -DHT_HAVE_ATTACH -I$(ATTACH_GEN)
# The skeleton must exist before the loader compiles (order-only: the .d
# files track it afterwards).
$(ATTACH_OBJ): | $(ATTACH_SKEL)

$(ATTACH_GEN)/vmlinux.h:
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  BTF     $@")
	$(Q)$(BPFTOOL) btf dump file $(VMLINUX_BTF) format c >$@.tmp && mv $@.tmp $@

$(ATTACH_GEN)/httptape.bpf.o: src/attach/httptape.bpf.c src/attach/httptape.h src/capture/record.h $(ATTACH_GEN)/vmlinux.h
	@$(if $(Q),echo "  BPF     $@")
	$(Q)$(BPF_CLANG) -g -O2 -target bpf -D__TARGET_ARCH_$(BPF_ARCH) -Wall -Werror \
	    -I$(ATTACH_GEN) -Isrc -c $< -o $@
	$(Q)$(LLVM_STRIP) -g $@ 2>/dev/null || true

$(ATTACH_SKEL): $(ATTACH_GEN)/httptape.bpf.o
	@$(if $(Q),echo "  SKEL    $@")
	$(Q)$(BPFTOOL) gen skeleton $< name httptape_bpf >$@.tmp && mv $@.tmp $@

else

$(info attach: not built ($(ATTACH_MISSING) missing; scripts/install-deps.sh installs them): `httptape attach` will say it is unavailable)

endif

# ---- examples/static-server: a statically linked HTTP/1.1 server ----

STATIC_SERVER := $(BUILD)/static-server
all: $(STATIC_SERVER)

$(STATIC_SERVER): examples/static-server/server.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@ (static)")
	$(Q)$(CC) $(CSTD) $(WARN) -O2 -static -o $@ $< -lpthread
