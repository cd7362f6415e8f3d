package render

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/mmtrace/mmtrace/internal/events"
	"github.com/mmtrace/mmtrace/internal/layout"
)

// textRenderer writes a line per event, like strace or perf trace, a
// picture when a new image is complete, and a report block per image.
type textRenderer struct {
	w      *bufio.Writer
	o      Options
	t0     uint64
	haveT0 bool
	line   styled  // reused for every event line
	buf    []byte  // reused to lay the line out
	who    textWho // the last line's pid, comm and abi columns
}

// NewText returns the human renderer. Output is buffered until Flush.
func NewText(w io.Writer, o Options) Renderer {
	return &textRenderer{w: bufio.NewWriterSize(w, 64<<10), o: o}
}

func (t *textRenderer) Flush() error {
	if err := t.w.Flush(); err != nil {
		return fmt.Errorf("write text output: %w", err)
	}
	return nil
}

func (t *textRenderer) Event(ev *events.Event, ch layout.Change) {
	if ev == nil {
		return
	}
	switch {
	case ev.Kind == events.KindLost:
	case !ch.Tracked:
		return
	case ev.Kind == events.KindVMA && !t.o.Verbose:
		return
	}
	if !t.haveT0 {
		t.t0, t.haveT0 = ev.Time, true
	}
	// The prefix and the call are plain text: laid out straight into the
	// line's bytes, so an event line allocates nothing. The rest (a lost
	// record's warning, the notes) are coloured segments after them.
	l := &t.line
	l.segs = l.segs[:0]
	b := t.appendEventPrefix(t.buf[:0], ev, ch)
	if ev.Kind == events.KindLost {
		l.add(lostCall(ev), sgrBadRed)
	} else {
		b = appendCall(b, ev, ch)
	}
	if !plainASCII(b) {
		b = append(b[:0], printable(string(b))...)
	}
	eventNotes(l, ev, ch, t.o.threshold())
	b = l.appendLine(b, t.o.Color)
	t.buf = append(b, '\n')
	t.w.Write(t.buf)
}

// plainASCII says whether printable would leave b as it is, cheaply:
// every byte is printable ASCII (0x20-0x7e). It tests 8 bytes at a time:
// a byte below 0x20 borrows into its top bit when 0x20 is taken from it
// (and its top bit was clear), one above 0x7e sets its top bit when 1 is
// added to it (or had it set already).
func plainASCII(b []byte) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for len(b) >= 8 {
		w := binary.NativeEndian.Uint64(b)
		if ((w-0x20*ones)&^w|(w+ones)|w)&highs != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c < 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}

// appendEventPrefix appends "seq time pid comm abi " in fixed columns, as
// fmt's "%6d %10.6f %7d %-15s %-6s " would, without its allocations.
func (t *textRenderer) appendEventPrefix(b []byte, ev *events.Event, ch layout.Change) []byte {
	var num [32]byte
	b = padLeftBytes(b, strconv.AppendUint(num[:0], ev.Seq, 10), 6)
	b = append(b, ' ')
	b = padLeftBytes(b, appendSeconds(num[:0], int64(ev.Time-t.t0)), 10)
	b = append(b, ' ')
	return append(b, t.whoColumns(ev, ch)...)
}

// whoColumns are the "pid comm abi " columns of an event line. A
// process's events come in runs: the last line's are kept and reused
// while they stay the same.
func (t *textRenderer) whoColumns(ev *events.Event, ch layout.Change) []byte {
	comm := ch.Comm
	if comm == "" {
		comm = ev.Comm
	}
	if comm == "" && ev.Exec != nil {
		comm = ev.Exec.Comm
	}
	if comm == "" {
		comm = "?"
	}
	// Dropped records belong to no one process: every live image.
	all := ev.Kind == events.KindLost && ev.PID == 0
	w := &t.who
	if w.b != nil && w.pid == ev.PID && w.comm == comm && w.abi == ev.ABI && w.all == all {
		return w.b
	}
	w.pid, w.comm, w.abi, w.all = ev.PID, comm, ev.ABI, all
	var num [16]byte
	abi := ev.ABI.String()
	b := w.b[:0]
	if all {
		b = padLeftBytes(b, append(num[:0], '-'), 7)
		comm, abi = "all images", ""
	} else {
		b = padLeftBytes(b, strconv.AppendUint(num[:0], uint64(ev.PID), 10), 7)
	}
	b = append(b, ' ')
	b = padRight(b, comm, 15)
	b = append(b, ' ')
	b = padRight(b, abi, 6)
	w.b = append(b, ' ')
	return w.b
}

