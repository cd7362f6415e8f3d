// Package pipeline is mmtrace's analysis, one path for live tracing and
// replay: raw records from a Source (the kernel's ring buffer, package
// live, or a recording) are recorded (-w) as they came, put in the order
// their changes took effect, decoded, modelled and rendered. Same records
// in, same output out. It does not import the BPF side, so replay builds
// on any architecture.
package pipeline

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mmtrace/mmtrace/internal/events"
	"github.com/mmtrace/mmtrace/internal/layout"
	"github.com/mmtrace/mmtrace/internal/record"
	"github.com/mmtrace/mmtrace/internal/render"
)

// Options are the analysis' settings from the command line.
type Options struct {
	Render render.Options // its SqueezeThreshold is the model's too
	JSON   bool           // JSON lines rather than text
	Check  bool           // --check: name the failing images on stderr
	Args   []string       // mmtrace's command line, kept in a recording's header
}

// Outputs are where a run writes; the caller opens and closes them.
type Outputs struct {
	Out    io.Writer // the rendered text or JSON
	SVG    io.Writer // nil: no SVG
	Record io.Writer // nil: no recording (-w)
	Stderr io.Writer // notes and warnings
}

// Source is where records come from: the kernel's ring buffer (package
// live) or a recording (Recording).
type Source interface {
	// Facts is what the analysis must know about the records' origin.
	Facts() Facts
	// Filter is the Go copy of the kernel's filter, for records the
	// kernel did not filter; nil: every record.
	Filter() *Filter
	// Feed pushes every record into p until the source ends or is
	// stopped; a stop a signal asked for returns a *Stopped.
	Feed(p *Pipeline) error
	// LostAdvice ends the sentence that counts lost records: what would
	// have kept them ("; a larger --ring-size helps").
	LostAdvice(lost uint64) string
	// After says, once the summary is out, what only this source knows.
	After()
}

// Stopped is the error of a run that a signal (its context) cut short;
// the caller turns it into the exit status. Where says where it was.
type Stopped struct{ Where string }

func (s *Stopped) Error() string { return "stopped " + s.Where }

// Run takes every record of src through the analysis, then reports the
// images still live and the summary. found says whether --check found
// a squeezed image or a failed brk. A run a signal cut short still
// reports what it read, and returns a *Stopped.
func Run(src Source, opts Options, outs Outputs) (found bool, err error) {
	facts := src.Facts()
	p := newPipeline(opts, outs, facts)
	p.filter = src.Filter()
	p.lostAdvice = src.LostAdvice
	if outs.Record != nil {
		h := record.NewHeader()
		h.Args = opts.Args
		if h.Options, err = facts.options(p.threshold()); err != nil {
			return false, err
		}
		if p.rec, err = record.NewWriter(outs.Record, h); err != nil {
			return false, fmt.Errorf("start recording: %w", err)
		}
		defer func() {
			if cerr := p.rec.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("finish recording: %w", cerr)
			}
		}()
	}
	for _, img := range facts.ProcImages {
		if p.filter.seeds(img) {
			p.seed(img)
		}
	}
	var stopped *Stopped
	if err := src.Feed(p); err != nil && !errors.As(err, &stopped) {
		return false, err
	}
	found, err = p.finish()
	if err != nil {
		return false, err
	}
	src.After()
	if stopped != nil {
		return found, stopped
	}
	return found, nil
}

// Pipeline is one run's analysis state, fed by its Source.
type Pipeline struct {
	opts    Options
	facts   Facts
	dec     *events.Decoder
	order   *events.Sequencer // puts memory records in the order they took effect
	tracker *layout.Tracker
	out     render.Renderer
	svg     *render.SVG
	svgOut  io.Writer
	rec     *record.Writer // nil unless -w
	recErr  error
	stderr  io.Writer
	filter  *Filter // nil: every record is wanted

	ev       events.Event // reused for every record
	start    time.Time
	lastTime uint64               // the latest record's kernel time
	duration func() time.Duration // how long the traced stretch was; nil: since start
	images   int
	failing  []*layout.Report
	squeezed int
	brkFail  int
	lost     uint64 // records lost, all causes
	skipped  uint64 // of which skipped by the kernel, for no one process
	badSeen  bool

	lostAdvice func(lost uint64) string // the source's (Source.LostAdvice)
}

