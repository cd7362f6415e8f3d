package pipeline

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
	"github.com/mmtrace/mmtrace/internal/procfs"
)

const (
	// drainInterval is how long records may wait in the ring: the kernel
	// submits without waking us (waking per record costs 1-12 us each).
	drainInterval = 2 * time.Millisecond
	lostInterval  = 100 * time.Millisecond
	flushInterval = time.Second
)

// LiveOptions say what to trace.
type LiveOptions struct {
	Loader   loader.Config // the kernel side; its PIDs include run mode's command
	ProcPIDs []uint32      // --pid: start from their layouts in /proc
	Verbose  bool          // -v: how often each program was skipped, at the end
	Stderr   io.Writer     // notes about the kernel
}

// Live is the kernel's ring buffer: records as the traced processes make
// them, with the kernel's drop counters turned into lost records.
type Live struct {
	tr       *loader.Tracer
	opts     LiveOptions
	facts    Facts
	attached time.Duration
	stop     <-chan struct{}
	missErr  bool
}

// OpenLive loads and attaches the kernel side, then reads the --pid
// processes' layouts from /proc: once attached, so that nothing they do
// from then on is missed. It says on Stderr what this kernel cannot show.
func OpenLive(opts LiveOptions) (*Live, error) {
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
	l := &Live{tr: tr, opts: opts, attached: time.Since(start)}
	l.facts = Facts{
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
		l.facts.ProcImages = append(l.facts.ProcImages, img)
	}
	l.noteFeatures()
	return l, nil
}

func (l *Live) noteFeatures() {
	f, w := l.tr.Features, l.opts.Stderr
	if l.opts.Loader.LockPath && !f.LockPath {
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
	if f.Backups > 0 || l.opts.Loader.Backups > 0 {
		fmt.Fprintf(w, "mmtrace: note: %s\n", f.BackupsReason)
	}
}

// Attached is how long loading and attaching took.
func (l *Live) Attached() time.Duration { return l.attached }

// StopWhen makes Run end once stop is closed, after a last drain.
// Without it the run goes on until the ring fails.
func (l *Live) StopWhen(stop <-chan struct{}) { l.stop = stop }

// Close detaches the kernel side.
func (l *Live) Close() error { return l.tr.Close() }

// Facts implements Source.
func (l *Live) Facts() Facts { return l.facts }

// picks: the kernel has filtered already.
func (l *Live) picks() *Filter { return nil }

// feed drains the ring buffer on a short timer until stopped, then
// drains once more.
func (l *Live) feed(p *Pipeline) error {
	p.ringSize = l.opts.Loader.RingSize
	var (
		rec       ringbuf.Record
		stopping  bool
		lastLost  = time.Now()
		lastFlush = time.Now()
	)
	l.tr.SetDeadline(time.Now().Add(drainInterval))
	for {
		err := l.tr.ReadInto(&rec)
		if err == nil {
			l.take(p, rec.RawSample)
			continue
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("read ring buffer: %w", err)
		}
		// The ring is empty now: show what we have.
		if err := p.out.Flush(); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
		now := time.Now()
		if stopping || now.Sub(lastLost) >= lostInterval {
			l.pollLost(p)
			lastLost = now
		}
		if now.Sub(lastFlush) >= flushInterval {
			p.flushRecording()
			lastFlush = now
		}
		if stopping {
			return nil
		}
		select {
		case <-l.stop:
			stopping = true
		default:
		}
		l.tr.SetDeadline(time.Now().Add(drainInterval))
	}
}

// take passes on one record from the kernel. Drops are charged before
// the record that ends a process image, so that its report counts them;
// on kernels without the VMA iterator, an exec's mappings come from /proc.
func (l *Live) take(p *Pipeline, raw []byte) {
	p.received++
	p.recBytes += uint64(len(raw))
	if pid, upTo, ok := events.EndsImage(raw); ok {
		now := monotonicNow()
		l.pollMisses(p, now)
		n, err := l.tr.NewLossesOf(pid, upTo)
		if err != nil {
			fmt.Fprintf(p.stderr, "mmtrace: %v\n", err)
		}
		if n > 0 {
			p.push(events.EncodeLost(pid, n, now))
		}
	}
	if !l.facts.ExecVMAs {
		if pid, ok := events.ExecWithoutVMAs(raw); ok {
			for _, r := range execVMAsFromProc(raw, pid) {
				p.push(r)
			}
			return
		}
	}
	p.push(raw)
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
func (l *Live) pollLost(p *Pipeline) {
	losses, err := l.tr.NewLosses()
	if err != nil {
		fmt.Fprintf(p.stderr, "mmtrace: %v\n", err)
	}
	now := monotonicNow()
	for _, lost := range losses {
		p.push(events.EncodeLost(lost.PID, lost.Count, now))
	}
	l.pollMisses(p, now)
	p.order.Tick(now)
}

// pollMisses turns programs the kernel skipped (recursion misses) into a
// lost record for no one process: every live image becomes uncertain.
func (l *Live) pollMisses(p *Pipeline, now uint64) {
	n, err := l.tr.NewMisses()
	if err != nil && !l.missErr {
		l.missErr = true
		fmt.Fprintf(p.stderr, "mmtrace: %v\n", err)
	}
	if n > 0 {
		p.push(events.EncodeLost(0, n, now))
	}
}

// after says how often the kernel skipped our programs (-v), and what
// the backup copies did about it.
func (l *Live) after(p *Pipeline) {
	if l.opts.Verbose {
		for _, line := range l.tr.SkipStats() {
			fmt.Fprintf(p.stderr, "mmtrace: %s\n", line)
		}
	}
	if n, err := l.tr.SkipsCovered(); err != nil {
		fmt.Fprintf(p.stderr, "mmtrace: %v\n", err)
	} else if n > 0 {
		fmt.Fprintf(p.stderr, "mmtrace: note: backup copies did %d events the kernel skipped our programs for "+
			"(another task was preempted inside one on the same CPU)\n", n)
	}
}

// monotonicNow reads the clock of the kernel's records (bpf_ktime_get_ns).
func monotonicNow() uint64 {
	var t unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &t)
	return uint64(t.Nano())
}