// textWho is what the cached "pid comm abi " columns say.
type textWho struct {
	pid  uint32
	comm string
	abi  events.ABI
	all  bool // a lost record of no one process
	b    []byte
}

// padLeftBytes appends s right-aligned in n bytes (as %nd).
func padLeftBytes(b, s []byte, n int) []byte {
	for i := len(s); i < n; i++ {
		b = append(b, ' ')
	}
	return append(b, s...)
}

// padRight left-aligns s in n runes (as %-ns).
func padRight(b []byte, s string, n int) []byte {
	b = append(b, s...)
	for c := utf8.RuneCountInString(s); c < n; c++ {
		b = append(b, ' ')
	}
	return b
}

// appendCall appends the call as strace would show it, and the placement
// of a mapping made; not for lost records (lostCall).
func appendCall(b []byte, ev *events.Event, ch layout.Change) []byte {
	switch ev.Kind {
	case events.KindExec:
		b = appendExecCall(b, ev.Exec)
	case events.KindVMA:
		b = append(b, "  vma "...)
		b = appendHex(b, ev.VMA.Start)
		b = append(b, '-')
		b = appendHex(b, ev.VMA.End)
		b = append(b, ' ')
		b = appendVMAProt(b, ev.VMA.Flags)
		if ev.VMA.Path != "" {
			b = append(b, ' ')
			b = append(b, ev.VMA.Path...)
		}
	case events.KindMmap:
		b = appendMmapCall(b, ev)
	case events.KindMunmap:
		b = append(b, "munmap("...)
		b = appendHex(b, ev.Addr)
		b = append(b, ", "...)
		b = appendSize(b, ev.Len)
		b = append(b, ") = "...)
		b = appendIntResult(b, ev.Ret)
	case events.KindMremap:
		b = appendMremapCall(b, ev)
	case events.KindMprotect:
		b = append(b, "mprotect("...)
		b = appendHex(b, ev.Addr)
		b = append(b, ", "...)
		b = appendSize(b, ev.Len)
		b = append(b, ", "...)
		b = appendProt(b, ev.Prot)
		b = append(b, ") = "...)
		b = appendIntResult(b, ev.Ret)
	case events.KindBrk:
		b = append(b, "brk("...)
		b = appendAddrArg(b, ev.Addr)
		b = append(b, ") = "...)
		b = appendHex(b, uint64(ev.Ret))
	case events.KindPersonality:
		b = appendPersonalityCall(b, ev)
	case events.KindUnmodeled:
		b = appendUnmodeledCall(b, ev)
	case events.KindExecve:
		b = appendExecveCall(b, ev)
	case events.KindFork:
		b = fmt.Appendf(b, "fork() = %d", ev.Child)
	case events.KindExit:
		b = fmt.Appendf(b, "exit(%d)", ev.ExitCode)
	default:
		b = fmt.Appendf(b, "%s", ev.Kind)
	}
	if isErr(ev.Ret) && (ev.Kind == events.KindMmap || ev.Kind == events.KindMremap) {
		return b
	}
	if ch.Placement != layout.PlacementNone && (ev.Kind == events.KindMmap || ev.Kind == events.KindMremap) {
		b = append(b, ' ')
		b = append(b, ch.Placement...)
	}
	return b
}

