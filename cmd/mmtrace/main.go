// Command mmtrace traces exec and the memory-layout syscalls of new
// processes with eBPF and says, per process image, whether its brk area
// was squeezed, by which mapping, placed how, and why.
package main

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/spf13/pflag"

	"github.com/mmtrace/mmtrace/internal/exitstatus"
	"github.com/mmtrace/mmtrace/internal/interrupt"
	"github.com/mmtrace/mmtrace/internal/kernelreport"
	"github.com/mmtrace/mmtrace/internal/launch"
	"github.com/mmtrace/mmtrace/internal/loader"
	"github.com/mmtrace/mmtrace/internal/ringsize"
	"github.com/mmtrace/mmtrace/internal/size"
	"github.com/mmtrace/mmtrace/internal/version"
)

// maxBackups bounds --backups: each copy costs every syscall on
// the machine, and four already covered a four-thread churn on one CPU.
const maxBackups = 8

// options are the parsed command line.
type options struct {
	comms       []string
	pids        []uint
	pids32      []uint32 // pids, checked, as the kernel's pid_t
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
	ringSizeS   string
	user        string
	runAs       *launch.Credential // -u, resolved
	checkStatus int
	version     bool
	probeKernel bool
	noExecVMAs  bool
	backups     int
	backupsS    string
	backupsOnly bool
	noIA32      bool
	lockPath    bool
	color       string
	command     []string
	args        []string // the whole command line, for recordings
	thresholdS  string
}

// usageError is a mistake on the command line: exit 2 with a hint.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func main() {
	if launch.IsLauncher() {
		launch.RunLauncher() // never returns
	}
	os.Exit(mainStatus(os.Args[1:], os.Stdout, os.Stderr))
}

func mainStatus(argv []string, stdout, stderr io.Writer) int {
	opts, err := parseArgs(argv, stderr)
	if errors.Is(err, pflag.ErrHelp) {
		return exitstatus.OK
	}
	if err != nil {
		fmt.Fprintf(stderr, "mmtrace: %v\nRun 'mmtrace --help' for usage.\n", err)
		return exitstatus.Usage
	}

	if opts.version {
		fmt.Fprint(stdout, version.Text())
		return exitstatus.OK
	}

	if opts.probeKernel {
		return probeKernel(opts, stdout, stderr)
	}

	ctx, stop := interrupt.Catch(context.Background())
	defer stop()

	if opts.read != "" {
		err = replay(ctx, opts, stdout, stderr)
	} else {
		err = trace(ctx, opts, stdout, stderr)
	}
	code, print := exitstatus.Of(err)
	if print {
		fmt.Fprintf(stderr, "mmtrace: %v\n", err)
	}
	return code
}

// probeKernel is --probe-kernel: what this kernel lets mmtrace see, as
// text or one JSON line; exit 1 when mmtrace cannot trace here at all.
func probeKernel(opts *options, stdout, stderr io.Writer) int {
	r := loader.Probe(loader.Config{
		BTFPath: opts.btf, NoIA32: opts.noIA32, LockPath: opts.lockPath, NoExecVMAs: opts.noExecVMAs, Backups: opts.backups,
	})
	write := kernelreport.WriteText
	if opts.format == "json" {
		write = kernelreport.WriteJSON
	}
	if err := write(stdout, r); err != nil {
		fmt.Fprintf(stderr, "mmtrace: write output: %v\n", err)
		return exitstatus.Failure
	}
	if refusal := kernelreport.Refusal(r); refusal != "" {
		fmt.Fprintf(stderr, "mmtrace: %s\n", refusal)
		return exitstatus.Failure
	}
	return exitstatus.OK
}

// --help's text around the flag list: plain text, so that it reads as it
// prints (doc/mmtrace.1 says the same at more length).
var (
	//go:embed usage_head.txt
	usageHead string
	//go:embed usage_tail.txt
	usageTail string
)

