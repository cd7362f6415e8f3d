// Package bpf holds mmtrace's kernel programs (mmtrace.bpf.c) and the Go
// bindings bpf2go generates for them. The generated files are committed so
// that `go build` needs no clang; `make generate` rebuilds them.
package bpf

//go:generate go tool bpf2go -cc $BPF2GO_CC -cflags $BPF2GO_CFLAGS -target amd64 -output-dir $BPF_OUT -go-package bpf -type event_kind -type event_abi -type event_header -type mem_event -type mem_path_event -type exec_event -type vma_event -type execve_event -type task_event -type lost_event Mmtrace mmtrace.bpf.c -- -I/usr/include/x86_64-linux-gnu