// appendExecCall is an exec line: the new image's file, its parent, its
// personality when not plain, its heap start and its VMA count.
func appendExecCall(b []byte, x *events.Exec) []byte {
	b = append(b, "exec "...)
	if x == nil {
		return b
	}
	b = strconv.AppendQuote(b, x.Filename)
	b = fmt.Appendf(b, " ppid %d", x.PPID)
	if x.ParentComm != "" {
		b = fmt.Appendf(b, " (%s, %s)", x.ParentComm, x.ParentABI)
	}
	if x.Personality != 0 {
		b = fmt.Appendf(b, " personality %s (%s)", hex(uint64(x.Personality)), personalityNames(x.Personality))
	}
	b = fmt.Appendf(b, " brk %s", hex(x.StartBrk))
	if x.VMAsKnown {
		b = fmt.Appendf(b, ", %d vmas", x.VMACount)
	}
	return b
}

func appendMmapCall(b []byte, ev *events.Event) []byte {
	b = append(b, "mmap("...)
	b = appendAddrArg(b, ev.Addr)
	b = append(b, ", "...)
	b = appendSize(b, ev.Len)
	b = append(b, ", "...)
	b = appendProt(b, ev.Prot)
	b = append(b, ", "...)
	b = appendMmapFlags(b, ev.Flags, "")
	if ev.FD >= 0 && ev.Flags&unix.MAP_ANONYMOUS == 0 {
		b = append(b, ", "...)
		b = strconv.AppendInt(b, int64(ev.FD), 10)
		if ev.Path != "" {
			b = append(b, '<')
			b = append(b, ev.Path...)
			b = append(b, '>')
		}
		b = append(b, ", "...)
		b = appendHex(b, ev.Offset)
	}
	b = append(b, ") = "...)
	b = appendAddrResult(b, ev.Ret)
	return b
}

func appendMremapCall(b []byte, ev *events.Event) []byte {
	b = append(b, "mremap("...)
	b = appendHex(b, ev.Addr)
	b = append(b, ", "...)
	b = appendSize(b, ev.Len)
	b = append(b, ", "...)
	b = appendSize(b, ev.NewLen)
	b = append(b, ", "...)
	b = appendFlagNames(b, ev.Flags, mremapFlags, "")
	if ev.NewAddr != 0 {
		b = append(b, ", "...)
		b = appendHex(b, ev.NewAddr)
	}
	b = append(b, ") = "...)
	b = appendAddrResult(b, ev.Ret)
	return b
}

func appendPersonalityCall(b []byte, ev *events.Event) []byte {
	b = append(b, "personality("...)
	if uint32(ev.Addr) == personalityQuery {
		b = append(b, "query"...)
	} else {
		b = appendHex(b, ev.Addr)
		b = append(b, ' ')
		b = append(b, personalityNames(uint32(ev.Addr))...)
	}
	b = append(b, ") = "...)
	if isErr(ev.Ret) {
		b = appendIntResult(b, ev.Ret)
	} else {
		b = appendHex(b, uint64(ev.Ret))
	}
	return b
}

// appendUnmodeledCall is a call the model does not follow, with its first
// three arguments in hex and a warning when it worked.
func appendUnmodeledCall(b []byte, ev *events.Event) []byte {
	b = append(b, events.UnmodeledCall(ev)...)
	b = append(b, '(')
	b = appendHex(b, ev.Addr)
	b = append(b, ", "...)
	b = appendHex(b, ev.Len)
	b = append(b, ", "...)
	b = appendHex(b, ev.NewLen)
	b = append(b, ") = "...)
	if isErr(ev.Ret) {
		b = appendIntResult(b, ev.Ret)
	} else {
		b = appendHex(b, uint64(ev.Ret))
		b = append(b, " NOT MODELED: layout uncertain"...)
	}
	return b
}