// newFlagSet defines every flag into opts. The man page and the shell
// completions are tested against it (doc_test.go).
func newFlagSet(opts *options, stderr io.Writer) *pflag.FlagSet {
	fs := pflag.NewFlagSet("mmtrace", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.SortFlags = false
	fs.StringArrayVar(&opts.comms, "comm", nil, "trace new processes whose name after exec is `NAME` (repeatable)")
	fs.UintSliceVarP(&opts.pids, "pid", "p", nil, "trace running process `PID` from its current layout, and its children (repeatable)")
	fs.StringVarP(&opts.user, "user", "u", "", "run the command after -- as `USER` (name or uid): its uid, gid and groups, and HOME, USER, LOGNAME")
	fs.StringVar(&opts.format, "format", "text", "output format: `text|json` (json is one object per line)")
	fs.StringVarP(&opts.output, "output", "o", "", "write output to `FILE` instead of stdout")
	fs.StringVarP(&opts.write, "write", "w", "", "record the raw event stream to `FILE` for replay with -r")
	fs.StringVarP(&opts.read, "read", "r", "", "replay a recording from `FILE` instead of tracing")
	fs.StringVar(&opts.thresholdS, "squeeze-threshold", "64MiB", "headroom below `SIZE` counts as squeezed (e.g. 64MiB, 1G, 4096)")
	fs.BoolVar(&opts.check, "check", false, "exit 3 if any traced image was squeezed or had a failed brk")
	fs.IntVar(&opts.checkStatus, "check-status", exitstatus.Squeezed, "with --check, exit with `N` (1-255) instead of 3; implies --check")
	fs.StringVar(&opts.svg, "svg", "", "also draw each image's address space over time as SVG to `FILE`")
	fs.StringVar(&opts.color, "color", "auto", "when to colour the text output: `auto|always|never` (NO_COLOR is honoured)")
	fs.BoolVarP(&opts.verbose, "verbose", "v", false, "also print the exec-time VMA snapshot records")
	fs.BoolVar(&opts.noIA32, "no-ia32", false, "trace 64-bit syscalls only: cheaper for every other process on the machine, but 32-bit processes are then reported as uncertain")
	fs.StringVar(&opts.btf, "btf", "", "BTF `FILE` for the running kernel when /sys/kernel/btf/vmlinux is missing")
	fs.StringVar(&opts.ringSizeS, "ring-size", "16MiB", "ring buffer `SIZE`, a power of two from 16KiB to 2GiB (e.g. 64MiB)")
	fs.StringVar(&opts.backupsS, "backups", "auto", "run `N` backup copies of each kernel program, for kernels that may preempt a task inside one (auto: 2 on such kernels, else 0); raise it if the kernel skipped records")
	fs.BoolVar(&opts.probeKernel, "probe-kernel", false, "report what this kernel lets mmtrace see, and exit (1 if mmtrace cannot trace here)")
	fs.BoolVar(&opts.version, "version", false, "print mmtrace's version and the Go version it was built with, and exit")
	fs.BoolVar(&opts.noExecVMAs, "no-exec-vmas", false, "read exec-time mappings from /proc even where the kernel can walk them (for testing)")
	_ = fs.MarkHidden("no-exec-vmas")
	fs.BoolVar(&opts.lockPath, "lock-path", false, "trace memory calls at the mmap lock (6.1+), not at the syscall tracepoints: other processes' syscalls then pay nothing, but execve and personality calls, and calls that fail before they lock, are not seen (a prototype)")
	fs.BoolVar(&opts.backupsOnly, "backups-only", false, "attach the backup copies but not the programs they back up (for testing)")
	_ = fs.MarkHidden("backups-only")
	fs.Usage = func() {
		fmt.Fprint(stderr, usageHead)
		fmt.Fprint(stderr, fs.FlagUsages())
		fmt.Fprint(stderr, usageTail)
	}
	return fs
}

// parseArgs reads the command line into options, refusing what cannot
// work before anything is opened.
func parseArgs(argv []string, stderr io.Writer) (*options, error) {
	opts := &options{args: append([]string{"mmtrace"}, argv...)}
	fs := newFlagSet(opts, stderr)
	if err := fs.Parse(argv); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil, err
		}
		return nil, usageError{err.Error()}
	}
	if opts.version {
		return opts, nil
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
	if err := checkValues(opts, fs, stderr); err != nil {
		return nil, err
	}
	if err := checkCombination(opts); err != nil {
		return nil, err
	}
	return opts, nil
}

