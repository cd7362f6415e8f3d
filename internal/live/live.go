// Package live is the source of a live run: it loads and attaches the
// kernel side and feeds the pipeline the records of the kernel's ring
// buffer, with the kernel's drop counters turned into lost records. It is
// the only source that needs cilium/ebpf; replay (pipeline.Recording)
// builds without it.
package live

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	"github.com/mmtrace/mmtrace/internal/events"
	"github.com/mmtrace/mmtrace/internal/hostabi"
	"github.com/mmtrace/mmtrace/internal/loader"
	"github.com/mmtrace/mmtrace/internal/pipeline"
	"github.com/mmtrace/mmtrace/internal/procfs"
	"github.com/mmtrace/mmtrace/internal/ringsize"
)

const (
	// drainInterval is how long records may wait in the ring: the kernel
	// submits without waking us (waking per record costs 1-12 us each).
	drainInterval = 2 * time.Millisecond
	lostInterval  = 100 * time.Millisecond
	flushInterval = time.Second
)

// Options say what to trace.
type Options struct {
	Loader   loader.Config // the kernel side; its PIDs include run mode's command
	ProcPIDs []uint32      // --pid: start from their layouts in /proc
	Verbose  bool          // -v: how often each program was skipped, at the end
	Stderr   io.Writer     // notes about the kernel
}

// Source is the kernel's ring buffer: records as the traced processes
// make them, with the kernel's drop counters turned into lost records.
// It implements pipeline.Source.
type Source struct {
	tr       *loader.Tracer
	opts     Options
	facts    pipeline.Facts
	attached time.Duration
	stop     <-chan struct{}
	missErr  bool
	received uint64 // records the kernel delivered, for the advice on lost ones
	recBytes uint64 // the ring's bytes they took
}

// Open loads and attaches the kernel side, then reads the --pid
// processes' layouts from /proc: once attached, so that nothing they do
// from then on is missed. It says on Stderr what this kernel cannot show.
func Open(opts Options) (*Source, error) {
	// A kernel that runs no 32-bit programs needs no 32-bit coverage, and
	// the 64-bit-only tracepoints cost every other process far less.
	lockPath, _ := loader.LockPathPossible(opts.Loader)
	if lockPath && opts.Loader.NoIA32 {
		// Both ABIs are seen at the mmap lock at no cost to anyone.
		opts.Loader.NoIA32 = false
		fmt.Fprintf(opts.Stderr, "mmtrace: note: --no-ia32 changes nothing with --lock-path: memory calls are traced at the mmap lock, where 32-bit calls cost no other process anything\n")
	}
	if !opts.Loader.NoIA32 && !lockPath {
		if ok, why := hostabi.CanRunIA32(); !ok {
			opts.Loader.NoIA32 = true
			fmt.Fprintf(opts.Stderr, "mmtrace: note: %v, so no 32-bit process can exist: tracing 64-bit syscalls only, as --no-ia32 does\n", why)
		}
	}
	start := time.Now()
	tr, err := loader.Open(opts.Loader)
	if err != nil {
		return nil, err
	}
	s := &Source{tr: tr, opts: opts, attached: time.Since(start)}
	s.facts = pipeline.Facts{
		LegacyVALayout: procfs.LegacyVALayout(),
		ExecVMAs:       tr.Features.ExecVMAs,
		NoIA32:         opts.Loader.NoIA32,
		LockPath:       tr.Features.LockPath,
		MountNS:        procfs.OwnMountNS(),
	}
	for _, pid := range opts.ProcPIDs {
		img, err := procfs.ReadImage(pid)
		if err != nil {
			tr.Close()
			return nil, err
		}
		s.facts.ProcImages = append(s.facts.ProcImages, img)
	}
	s.noteFeatures()
	return s, nil
}

func (s *Source) noteFeatures() {
	f, w := s.tr.Features, s.opts.Stderr
	if s.opts.Loader.LockPath && !f.LockPath {
		fmt.Fprintf(w, "mmtrace: note: %s\n", f.PathReason)
	}
	if !f.ExecVMAs {
		fmt.Fprintf(w, "mmtrace: note: %s\n", f.ExecVMAsReason)
	}
	if !f.Searches {
		fmt.Fprintf(w, "mmtrace: note: this kernel has no mmap:vm_unmapped_area tracepoint: "+
			"top-down and bottom-up placement are inferred from each image's layout\n")
	}
	if !f.ChangeOrder {
		fmt.Fprintf(w, "mmtrace: note: this kernel has no mmap_lock:mmap_lock_released tracepoint (6.1+): "+
			"memory calls of racing threads are taken in the order their records arrive\n")
	}
	if f.Backups > 0 || s.opts.Loader.Backups > 0 {
		fmt.Fprintf(w, "mmtrace: note: %s\n", f.BackupsReason)
	}
}

// Attached is how long loading and attaching took.
func (s *Source) Attached() time.Duration { return s.attached }

// StopWhen makes Run end once stop is closed, after a last drain.
// Without it the run goes on until the ring fails.
func (s *Source) StopWhen(stop <-chan struct{}) { s.stop = stop }

// Close detaches the kernel side.
func (s *Source) Close() error { return s.tr.Close() }

// Facts implements pipeline.Source.
func (s *Source) Facts() pipeline.Facts { return s.facts }

// Filter implements pipeline.Source: nil, the kernel has filtered already.
func (s *Source) Filter() *pipeline.Filter { return nil }

