# mmtrace
#   make            build ./mmtrace (no clang needed: BPF objects are committed)
#   sudo make test  install what tests need, check generated files, run every test
#   make generate   rebuild the BPF object and its Go bindings (clang, libbpf-dev)
#   make bench      overhead against a bare run and strace, side by side
#   make vmtest     the kernel tests on other kernels under qemu
#                   (KERNELS="6.1 7.3", VMTEST_RUN=regexp for go test -run)

GO ?= go
BPF2GO_CC ?= clang
BPF_OUT ?= .
export BPF2GO_CC BPF_OUT
FUZZTIME ?= 10s
KERNELS ?= 5.10 6.1 6.12 7.3

.PHONY: all build generate check-generated deps test test-go test-scripts test-cross fuzz bench vmtest clean mutate

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o mmtrace ./cmd/mmtrace

# The object depends on clang's version, the bindings do not: record the
# version beside them, so check-generated knows which it can compare.
generate:
	$(GO) generate ./bpf
	$(BPF2GO_CC) --version | head -1 > bpf/clang-version

# Regenerate into a scratch copy and compare with what is committed: the
# Go bindings always, the object when this clang is the one that made it
# (another clang emits other bytes for the same source).
check-generated:
	@tmp=$$(mktemp -d) && trap 'rm -rf $$tmp' EXIT && \
	BPF_OUT=$$tmp $(GO) generate ./bpf >/dev/null || exit 1; \
	cmp -s $$tmp/mmtrace_bpfel.go bpf/mmtrace_bpfel.go || { echo "bpf/mmtrace_bpfel.go is stale: run 'make generate' and commit it" >&2; exit 1; }; \
	have=$$($(BPF2GO_CC) --version | head -1); made=$$(cat bpf/clang-version); \
	if [ "$$have" = "$$made" ]; then \
		cmp -s $$tmp/mmtrace_bpfel.o bpf/mmtrace_bpfel.o || { echo "bpf/mmtrace_bpfel.o is stale: run 'make generate' and commit it" >&2; exit 1; }; \
		echo "generated BPF files are up to date"; \
	else \
		echo "generated Go bindings are up to date; the object was made by $$made, not $$have, so it is not compared"; \
	fi

deps:
	@bash scripts/install-deps.sh

test: deps check-generated test-go test-scripts test-cross fuzz

test-go:
	$(GO) vet ./...
	$(GO) test -count=1 ./...

# Recordings are portable: replay (and everything else) builds for arm64.
test-cross:
	GOARCH=arm64 CGO_ENABLED=0 $(GO) build ./...

# The VM harness's package unpacking, on synthetic trees of each layout.
test-scripts:
	bash vmtest/kernel-tree_test.sh

fuzz:
	FUZZTIME=$(FUZZTIME) bash internal/record/fuzz.sh
	$(GO) test -run='^$$' -fuzz=FuzzDecode -fuzztime=$(FUZZTIME) ./internal/events

bench: build
	bash bench/run.sh

# The kernel tests and the end-to-end tests of the built (static) binary,
# on each kernel in a qemu VM. Fixtures are compiled on the host first.
FIXTURES ?= $(CURDIR)/.build/fixtures
vmtest: build
	@bash scripts/install-deps.sh vm
	MMTRACE_FIXTURES=$(FIXTURES) $(GO) test -count=1 -run '^TestBuildFixtures$$' ./cmd/mmtrace
	MMTRACE_BIN=$(CURDIR)/mmtrace MMTRACE_FIXTURES=$(FIXTURES) VMTEST_PASSENV="MMTRACE_FIXTURES MMTRACE_TEST_PATHS" \
		bash vmtest/run.sh -k "$(KERNELS)" --go-test "./internal/loader ./cmd/mmtrace" $(VMTEST_FLAGS) \
		$(if $(VMTEST_RUN),-- -run '$(VMTEST_RUN)')

clean:
	rm -rf mmtrace .build

# Mutation testing of one package (minutes; not part of make test):
#   make mutate PKG=./internal/layout
#   make mutate PKG=./internal/layout MUTATE_FLAGS='-E proc\.go -E tree\.go'
# Survivors that cannot change behaviour are listed in the package's MUTANTS.md.
PKG ?= ./internal/layout
MUTATE_FLAGS ?=
mutate:
	$(GO) run github.com/go-gremlins/gremlins/cmd/gremlins@v0.6.0 unleash --timeout-coefficient 30 $(MUTATE_FLAGS) $(PKG)

# Install for a distribution package or /usr/local: the binary, the man
# page and the bash and zsh completions, under $(DESTDIR)$(PREFIX).
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
.PHONY: install
install: build
	install -D -m 0755 mmtrace $(DESTDIR)$(BINDIR)/mmtrace
	install -D -m 0644 doc/mmtrace.1 $(DESTDIR)$(MANDIR)/man1/mmtrace.1
	install -D -m 0644 contrib/completion/mmtrace.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/mmtrace
	install -D -m 0644 contrib/completion/_mmtrace $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_mmtrace