// checkValues checks each flag's value and converts those that need it.
func checkValues(opts *options, fs *pflag.FlagSet, stderr io.Writer) error {
	if opts.format != "text" && opts.format != "json" {
		return usageError{fmt.Sprintf("--format must be text or json, not %q", opts.format)}
	}
	if opts.color != "auto" && opts.color != "always" && opts.color != "never" {
		return usageError{fmt.Sprintf("--color must be auto, always or never, not %q", opts.color)}
	}
	t, err := size.Parse(opts.thresholdS)
	if err != nil {
		return usageError{fmt.Sprintf("--squeeze-threshold: %v", err)}
	}
	opts.threshold = t
	for _, c := range opts.comms {
		if c == "" {
			return usageError{"--comm needs a non-empty name"}
		}
		if len(c) > 15 {
			return usageError{fmt.Sprintf("--comm %q is longer than the kernel's 15-character process names", c)}
		}
	}
	for _, p := range opts.pids {
		if p == 0 || p >= 1<<22 {
			return usageError{fmt.Sprintf("--pid %d is not a process id", p)}
		}
		opts.pids32 = append(opts.pids32, uint32(p))
	}
	ring, err := size.Parse(opts.ringSizeS)
	if err != nil {
		return usageError{fmt.Sprintf("--ring-size: %v", err)}
	}
	if err := ringsize.Check(ring); err != nil {
		return usageError{fmt.Sprintf("--ring-size %s %v", opts.ringSizeS, err)}
	}
	opts.ringSize = int(ring)
	if ring > ringsize.Huge && opts.read == "" && !opts.probeKernel {
		fmt.Fprintf(stderr, "mmtrace: warning: --ring-size %s locks %d MiB of kernel memory for the whole run\n",
			opts.ringSizeS, ring>>20)
	}
	opts.backups = loader.AutoBackups
	if opts.backupsS != "auto" {
		n, err := strconv.Atoi(opts.backupsS)
		if err != nil || n < 0 || n > maxBackups {
			return usageError{fmt.Sprintf("--backups must be auto or a number from 0 to %d, not %q", maxBackups, opts.backupsS)}
		}
		opts.backups = n
	}
	if fs.Changed("check-status") {
		if opts.checkStatus < 1 || opts.checkStatus > 255 {
			return usageError{fmt.Sprintf("--check-status must be an exit status from 1 to 255, not %d", opts.checkStatus)}
		}
		opts.check = true
	}
	if opts.btf != "" {
		if err := loader.CheckBTFFile(opts.btf); err != nil {
			return usageError{err.Error()}
		}
	}
	return nil
}

// checkCombination refuses flags that do not go together, and resolves
// -u's user.
func checkCombination(opts *options) (err error) {
	if opts.probeKernel && (opts.read != "" || opts.write != "" || opts.output != "" || len(opts.command) > 0 || opts.user != "") {
		return usageError{"--probe-kernel reports on the running kernel to stdout: it cannot be combined with -r, -w, -o, -u or a command"}
	}
	if opts.read != "" && (opts.write != "" || len(opts.command) > 0 || opts.btf != "") {
		return usageError{"-r replays a recording: it cannot be combined with -w, --btf or a command"}
	}
	if len(opts.command) > 0 && len(opts.pids) > 0 {
		return usageError{"use either --pid or a command after --, not both"}
	}
	if opts.user != "" {
		if len(opts.command) == 0 {
			return usageError{"-u runs the command after -- as another user: give one (mmtrace -u USER -- CMD)"}
		}
		if opts.runAs, err = launch.LookupCredential(opts.user); err != nil {
			return usageError{err.Error()}
		}
	}
	return nil
}
