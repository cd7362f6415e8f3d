// Command mmtrace traces exec and the memory-layout syscalls of new
// processes with eBPF and says, per process image, whether its brk area
// was squeezed, by which mapping, placed how, and why.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/mmtrace/mmtrace/internal/loader"
)

// maxBackups bounds --backups: each copy costs every syscall on
// the machine, and four already covered a four-thread churn on one CPU.
const maxBackups = 8

// Exit statuses besides a traced command's own.
const (
	exitOK       = 0
	exitError    = 1
	exitUsage    = 2
	exitSqueezed = 3 // --check found a squeezed image or a failed brk
)

const defaultThreshold = 64 << 20

// options are the parsed command line.
type options struct {
	comms       []string
	pids        []uint
	format      string
	output      string
	write       string
	read        string
	svg         string
	btf         string
	threshold   uint64
	check       bool
	verbose     bool
	ringSize    int
	noExecVMAs  bool
	backups     int
	backupsS    string
	backupsOnly bool
	noIA32      bool
	color       string
	command     []string
	args        []string // the whole command line, for recordings
	thresholdS  string
}

// usageError is a mistake on the command line: exit 2 with a hint.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// exitError carries a specific exit status (a traced command's, or 3).
type exitStatus struct{ code int }

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	if isLauncher() {
		runLauncher() // never returns
	}
	os.Exit(mainStatus(os.Args[1:], os.Stdout, os.Stderr))
}

func mainStatus(argv []string, stdout, stderr io.Writer) int {
	opts, err := parseArgs(argv, stderr)
	if errors.Is(err, pflag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "mmtrace: %v\nRun 'mmtrace --help' for usage.\n", err)
		return exitUsage
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if opts.read != "" {
		err = replay(ctx, opts, stdout, stderr)
	} else {
		err = trace(ctx, opts, stdout, stderr)
	}
	var st exitStatus
	switch {
	case errors.As(err, &st):
		return st.code
	case err != nil:
		fmt.Fprintf(stderr, "mmtrace: %v\n", err)
		return exitError
	}
	return exitOK
}

const usageHead = `mmtrace: watch new processes' address spaces form, and say why brk failed.

mmtrace follows each traced process from exec: the ELF loader's mappings,
then every mmap, munmap, mremap, mprotect, brk and personality call, for
64-bit and 32-bit processes. For every process image it reports the
layout (flexible or legacy, and why), the brk heap's headroom, the first
mapping that squeezed the heap (the "squeezer"), how that mapping got its
address, and which mapping blocked each failed brk.

Usage:
  mmtrace [flags] [-- CMD [ARGS...]]
  mmtrace -r FILE [--format text|json] [--output FILE] [--comm NAME] [--pid PID]

Examples:
  During an incident: trace every new bash and its children
    sudo mmtrace --comm bash

  Run one command under tracing from its first exec; exit with its status
    sudo mmtrace -- ./myprog --flag

  Record now, analyse later (the file is created mode 0600)
    sudo mmtrace -w incident.mmt --comm sshd --comm bash
    mmtrace -r incident.mmt                      # no root needed
    mmtrace -r incident.mmt --pid 4242           # one process, with its picture

  In CI on a kernel test VM: exit 3 if any process was squeezed or had a
  failed brk, otherwise with the command's status; JSON for the logs
    sudo mmtrace --check --format json --output mmtrace.json -- ./testsuite

Flags:
`

const usageTail = `
Output goes to stdout (or --output); logs and the line "mmtrace: tracing
..." go to stderr. Exit status: the command's in run mode, 0 otherwise,
3 with --check when something was squeezed, 2 for usage errors, 1 for
other errors. Needs root (or CAP_BPF and CAP_PERFMON) and a kernel with
BTF (5.8+) to trace; replay needs neither.
`

