package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/mmtrace/mmtrace/internal/events"
	"github.com/mmtrace/mmtrace/internal/layout"
	"github.com/mmtrace/mmtrace/internal/record"
	"github.com/mmtrace/mmtrace/internal/render"
)

// session is the analysis shared by live tracing and replay: raw records
// in, decoded, recorded, modelled and rendered. Same input, same output.
type session struct {
	opts    *options
	dec     *events.Decoder
	order   *events.Sequencer // puts memory records in the order they took effect
	tracker *layout.Tracker
	out     render.Renderer
	svg     *render.SVG
	svgOut  io.Writer      // where the SVG goes (--svg, opened before the run)
	rec     *record.Writer // nil unless -w
	stderr  io.Writer
	filter  *pidFilter // nil: every record the kernel sent is wanted
	// execVMAsFromProc: live, on a kernel without the VMA iterator, read
	// each new image's mappings from /proc when its exec arrives.
	execVMAsFromProc bool
	// noIA32: 32-bit syscalls are not traced (--no-ia32).
	noIA32 bool
	// mntNS is the tracer's mount namespace (0: unknown): an image in
	// another one names its files as it sees them, and the report says so.
	mntNS uint32
	// lossesOf, live only, reads the kernel's drop counter of one process
	// so that drops are charged before the record that ends its image.
	// missesBefore, live only, charges skipped programs to the live images
	// before one of them ends.
	missesBefore func()
	missErr      bool
	lossesOf     func(pid uint32, upTo int64) uint64

	ev       events.Event // reused for every record
	start    time.Time
	lastTime uint64               // the latest record's kernel time
	duration func() time.Duration // how long the traced stretch was; nil: since start
	images   int
	failing  []*layout.Report
	squeezed int
	brkFail  int
	lost     uint64 // records lost, all causes
	received uint64 // records the kernel delivered, live
	recBytes uint64 // their size, for the ring size that would have held the lost ones
	skipped  uint64 // of which skipped by the kernel, for no one process
	badSeen  bool
	recErr   error
}

func newSession(opts *options, outs *outputs, stderr io.Writer, legacyVA bool) *session {
	out := outs.out
	ropts := render.Options{
		Color:            colorWanted(opts.color, outs.colorFile),
		Width:            render.TerminalWidth(outs.colorFile),
		SqueezeThreshold: opts.threshold,
		Verbose:          opts.verbose,
	}
	s := &session{
		opts:    opts,
		dec:     events.NewDecoder(),
		tracker: layout.NewTracker(layout.Options{SqueezeThreshold: opts.threshold, LegacyVALayout: legacyVA}),
		stderr:  stderr,
		start:   time.Now(),
	}
	if opts.format == "json" {
		s.out = render.NewJSON(out, ropts)
	} else {
		s.out = render.NewText(out, ropts)
	}
	if outs.svg != nil {
		s.svg = render.NewSVG(ropts)
		s.svgOut = outs.svg
	}
	s.order = events.NewSequencer(s.apply)
	s.order.Unordered = func(pid uint32, _ int) {
		s.tracker.Note(pid, orderUnknownNote, true)
	}
	return s
}

// orderUnknownNote marks an image some of whose memory calls could not be
// put in the order they took effect: the layout may be wrong.
const orderUnknownNote = "some memory calls could not be put in the order they took effect " +
	"(a record, or the kernel's numbering of it, was lost)"

func colorWanted(mode string, f *os.File) bool {
	switch mode {
	case "always":
		return true
	case "never":
		return false
	}
	return f != nil && render.ColorWanted(f)
}

// handleLive takes one raw record from the kernel.
func (s *session) handleLive(raw []byte) {
	s.received++
	s.recBytes += uint64(len(raw))
	if s.lossesOf != nil {
		if pid, upTo, ok := events.EndsImage(raw); ok {
			s.missesBefore()
			if n := s.lossesOf(pid, upTo); n > 0 {
				s.handle(events.EncodeLost(pid, n, monotonicNow()))
			}
		}
	}
	if s.execVMAsFromProc {
		if pid, ok := events.ExecWithoutVMAs(raw); ok {
			for _, r := range execVMAsFromProc(raw, pid) {
				s.handle(r)
			}
			return
		}
	}
	s.handle(raw)
}