// appendExecveCall is execve's entry, or its failure, with argv as
// strace shows it.
func appendExecveCall(b []byte, ev *events.Event) []byte {
	b = append(b, "execve("...)
	b = strconv.AppendQuote(b, ev.Path)
	if len(ev.Argv) > 0 || ev.ArgvTruncated {
		b = append(b, ", ["...)
		for i, a := range ev.Argv {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = strconv.AppendQuote(b, a)
		}
		if ev.ArgvTruncated && len(ev.Argv) > 0 {
			b = append(b, ", ..."...) // as strace marks a cut argv
		} else if ev.ArgvTruncated {
			b = append(b, "..."...)
		}
		b = append(b, ']')
	}
	b = append(b, ')')
	if isErr(ev.Ret) {
		b = append(b, " = "...)
		b = appendIntResult(b, ev.Ret)
	}
	return b
}

// lostCall is the line's text for a lost record.
func lostCall(ev *events.Event) string {
	why := "ring buffer full"
	if ev.PID == 0 {
		// Counted by program, not by process (see loader.NewMisses).
		why = "the kernel skipped a busy program"
	}
	return fmt.Sprintf("LOST %s (%s): verdicts of the images running now are uncertain",
		plural(int(min(ev.Lost, 1<<62)), "event"), why)
}

// eventNotes appends the brk failure, a new squeezer and the headroom when
// it moved materially.
func eventNotes(l *styled, ev *events.Event, ch layout.Change, threshold uint64) {
	if f := ch.BrkFailure; f != nil {
		if f.BlockedBy != nil {
			l.add(" FAILED (blocked by "+hex(f.BlockedBy.Start)+"-"+hex(f.BlockedBy.End)+" "+shortPath(f.BlockedBy.Path)+")", sgrBadRed)
		} else {
			l.add(" FAILED ("+f.Why()+")", sgrBadRed)
		}
	}
	if ch.NewSqueezer != nil {
		l.add(" SQUEEZER", sgrBadRed)
	}
	if ch.HeadroomChanged || ch.NewSqueezer != nil {
		sgr := sgrGreen
		if ch.Headroom < threshold {
			sgr = sgrBadRed
		}
		l.add("  headroom "+Size(ch.Headroom), sgr)
	}
}

func appendAddrArg(b []byte, v uint64) []byte {
	if v == 0 {
		return append(b, "NULL"...)
	}
	return appendHex(b, v)
}

func appendAddrResult(b []byte, ret int64) []byte {
	if isErr(ret) {
		return appendIntResult(b, ret)
	}
	return appendHex(b, uint64(ret))
}

// appendIntResult writes "0" or, strace-style, "-1 ENOMEM".
func appendIntResult(b []byte, ret int64) []byte {
	if isErr(ret) {
		b = append(b, "-1 "...)
		return append(b, errnoName(ret)...)
	}
	return strconv.AppendInt(b, ret, 10)
}

// appendVMAProt writes vm_flags as /proc/PID/maps does: "r-xp".
func appendVMAProt(b []byte, flags uint64) []byte { return layout.AppendProcPerms(b, flags) }

func (t *textRenderer) Snapshot(r *layout.Report) {
	if r == nil {
		return
	}
	t.w.WriteByte('\n')
	Picture(t.w, r, t.o)
	t.w.WriteByte('\n')
}

func (t *textRenderer) Report(r *layout.Report) {
	if r == nil {
		return
	}
	t.w.WriteString("\n")
	for _, l := range reportLines(r, t.o) {
		t.w.WriteString(l)
		t.w.WriteByte('\n')
	}
}

// reportLines is the text report block of one image: its fields, its
// picture and its story.
func reportLines(r *layout.Report, o Options) []string {
	r = r.WithVMAs() // the picture reads them more than once
	width := o.width()
	f := reportFields{width: width, color: o.Color}
	var head styled
	head.add(fmt.Sprintf("== report: pid %d %s", r.PID, nameOf(r)), sgrBold)
	if r.Exe != "" {
		head.add(" ("+r.Exe+")", sgrBold)
	}
	head.add(" · "+endPhrase(r)+" ==", sgrBold)
	f.emit(&head)
	f.image(r)
	f.heap(r, o.threshold())
	f.verdict(r)
	out := append(f.out, "")
	out = append(out, pictureLines(r, o)...)
	out = append(out, "")
	var story styled
	story.add("  story", sgrBold)
	out = append(out, story.render(width, o.Color))
	for _, s := range Story(r) {
		out = append(out, wrap(s, width, "  · ", "    ")...)
	}
	return out
}