func newPipeline(opts Options, outs Outputs, facts Facts) *Pipeline {
	p := &Pipeline{
		opts:   opts,
		facts:  facts,
		dec:    events.NewDecoder(),
		stderr: outs.Stderr,
		start:  time.Now(),
	}
	p.tracker = layout.NewTracker(layout.Options{SqueezeThreshold: p.threshold(), LegacyVALayout: facts.LegacyVALayout,
		PersonaCallsUnseen: facts.LockPath,
		StreamVMAs:         true}) // renderers read ended layouts once (JSON without holding them)
	if opts.JSON {
		p.out = render.NewJSON(outs.Out, opts.Render)
	} else {
		p.out = render.NewText(outs.Out, opts.Render)
	}
	if outs.SVG != nil {
		p.svg = render.NewSVG(opts.Render)
		p.svgOut = outs.SVG
	}
	p.order = events.NewSequencer(p.apply)
	p.order.Unordered = func(pid uint32, _ int) {
		p.tracker.Note(pid, orderUnknownNote, true)
	}
	return p
}

func (p *Pipeline) threshold() uint64 {
	if t := p.opts.Render.SqueezeThreshold; t != 0 {
		return t
	}
	return layout.DefaultSqueezeThreshold
}

// orderUnknownNote marks an image some of whose memory calls could not be
// put in the order they took effect: the layout may be wrong.
const orderUnknownNote = "some memory calls could not be put in the order they took effect " +
	"(a record, or the kernel's numbering of it, was lost)"

// seed starts the model of a running process (--pid) from what /proc
// said about it.
func (p *Pipeline) seed(img layout.ProcImage) {
	p.tracker.SeedFromProc(img)
	if snap := p.tracker.Snapshot(img.PID); snap != nil {
		p.out.Snapshot(snap)
	}
}

// Push takes one raw record, as the kernel wrote it or as a recording
// holds it: it records it as it came and puts it in order.
func (p *Pipeline) Push(raw []byte) {
	if p.rec != nil && p.recErr == nil {
		if err := p.rec.Write(raw); err != nil {
			p.stopRecording(err)
		}
	}
	p.order.Push(raw)
}

// FlushOutput writes out the output held so far: a live source calls it
// whenever the ring is empty.
func (p *Pipeline) FlushOutput() error { return p.out.Flush() }

// FlushRecording pushes the recording to its file, so that a recording
// of a run that is killed holds all but its last moments.
func (p *Pipeline) FlushRecording() {
	if p.rec != nil && p.recErr == nil {
		if err := p.rec.Flush(); err != nil {
			p.stopRecording(err)
		}
	}
}

// Tick says the kernel's clock has reached now: memory records held for
// a gap in their numbering longer than the order allows go ahead.
func (p *Pipeline) Tick(now uint64) { p.order.Tick(now) }

func (p *Pipeline) stopRecording(err error) {
	p.recErr = err
	fmt.Fprintf(p.stderr, "mmtrace: recording stopped: %v\n", err)
}

// apply decodes one record, in order, and feeds the model and the output.
func (p *Pipeline) apply(raw []byte) {
	ev := &p.ev
	if err := p.dec.Decode(raw, ev); err != nil {
		if !errors.Is(err, events.ErrUnknownKind) && !p.badSeen {
			p.badSeen = true
			fmt.Fprintf(p.stderr, "mmtrace: skipping a bad record: %v\n", err)
		}
		return
	}
	if ev.OrderUnknown {
		p.tracker.Note(ev.PID, orderUnknownNote, true)
	}
	if ev.Kind == events.KindLost {
		p.lost += ev.Lost
		if ev.PID == 0 {
			p.skipped += ev.Lost
		}
	}
	p.lastTime = max(p.lastTime, ev.Time)
	// Every process is modelled, only picked ones are shown: a picked
	// child has the layout it inherited at fork, even if it never execs.
	// An exec that picks a process does not pick the image it ends.
	endedShown := p.filter.has(ev.PID)
	shown := p.filter.wants(ev)
	ch := p.tracker.Apply(ev)
	p.note(ev)
	if !shown {
		return
	}
	p.out.Event(ev, ch)
	if ch.SnapshotReady {
		if snap := p.tracker.Snapshot(ev.PID); snap != nil {
			p.out.Snapshot(snap)
			p.observe(ev.Time, snap)
		}
	} else if p.svg != nil && ch.Tracked && changesLayout(ev.Kind) {
		if snap := p.tracker.Snapshot(ev.PID); snap != nil {
			p.observe(ev.Time, snap)
		}
	}
	if !endedShown {
		return
	}
	for _, r := range ch.Ended {
		p.report(r)
	}
}