// handle takes one raw record, as the kernel wrote it or as a recording
// holds it: it records it as it came and puts it in order.
func (s *session) handle(raw []byte) {
	if s.rec != nil && s.recErr == nil {
		if err := s.rec.Write(raw); err != nil {
			s.recErr = err
			fmt.Fprintf(s.stderr, "mmtrace: recording stopped: %v\n", err)
		}
	}
	s.order.Push(raw)
}

// apply decodes one record, in order, and feeds the model and the output.
func (s *session) apply(raw []byte) {
	ev := &s.ev
	if err := s.dec.Decode(raw, ev); err != nil {
		if !errors.Is(err, events.ErrUnknownKind) && !s.badSeen {
			s.badSeen = true
			fmt.Fprintf(s.stderr, "mmtrace: skipping a bad record: %v\n", err)
		}
		return
	}
	if ev.OrderUnknown {
		s.tracker.Note(ev.PID, orderUnknownNote, true)
	}
	if ev.Kind == events.KindLost {
		s.lost += ev.Lost
		if ev.PID == 0 {
			s.skipped += ev.Lost
		}
	}
	s.lastTime = max(s.lastTime, ev.Time)
	// Every process is modelled, only picked ones are shown: a picked
	// child has the layout it inherited at fork, even if it never execs.
	// An exec that picks a process does not pick the image it ends.
	shown, endedShown := true, true
	if s.filter != nil {
		endedShown = s.filter.pids[ev.PID]
		shown = s.filter.wants(ev)
	}
	ch := s.tracker.Apply(ev)
	if s.noIA32 && ev.Kind == events.KindExec && ev.ABI == events.ABI32 {
		s.tracker.Note(ev.PID, "32-bit syscalls were not traced (--no-ia32): only the exec-time layout is known", true)
	}
	if ev.Kind == events.KindUnmodeled && !failedCall(ev.Ret) {
		s.tracker.Note(ev.PID, unmodeledNote(ev), true)
	}
	if ev.Kind == events.KindExec {
		if note := rootNote(ev.PID, ev.Exec, s.mntNS); note != "" {
			s.tracker.Note(ev.PID, note, false)
		}
	}
	if !shown {
		return
	}
	s.out.Event(ev, ch)
	if ch.SnapshotReady {
		if snap := s.tracker.Snapshot(ev.PID); snap != nil {
			s.out.Snapshot(snap)
			s.observe(ev.Time, snap)
		}
	} else if s.svg != nil && ch.Tracked && changesLayout(ev.Kind) {
		if snap := s.tracker.Snapshot(ev.PID); snap != nil {
			s.observe(ev.Time, snap)
		}
	}
	if !endedShown {
		return
	}
	for _, r := range ch.Ended {
		s.report(r)
	}
}

func changesLayout(k events.Kind) bool {
	switch k {
	case events.KindMmap, events.KindMunmap, events.KindMremap, events.KindMprotect, events.KindBrk:
		return true
	}
	return false
}

func (s *session) observe(t uint64, r *layout.Report) {
	if s.svg != nil {
		s.svg.Observe(t, r)
	}
}

func (s *session) report(r *layout.Report) {
	s.images++
	squeezed := r.Squeezer != nil
	if squeezed {
		s.squeezed++
	}
	if len(r.BrkFailures) > 0 {
		s.brkFail++
	}
	if squeezed || len(r.BrkFailures) > 0 {
		s.failing = append(s.failing, r)
	}
	s.observe(0, r)
	s.out.Report(r)
}