// reportFields lays out a report's named fields, a line each (wrapped
// under the value's column when long).
type reportFields struct {
	width int
	color bool
	out   []string
}

func (f *reportFields) emit(l *styled) { f.out = append(f.out, l.render(f.width, f.color)) }

func (f *reportFields) field(name, value, sgr string) {
	for i, v := range wrap(value, f.width-15, "", "") {
		var l styled
		if i == 0 {
			l.add("  "+fit(name, 13), sgrDim)
		} else {
			l.add(strings.Repeat(" ", 15), sgrNone)
		}
		l.add(v, sgr)
		f.emit(&l)
	}
}

// image: who the image is, its command line, layout and personality.
func (f *reportFields) image(r *layout.Report) {
	who := fmt.Sprintf("%s image", r.ABI)
	switch {
	case r.FromProc:
		who += ", read from /proc (already running)"
	case r.Forked:
		who += fmt.Sprintf(", forked at seq %d (a copy of its parent's)", r.ExecSeq)
	case r.ExecSeq != 0:
		who += fmt.Sprintf(" from seq %d", r.ExecSeq)
	}
	if r.PPID != 0 {
		who += fmt.Sprintf("; parent pid %d %s (%s)", r.PPID, orUnknown(r.ParentComm), r.ParentABI)
	}
	f.field("who", who, sgrNone)
	if len(r.Argv) > 0 {
		f.field("command", commandLine(r.Argv, r.ArgvTruncated), sgrNone)
	}
	lay := orUnknown(r.Layout)
	if r.LayoutReason != "" {
		lay += " (" + r.LayoutReason + ")"
	}
	f.field("layout", lay, sgrNone)
	pers := hex(uint64(r.Personality)) + " " + personalityNames(r.Personality)
	if src := personalitySource(r); src != "" {
		pers += ", " + src
	}
	f.field("personality", pers, sgrNone)
}

// heap: the mmap base, the heap and its headroom.
func (f *reportFields) heap(r *layout.Report, threshold uint64) {
	f.field("mmap base", hex(r.MmapBase), sgrNone)
	f.field("heap", fmt.Sprintf("%s-%s (%s)", hex(r.StartBrk), hex(r.Brk), Size(r.Brk-min(r.StartBrk, r.Brk))), sgrNone)
	usable := ""
	if r.BrkUsableWhy != "" && Size(r.BrkUsable) != Size(r.BrkHeadroom) {
		usable = "; brk can use " + Size(r.BrkUsable) + ": " + r.BrkUsableWhy
	}
	if r.BrkHeadroom < threshold {
		f.field("headroom", Size(r.BrkHeadroom)+" SQUEEZED (below "+Size(threshold)+")"+usable, sgrBadRed)
	} else {
		f.field("headroom", Size(r.BrkHeadroom)+usable, sgrGreen)
	}
}