func parseArgs(argv []string, stderr io.Writer) (*options, error) {
	opts := &options{args: append([]string{"mmtrace"}, argv...)}
	fs := pflag.NewFlagSet("mmtrace", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.SortFlags = false
	fs.StringArrayVar(&opts.comms, "comm", nil, "trace new processes whose name after exec is `NAME` (repeatable)")
	fs.UintSliceVar(&opts.pids, "pid", nil, "trace running process `PID` from its current layout, and its children (repeatable)")
	fs.StringVar(&opts.format, "format", "text", "output format: text or json (one object per line)")
	fs.StringVarP(&opts.output, "output", "o", "", "write output to `FILE` instead of stdout")
	fs.StringVarP(&opts.write, "write", "w", "", "record the raw event stream to `FILE` for replay with -r")
	fs.StringVarP(&opts.read, "read", "r", "", "replay a recording from `FILE` instead of tracing")
	fs.StringVar(&opts.thresholdS, "squeeze-threshold", "64MiB", "headroom below `SIZE` counts as squeezed (e.g. 64MiB, 1G, 4096)")
	fs.BoolVar(&opts.check, "check", false, "exit 3 if any traced image was squeezed or had a failed brk")
	fs.StringVar(&opts.svg, "svg", "", "also draw each image's address space over time as SVG to `FILE`")
	fs.StringVar(&opts.color, "color", "auto", "colour the text output: auto, always or never (NO_COLOR is honoured)")
	fs.BoolVarP(&opts.verbose, "verbose", "v", false, "also print the exec-time VMA snapshot records")
	fs.BoolVar(&opts.noIA32, "no-ia32", false, "trace 64-bit syscalls only: cheaper for every other process on the machine, but 32-bit processes are then reported as uncertain")
	fs.StringVar(&opts.btf, "btf", "", "BTF `FILE` for the running kernel when /sys/kernel/btf/vmlinux is missing")
	fs.IntVar(&opts.ringSize, "ring-size", 0, "ring buffer size in `BYTES`, a power of two (default 16 MiB)")
	fs.BoolVar(&opts.noExecVMAs, "no-exec-vmas", false, "read exec-time mappings from /proc even where the kernel can walk them (for testing)")
	_ = fs.MarkHidden("no-exec-vmas")
	fs.BoolVar(&opts.backupsOnly, "backups-only", false, "attach the backup copies but not the programs they back up (for testing)")
	_ = fs.MarkHidden("backups-only")
	fs.StringVar(&opts.backupsS, "backups", "auto", "run `N` backup copies of each kernel program, for kernels that may preempt a task inside one (auto: 2 on such kernels, else 0); raise it if the kernel skipped records")
	fs.Usage = func() {
		fmt.Fprint(stderr, usageHead)
		fmt.Fprint(stderr, fs.FlagUsages())
		fmt.Fprint(stderr, usageTail)
	}
	if err := fs.Parse(argv); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil, err
		}
		return nil, usageError{err.Error()}
	}
	if dash := fs.ArgsLenAtDash(); dash >= 0 {
		if dash > 0 {
			return nil, usageError{fmt.Sprintf("unexpected argument %q before --", fs.Args()[0])}
		}
		opts.command = fs.Args()
		if len(opts.command) == 0 {
			return nil, usageError{"-- needs a command to run"}
		}
	} else if fs.NArg() > 0 {
		return nil, usageError{fmt.Sprintf("unexpected argument %q (put the command to trace after --)", fs.Arg(0))}
	}

	switch opts.format {
	case "text", "json":
	default:
		return nil, usageError{fmt.Sprintf("--format must be text or json, not %q", opts.format)}
	}
	switch opts.color {
	case "auto", "always", "never":
	default:
		return nil, usageError{fmt.Sprintf("--color must be auto, always or never, not %q", opts.color)}
	}
	t, err := parseSize(opts.thresholdS)
	if err != nil {
		return nil, usageError{fmt.Sprintf("--squeeze-threshold: %v", err)}
	}
	opts.threshold = t
	for _, c := range opts.comms {
		if c == "" {
			return nil, usageError{"--comm needs a non-empty name"}
		}
		if len(c) > 15 {
			return nil, usageError{fmt.Sprintf("--comm %q is longer than the kernel's 15-character process names", c)}
		}
	}
	for _, p := range opts.pids {
		if p == 0 || p >= 1<<22 {
			return nil, usageError{fmt.Sprintf("--pid %d is not a process id", p)}
		}
	}
	if opts.ringSize != 0 && (opts.ringSize < 4096 || opts.ringSize&(opts.ringSize-1) != 0) {
		return nil, usageError{fmt.Sprintf("--ring-size %d must be a power of two of at least 4096", opts.ringSize)}
	}
	opts.backups = loader.AutoBackups
	if opts.backupsS != "auto" {
		n, err := strconv.Atoi(opts.backupsS)
		if err != nil || n < 0 || n > maxBackups {
			return nil, usageError{fmt.Sprintf("--backups must be auto or a number from 0 to %d, not %q", maxBackups, opts.backupsS)}
		}
		opts.backups = n
	}
	if opts.read != "" {
		if opts.write != "" || len(opts.command) > 0 || opts.btf != "" {
			return nil, usageError{"-r replays a recording: it cannot be combined with -w, --btf or a command"}
		}
	}
	if len(opts.command) > 0 && len(opts.pids) > 0 {
		return nil, usageError{"use either --pid or a command after --, not both"}
	}
	return opts, nil
}

// parseSize reads sizes like 4096, 64K, 64KiB, 1.5G, 64MB (powers of 1024).
func parseSize(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, errors.New("empty size")
	}
	i := len(t)
	for i > 0 && (t[i-1] < '0' || t[i-1] > '9') && t[i-1] != '.' {
		i--
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	mult := map[string]float64{
		"": 1, "b": 1,
		"k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10,
		"m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20,
		"g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30,
		"t": 1 << 40, "tb": 1 << 40, "tib": 1 << 40,
	}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("unknown unit %q in %q (use K, M, G or T)", unit, s)
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("%q is not a size", s)
	}
	return uint64(f * mult), nil
}
