// Package bpf holds mmtrace's kernel programs (mmtrace.bpf.c) and the Go
// bindings bpf2go generates for them. The generated files are committed so
// that `go build` needs no clang; `make generate` (or `go generate ./bpf`
// alone) rebuilds them. bpf2go takes its compiler from $BPF2GO_CC (default
// clang); $BPF_OUT, when set, sends the output elsewhere (make
// check-generated compares such a copy with the committed files).
package bpf

//go:generate go tool bpf2go -target bpfel -output-dir $BPF_OUT -go-package bpf -type event_kind -type event_abi -type args_flag -type program_slot -type traced_block -type event_header -type mem_event -type mem_path_event -type exec_event -type vma_event -type vma_batch -type execve_event -type task_event -type lost_event Mmtrace mmtrace.bpf.c -- -O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu
