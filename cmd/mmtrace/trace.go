package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	"github.com/mmtrace/mmtrace/internal/events"
	"github.com/mmtrace/mmtrace/internal/hostabi"
	"github.com/mmtrace/mmtrace/internal/layout"
	"github.com/mmtrace/mmtrace/internal/loader"
	"github.com/mmtrace/mmtrace/internal/procfs"
	"github.com/mmtrace/mmtrace/internal/record"
)

const (
	// drainInterval is how long records may wait in the ring: the kernel
	// submits without waking us (waking per record costs 1-12 us each).
	drainInterval = 2 * time.Millisecond
	lostInterval  = 100 * time.Millisecond
	flushInterval = time.Second
)

// trace runs a live session until Ctrl-C or, in run mode, the command's end.
func trace(ctx context.Context, opts *options, stdout, stderr io.Writer) (err error) {
	// A --pid with no address space is refused before anything is
	// opened or attached; readProcImage checks again once attached.
	for _, p := range opts.pids {
		if err := procfs.CheckTraceable(uint32(p)); err != nil {
			return err
		}
	}
	outs, err := openOutputs(ctx, opts, stdout, stderr)
	if err != nil {
		return err
	}
	defer outs.close(&err)

	// A kernel that runs no 32-bit programs needs no 32-bit coverage, and
	// the 64-bit-only tracepoints cost every other process far less.
	noIA32 := opts.noIA32
	lockPath, _ := loader.LockPathPossible(loader.Config{BTFPath: opts.btf, LockPath: opts.lockPath})
	if lockPath && noIA32 {
		// Both ABIs are seen at the mmap lock at no cost to anyone.
		noIA32 = false
		fmt.Fprintf(stderr, "mmtrace: note: --no-ia32 changes nothing on this kernel: memory calls are traced at the mmap lock, where 32-bit calls cost no other process anything\n")
	}
	if !noIA32 && !lockPath {
		if ok, why := hostabi.CanRunIA32(); !ok {
			noIA32 = true
			fmt.Fprintf(stderr, "mmtrace: note: %v, so no 32-bit process can exist: tracing 64-bit syscalls only, as --no-ia32 does\n", why)
		}
	}

	cfg := loader.Config{
		Comms:       opts.comms,
		RingSize:    opts.ringSize,
		BTFPath:     opts.btf,
		NoExecVMAs:  opts.noExecVMAs,
		Backups:     opts.backups,
		BackupsOnly: opts.backupsOnly,
		NoIA32:      noIA32,
		LockPath:    opts.lockPath,
		TraceAll:    len(opts.comms) == 0 && len(opts.pids) == 0 && len(opts.command) == 0,
	}
	for _, p := range opts.pids {
		cfg.PIDs = append(cfg.PIDs, uint32(p))
	}

	// Run mode: start CMD held before its exec, so its pid is in the
	// filter before the first exec we want to see.
	var child *launched
	if len(opts.command) > 0 {
		child, err = launch(opts.command, opts.runAs)
		if err != nil {
			return err
		}
		defer child.abandon()
		cfg.PIDs = append(cfg.PIDs, uint32(child.pid()))
	}

	attachStart := time.Now()
	tr, err := loader.Open(cfg)
	if err != nil {
		return err
	}
	defer tr.Close()
	attached := time.Since(attachStart)

	// --pid: the processes' layouts now, read once attached so that
	// nothing they do from here on is missed, and recorded with -w so
	// that a replay starts from the same facts.
	var procImages []layout.ProcImage
	for _, p := range opts.pids {
		img, err := procfs.ReadImage(uint32(p))
		if err != nil {
			return err
		}
		procImages = append(procImages, img)
	}

	// Tracing goes ahead: now existing output files may be truncated.
	if err := outs.commit(); err != nil {
		return err
	}

	legacyVA := procfs.LegacyVALayout()
	s := newSession(opts, outs, stderr, legacyVA)
	s.noIA32 = noIA32
	s.mntNS = procfs.OwnMountNS()
	if opts.write != "" {
		h := record.NewHeader()
		h.Args = opts.args
		h.Options = map[string]string{
			"legacy_va_layout":  boolString(legacyVA),
			"squeeze_threshold": strconv.FormatUint(opts.threshold, 10),
			"exec_vmas":         boolString(tr.Features.ExecVMAs),
			"ia32":              boolString(!noIA32),
			"mnt_ns":            strconv.FormatUint(uint64(s.mntNS), 10),
		}
		if len(procImages) > 0 {
			b, err := json.Marshal(procImages)
			if err != nil {
				return fmt.Errorf("record the /proc layouts: %w", err)
			}
			h.Options[procImagesOption] = string(b)
		}
		if s.rec, err = record.NewWriter(outs.rec, h); err != nil {
			return fmt.Errorf("-w %s: %w", opts.write, err)
		}
		defer func() {
			if cerr := s.rec.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("finish recording: %w", cerr)
			}
		}()
	}
	if opts.lockPath && !tr.Features.LockPath {
		fmt.Fprintf(stderr, "mmtrace: note: %s\n", tr.Features.PathReason)
	}
	if !tr.Features.ExecVMAs {
		fmt.Fprintf(stderr, "mmtrace: note: %s\n", tr.Features.ExecVMAsReason)
		s.execVMAsFromProc = true
	}
	if !tr.Features.Searches {
		fmt.Fprintf(stderr, "mmtrace: note: this kernel has no mmap:vm_unmapped_area tracepoint: "+
			"top-down and bottom-up placement are inferred from each image's layout\n")
	}
	if !tr.Features.ChangeOrder {
		fmt.Fprintf(stderr, "mmtrace: note: this kernel has no mmap_lock:mmap_lock_released tracepoint (6.1+): "+
			"memory calls of racing threads are taken in the order their records arrive\n")
	}
	if tr.Features.Backups > 0 || opts.backups > 0 {
		fmt.Fprintf(stderr, "mmtrace: note: %s\n", tr.Features.BackupsReason)
	}
	s.missesBefore = func() { s.pollMisses(tr, monotonicNow()) }
	s.lossesOf = func(pid uint32, upTo int64) uint64 {
		n, err := tr.NewLossesOf(pid, upTo)
		if err != nil {
			fmt.Fprintf(stderr, "mmtrace: %v\n", err)
		}
		return n
	}
	for _, p := range procImages {
		s.seed(p)
	}

	// Run mode: from here a second signal ends the wait for CMD instead
	// of mmtrace itself. Set before "tracing" is printed and CMD released:
	// whoever signals us on seeing either must find the run-mode handling.
	awaitingCommand.Store(child != nil)
	defer awaitingCommand.Store(false)
	fmt.Fprintf(stderr, "mmtrace: tracing %s (attached in %d ms)\n", describeTargets(opts), attached.Milliseconds())
	if child != nil {
		if ctx.Err() != nil {
			// Never started: the launcher is abandoned.
			return interruption(ctx, " before %s started", opts.command[0])
		}
		if err := child.release(); err != nil {
			return err
		}
	}

	if err := s.consume(ctx, tr, child); err != nil {
		return err
	}
	found, err := s.finish()
	if err != nil {
		return err
	}
	if opts.verbose {
		for _, l := range tr.SkipStats() {
			fmt.Fprintf(stderr, "mmtrace: %s\n", l)
		}
	}
	if n, err := tr.SkipsCovered(); err != nil {
		fmt.Fprintf(stderr, "mmtrace: %v\n", err)
	} else if n > 0 {
		fmt.Fprintf(stderr, "mmtrace: note: backup copies did %d events the kernel skipped our programs for "+
			"(another task was preempted inside one on the same CPU)\n", n)
	}
	if opts.check && found {
		return exitStatus{opts.checkStatus}
	}
	if child != nil {
		if !child.exited() {
			return interruption(ctx, ": %s (pid %d) had not exited when mmtrace stopped (on a second signal, or %v after the first): "+
				"it is left running, untraced", opts.command[0], child.pid(), signalGrace)
		}
		if st := child.status(); st != 0 {
			return exitStatus{st}
		}
	}
	return nil
}

