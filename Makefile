# mmtrace: `make` builds, `make test` runs every test (kernel tests need root).
GO ?= go
BPF2GO_CC ?= clang
BPF2GO_CFLAGS ?= -O2 -g -Wall -Werror
export BPF2GO_CC BPF2GO_CFLAGS

.PHONY: all build generate test test-unit check-generated clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o mmtrace ./cmd/mmtrace

generate:
	$(GO) generate ./bpf

clean:
	rm -f mmtrace