// Feed implements pipeline.Source: it drains the ring buffer on a short
// timer until stopped, then drains once more.
func (s *Source) Feed(p *pipeline.Pipeline) error {
	var (
		rec       ringbuf.Record
		stopping  bool
		lastLost  = time.Now()
		lastFlush = time.Now()
	)
	s.tr.SetDeadline(time.Now().Add(drainInterval))
	for {
		err := s.tr.ReadInto(&rec)
		if err == nil {
			s.take(p, rec.RawSample)
			continue
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("read ring buffer: %w", err)
		}
		// The ring is empty now: show what we have.
		if err := p.FlushOutput(); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
		now := time.Now()
		if stopping || now.Sub(lastLost) >= lostInterval {
			s.pollLost(p)
			lastLost = now
		}
		if now.Sub(lastFlush) >= flushInterval {
			p.FlushRecording()
			lastFlush = now
		}
		if stopping {
			return nil
		}
		select {
		case <-s.stop:
			stopping = true
		default:
		}
		s.tr.SetDeadline(time.Now().Add(drainInterval))
	}
}

// take passes on one ring record from the kernel: a batch of VMA records
// as the records in it.
func (s *Source) take(p *pipeline.Pipeline, raw []byte) {
	s.recBytes += uint64(len(raw)) // what the ring held, for its advice
	if b, ok := events.SplitVMABatch(raw); ok {
		for i := range b.Len() {
			s.takeRecord(p, b.Record(i))
		}
		return
	}
	s.takeRecord(p, raw)
}

// takeRecord passes on one record. Drops are charged before the record
// that ends a process image, so that its report counts them; on kernels
// without the VMA iterator, an exec's mappings come from /proc.
func (s *Source) takeRecord(p *pipeline.Pipeline, raw []byte) {
	s.received++
	if pid, upTo, ok := events.EndsImage(raw); ok {
		now := monotonicNow()
		s.pollMisses(p, now)
		n, err := s.tr.NewLossesOf(pid, upTo)
		if err != nil {
			fmt.Fprintf(s.opts.Stderr, "mmtrace: %v\n", err)
		}
		if n > 0 {
			p.Push(events.EncodeLost(pid, n, now))
		}
	}
	if !s.facts.ExecVMAs {
		if pid, ok := events.ExecWithoutVMAs(raw); ok {
			for _, r := range execVMAsFromProc(raw, pid) {
				p.Push(r)
			}
			return
		}
	}
	p.Push(raw)
}

// execVMAsFromProc stands in for the kernel's exec-time VMA snapshot on
// kernels without the VMA iterator: it reads the new image's maps from
// /proc as soon as the exec record arrives. By then the process may have
// mapped more (ld.so's libraries); those calls arrive as events after the
// exec and re-applying them to the snapshot is harmless. The report says
// that these facts came from /proc.
func execVMAsFromProc(execRaw []byte, pid uint32) [][]byte {
	vmas := procfs.ExecVMAs(pid)
	recs, err := events.EncodeProcVMAs(execRaw, vmas)
	if err != nil || len(vmas) == 0 {
		return [][]byte{execRaw} // gone already: the report will say the layout is uncertain
	}
	return recs
}

// pollLost turns the kernel's drop counters into lost records, which are
// recorded and modelled like any other.
func (s *Source) pollLost(p *pipeline.Pipeline) {
	losses, err := s.tr.NewLosses()
	if err != nil {
		fmt.Fprintf(s.opts.Stderr, "mmtrace: %v\n", err)
	}
	now := monotonicNow()
	for _, lost := range losses {
		p.Push(events.EncodeLost(lost.PID, lost.Count, now))
	}
	s.pollMisses(p, now)
	p.Tick(now)
}

// pollMisses turns programs the kernel skipped (recursion misses) into a
// lost record for no one process: every live image becomes uncertain.
func (s *Source) pollMisses(p *pipeline.Pipeline, now uint64) {
	n, err := s.tr.NewMisses()
	if err != nil && !s.missErr {
		s.missErr = true
		fmt.Fprintf(s.opts.Stderr, "mmtrace: %v\n", err)
	}
	if n > 0 {
		p.Push(events.EncodeLost(0, n, now))
	}
}

// LostAdvice implements pipeline.Source: the ring size that would have
// held the records this run delivered and lost.
func (s *Source) LostAdvice(lost uint64) string {
	return ringsize.Advice(s.opts.Loader.RingSize, s.received, s.recBytes, lost)
}

// After implements pipeline.Source: how often the kernel skipped our
// programs (-v), and what the backup copies did about it.
func (s *Source) After() {
	if s.opts.Verbose {
		for _, line := range s.tr.SkipStats() {
			fmt.Fprintf(s.opts.Stderr, "mmtrace: %s\n", line)
		}
	}
	if n, err := s.tr.SkipsCovered(); err != nil {
		fmt.Fprintf(s.opts.Stderr, "mmtrace: %v\n", err)
	} else if n > 0 {
		fmt.Fprintf(s.opts.Stderr, "mmtrace: note: backup copies did %d events the kernel skipped our programs for "+
			"(another task was preempted inside one on the same CPU)\n", n)
	}
}

// monotonicNow reads the clock of the kernel's records (bpf_ktime_get_ns).
func monotonicNow() uint64 {
	var t unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &t)
	return uint64(t.Nano())
}