// consume drains the ring buffer on a short timer until the context ends
// or the launched command has exited, then drains once more. In run mode
// a signal is passed on to the command, whose end is then awaited: for
// signalGrace, or until a second signal.
func (s *session) consume(ctx context.Context, tr *loader.Tracer, child *launched) error {
	var (
		rec       ringbuf.Record
		stopping  bool
		lastLost  = time.Now()
		lastFlush = time.Now()
		done      = ctx.Done()
		giveUp    <-chan time.Time
	)
	var childDone <-chan struct{}
	if child != nil {
		childDone = child.done
	}
	// The first signal ends the run, or in run mode goes on to the
	// command, once.
	first := func() {
		sig, _ := signalOf(ctx)
		if child == nil || sig == 0 {
			stopping = true
			return
		}
		done = nil
		child.forward(sig)
		giveUp = time.After(signalGrace)
	}
	tr.SetDeadline(time.Now().Add(drainInterval))
	for {
		err := tr.ReadInto(&rec)
		if err == nil {
			s.handleLive(rec.RawSample)
			continue
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("read ring buffer: %w", err)
		}
		// The ring is empty now: show what we have.
		if err := s.out.Flush(); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
		now := time.Now()
		if stopping || now.Sub(lastLost) >= lostInterval {
			s.pollLost(tr)
			lastLost = now
		}
		if s.rec != nil && now.Sub(lastFlush) >= flushInterval {
			if err := s.rec.Flush(); err != nil && s.recErr == nil {
				s.recErr = err
				fmt.Fprintf(s.stderr, "mmtrace: recording stopped: %v\n", err)
			}
			lastFlush = now
		}
		if stopping {
			return nil
		}
		select {
		case <-done:
			first()
		case <-laterSignals(ctx):
			if done != nil {
				first()
			}
			stopping = true
		case <-giveUp:
			stopping = true
		case <-childDone:
			stopping = true
		default:
		}
		if stopping {
			awaitingCommand.Store(false)
		}
		tr.SetDeadline(time.Now().Add(drainInterval))
	}
}