// finish reports the images still live, the summary, and writes the SVG.
// It returns whether --check found something.
func (s *session) finish() (bool, error) {
	s.order.Flush()
	for _, r := range s.tracker.Finish() {
		if s.filter == nil || s.filter.pids[r.PID] {
			s.report(r)
		}
	}
	duration := time.Since(s.start)
	if s.duration != nil {
		duration = s.duration()
	}
	s.out.Summary(render.Summary{
		Images:    s.images,
		Squeezed:  s.squeezed,
		BrkFailed: s.brkFail,
		Lost:      s.lost,
		Failing:   s.failing,
		Duration:  duration,
		Check:     s.opts.check,
	})
	var errs []error
	if err := s.out.Flush(); err != nil {
		errs = append(errs, fmt.Errorf("write output: %w", err))
	}
	if s.svg != nil {
		if _, err := s.svg.WriteTo(s.svgOut); err != nil {
			errs = append(errs, fmt.Errorf("write SVG: %w", err))
		}
	}
	if s.opts.check {
		for _, r := range s.failing {
			fmt.Fprintf(s.stderr, "mmtrace: check: %s\n", render.CheckLine(r))
		}
	}
	if n := s.lost - s.skipped; n > 0 {
		fmt.Fprintf(s.stderr, "mmtrace: %d records were lost (ring buffer full%s); "+
			"affected reports say uncertain\n", n, s.ringAdvice(n))
	}
	if s.skipped > 0 {
		hint := "more --backups help"
		if s.noIA32 {
			hint = "--no-ia32's tracepoints cannot have backups"
		}
		fmt.Fprintf(s.stderr, "mmtrace: the kernel skipped %d records (one of our programs was busy on that CPU); "+
			"every image live then says uncertain (%s)\n", s.skipped, hint)
	}
	return len(s.failing) > 0, errors.Join(errs...)
}

// ringAdvice says how much of the stream n lost records were and which
// --ring-size would have held them as well: the ring plus their bytes (at
// the average record size, with the ring's 8-byte header), rounded up to
// a power of two. Live runs only; a replay cannot know.
func (s *session) ringAdvice(lost uint64) string {
	if s.opts.ringSize <= 0 || s.received == 0 {
		return "; a larger --ring-size helps"
	}
	pct := 100 * float64(lost) / float64(lost+s.received)
	per := (s.recBytes/s.received+7)&^7 + 8
	need := uint64(s.opts.ringSize) + lost*per
	size := uint64(minRing)
	for size < need && size < maxRing {
		size <<= 1
	}
	return fmt.Sprintf(": %.2g%% of %d; --ring-size %s would have held them", pct, lost+s.received, ringSizeText(size))
}

// ringSizeText writes a power of two the way --ring-size reads it.
func ringSizeText(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%dGiB", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%dMiB", n>>20)
	}
	return fmt.Sprintf("%dKiB", n>>10)
}

// pidFilter picks processes out of a recording the way live filters pick
// them out of the machine: by pid, or by comm at exec, plus descendants.
type pidFilter struct {
	comms map[string]bool
	pids  map[uint32]bool
}

func newPIDFilter(comms []string, pids []uint) *pidFilter {
	if len(comms) == 0 && len(pids) == 0 {
		return nil
	}
	f := &pidFilter{comms: map[string]bool{}, pids: map[uint32]bool{}}
	for _, c := range comms {
		f.comms[c] = true
	}
	for _, p := range pids {
		f.pids[uint32(p)] = true
	}
	return f
}

func (f *pidFilter) wants(ev *events.Event) bool {
	switch {
	case ev.Kind == events.KindExec && f.comms[ev.Exec.Comm]:
		f.pids[ev.PID] = true
	case ev.Kind == events.KindFork && f.pids[ev.PID]:
		f.pids[ev.Child] = true
	case ev.Kind == events.KindLost && ev.PID == 0:
		return true
	}
	return f.pids[ev.PID]
}

// rootNote says where an image's file names are rooted when that is not
// where mmtrace's are: paths are as the process sees them (its own
// /proc/PID/maps), so a reader outside needs the way in.
func rootNote(pid uint32, x *events.Exec, tracerNS uint32) string {
	switch {
	case x.Root != "":
		return fmt.Sprintf("file paths are as this process sees them: its root is %s (chroot), "+
			"so its /x is %s/x from outside", x.Root, strings.TrimSuffix(x.Root, "/"))
	case x.MntNS != 0 && tracerNS != 0 && x.MntNS != tracerNS:
		return fmt.Sprintf("file paths are as this process sees them, in mount namespace mnt:[%d] "+
			"(mmtrace's is mnt:[%d]); while it runs its files are under /proc/%d/root", x.MntNS, tracerNS, pid)
	}
	return ""
}

// unmodeledNote names a call that changed the address space in a way the
// layout model does not follow, so a reader knows what the picture lacks.
func unmodeledNote(ev *events.Event) string {
	return fmt.Sprintf("%s (seq %d) changed the address space in a way mmtrace does not model: "+
		"mappings and verdicts may miss that change", events.UnmodeledCall(ev), ev.Seq)
}

// failedCall: a syscall result in the -errno range.
func failedCall(ret int64) bool { return ret < 0 && ret >= -4095 }