// verdict: the squeezer, what bounds the heap, the failed brks, lost
// events and the notes.
func (f *reportFields) verdict(r *layout.Report) {
	if sq := r.Squeezer; sq != nil {
		f.field("squeezer", fmt.Sprintf("%s %s, placement %s, seq %d, left %s of headroom",
			mappingShort(&sq.Mapping), sq.Prot, orUnknown(string(sq.Placement)), sq.Seq, Size(sq.Headroom)), sgrBadRed)
	} else {
		f.field("squeezer", "none", sgrNone)
	}
	switch b := r.BoundedBy; {
	case b == nil:
		f.field("bounded by", "the mmap base", sgrNone)
	case r.Squeezer != nil && b.Start == r.Squeezer.Start && b.End == r.Squeezer.End:
		f.field("bounded by", "the squeezer", sgrNone)
	default:
		s := mappingShort(b) + " " + b.Prot
		if b.Placement != layout.PlacementNone {
			s += ", placement " + string(b.Placement)
		}
		if b.Seq != 0 {
			s += fmt.Sprintf(", seq %d", b.Seq)
		}
		f.field("bounded by", s, sgrNone)
	}
	if len(r.BrkFailures) == 0 {
		f.field("brk failures", "none", sgrNone)
	} else {
		f.field("brk failures", strconv.Itoa(len(r.BrkFailures)), sgrBadRed)
		for i := range r.BrkFailures {
			b := &r.BrkFailures[i]
			s := fmt.Sprintf("seq %d brk(%s) = %s, ", b.Seq, hex(b.Requested), hex(b.Result))
			if b.BlockedBy != nil {
				s += "blocked by " + mappingShort(b.BlockedBy)
			} else {
				s += b.Why()
			}
			f.field("", s, sgrRed)
		}
	}
	lost := strconv.FormatUint(r.LostEvents, 10)
	if r.Uncertain {
		f.field("lost events", lost+", verdict uncertain", sgrYellow)
	} else {
		f.field("lost events", lost, sgrNone)
	}
	for i, n := range r.Notes {
		name := ""
		if i == 0 {
			name = "notes"
		}
		f.field(name, n, sgrYellow)
	}
}

func endPhrase(r *layout.Report) string {
	switch r.Ended {
	case "exit":
		return "exited" + atSeq(r.EndSeq)
	case "exec":
		return "replaced by exec" + atSeq(r.EndSeq)
	}
	return "still running when mmtrace stopped"
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// mappingShort is "0x57a5f000-0x5825f000 /var/tmp/blob.dat".
func mappingShort(m *layout.Mapping) string {
	return hex(m.Start) + "-" + hex(m.End) + " " + shortPath(m.Path)
}

// wrap breaks s into lines of at most width runes, the first prefixed by
// first and the rest by rest.
func wrap(s string, width int, first, rest string) []string {
	s = printable(s)
	var out []string
	line := first
	empty := true
	for _, word := range strings.Fields(s) {
		if !empty && len([]rune(line))+1+len([]rune(word)) > width {
			out = append(out, line)
			line, empty = rest, true
		}
		if !empty {
			line += " "
		}
		line += word
		empty = false
	}
	if !empty {
		out = append(out, line)
	}
	return out
}

func (t *textRenderer) Summary(s Summary) {
	t.w.WriteByte('\n')
	var l styled
	l.add(fmt.Sprintf("== summary: %s, %d squeezed, %d with failed brk, %s lost, traced for %s ==",
		plural(s.Images, "image"), s.Squeezed, s.BrkFailed, plural(int(min(s.Lost, 1<<62)), "event"), s.Duration.Round(1e6)), sgrBold)
	t.w.WriteString(l.render(0, t.o.Color))
	t.w.WriteByte('\n')
	for _, r := range s.Failing {
		if r == nil {
			continue
		}
		var f styled
		f.add("  FAIL ", sgrBadRed)
		f.add(CheckLine(r), sgrNone)
		t.w.WriteString(f.render(0, t.o.Color))
		t.w.WriteByte('\n')
	}
}

// commandLine shows argv as a shell would need it typed: plain words bare,
// others quoted; "..." when it was cut.
func commandLine(argv []string, truncated bool) string {
	var b strings.Builder
	for i, a := range argv {
		if i > 0 {
			b.WriteByte(' ')
		}
		if a != "" && strings.IndexFunc(a, needsQuote) < 0 {
			b.WriteString(a)
		} else {
			b.WriteString(strconv.Quote(a))
		}
	}
	if truncated {
		b.WriteString(" ...")
	}
	return b.String()
}

func needsQuote(r rune) bool {
	switch {
	case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		return false
	}
	return !strings.ContainsRune("/.-_=:,+@%", r)
}