// pollLost turns the kernel's drop counters into lost records, which are
// recorded and modelled like any other.
func (s *session) pollLost(tr *loader.Tracer) {
	losses, err := tr.NewLosses()
	if err != nil {
		fmt.Fprintf(s.stderr, "mmtrace: %v\n", err)
	}
	now := monotonicNow()
	for _, l := range losses {
		s.handle(events.EncodeLost(l.PID, l.Count, now))
	}
	s.pollMisses(tr, now)
	s.order.Tick(now)
}

// pollMisses turns programs the kernel skipped (recursion misses) into a
// lost record for no one process: every live image becomes uncertain.
func (s *session) pollMisses(tr *loader.Tracer, now uint64) {
	n, err := tr.NewMisses()
	if err != nil && !s.missErr {
		s.missErr = true
		fmt.Fprintf(s.stderr, "mmtrace: %v\n", err)
	}
	if n > 0 {
		s.handle(events.EncodeLost(0, n, now))
	}
}

// monotonicNow is the kernel records' clock (bpf_ktime_get_ns).
func monotonicNow() uint64 {
	var t unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &t)
	return uint64(t.Nano())
}

func describeTargets(opts *options) string {
	var parts []string
	for _, c := range opts.comms {
		parts = append(parts, "comm "+c)
	}
	for _, p := range opts.pids {
		parts = append(parts, "pid "+strconv.FormatUint(uint64(p), 10))
	}
	if len(opts.command) > 0 {
		parts = append(parts, strings.Join(opts.command, " "))
	}
	if len(parts) == 0 {
		return "every new process"
	}
	return strings.Join(parts, ", ") + " and children"
}

func boolString(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