// note adds to an image's report what the event says about how far its
// layout can be trusted, or how to read its paths.
func (p *Pipeline) note(ev *events.Event) {
	if p.facts.NoIA32 && ev.Kind == events.KindExec && ev.ABI == events.ABI32 {
		p.tracker.Note(ev.PID, "32-bit syscalls were not traced (--no-ia32): only the exec-time layout is known", true)
	}
	if ev.Kind == events.KindUnmodeled && !failedCall(ev.Ret) {
		p.tracker.Note(ev.PID, unmodeledNote(ev), true)
	}
	if ev.Kind == events.KindExec {
		if note := rootNote(ev.PID, ev.Exec, p.facts.MountNS); note != "" {
			p.tracker.Note(ev.PID, note, false)
		}
	}
}

func changesLayout(k events.Kind) bool {
	switch k {
	case events.KindMmap, events.KindMunmap, events.KindMremap, events.KindMprotect, events.KindBrk:
		return true
	}
	return false
}

func (p *Pipeline) observe(t uint64, r *layout.Report) {
	if p.svg != nil {
		p.svg.Observe(t, r)
	}
}

func (p *Pipeline) report(r *layout.Report) {
	p.images++
	squeezed := r.Squeezer != nil
	if squeezed {
		p.squeezed++
	}
	if len(r.BrkFailures) > 0 {
		p.brkFail++
	}
	if squeezed || len(r.BrkFailures) > 0 {
		p.failing = append(p.failing, r)
	}
	p.observe(0, r)
	p.out.Report(r)
}

// finish reports the images still live, the summary, and writes the SVG.
// It returns whether --check found something.
func (p *Pipeline) finish() (bool, error) {
	p.order.Flush()
	for _, r := range p.tracker.Finish() {
		if p.filter.has(r.PID) {
			p.report(r)
		}
	}
	duration := time.Since(p.start)
	if p.duration != nil {
		duration = p.duration()
	}
	p.out.Summary(render.Summary{
		Images:    p.images,
		Squeezed:  p.squeezed,
		BrkFailed: p.brkFail,
		Lost:      p.lost,
		Failing:   p.failing,
		Duration:  duration,
		Check:     p.opts.Check,
	})
	var errs []error
	if err := p.out.Flush(); err != nil {
		errs = append(errs, fmt.Errorf("write output: %w", err))
	}
	if p.svg != nil {
		if _, err := p.svg.WriteTo(p.svgOut); err != nil {
			errs = append(errs, fmt.Errorf("write SVG: %w", err))
		}
	}
	if p.opts.Check {
		for _, r := range p.failing {
			fmt.Fprintf(p.stderr, "mmtrace: check: %s\n", render.CheckLine(r))
		}
	}
	if n := p.lost - p.skipped; n > 0 {
		fmt.Fprintf(p.stderr, "mmtrace: %d records were lost (ring buffer full%s); "+
			"affected reports say uncertain\n", n, p.lostAdvice(n))
	}
	if p.skipped > 0 {
		hint := "more --backups help"
		if p.facts.NoIA32 {
			hint = "--no-ia32's tracepoints cannot have backups"
		}
		fmt.Fprintf(p.stderr, "mmtrace: the kernel skipped %d records (one of our programs was busy on that CPU); "+
			"every image live then says uncertain (%s)\n", p.skipped, hint)
	}
	return len(p.failing) > 0, errors.Join(errs...)
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
