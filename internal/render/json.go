package render

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"

	"github.com/mmtrace/mmtrace/internal/events"
	"github.com/mmtrace/mmtrace/internal/layout"
)

// jsonRenderer writes one JSON object per line, "type" first (README,
// "Public contract"). Lines are built by appending into one reused buffer:
// the event path runs for every record and must not allocate per field.
type jsonRenderer struct {
	w   *bufio.Writer
	o   Options
	j   jsonBuf
	who whoFields
}

// NewJSON returns the JSON-lines renderer. Output is buffered until Flush.
func NewJSON(w io.Writer, o Options) Renderer {
	return &jsonRenderer{w: bufio.NewWriterSize(w, 64<<10), o: o}
}

func (r *jsonRenderer) Flush() error {
	if err := r.w.Flush(); err != nil {
		return fmt.Errorf("write json output: %w", err)
	}
	return nil
}

func (r *jsonRenderer) line() {
	r.j.b = append(r.j.b, '\n')
	r.w.Write(r.j.b)
	r.j.b = r.j.b[:0]
}

// Snapshot writes nothing: the report line carries the layout.
func (r *jsonRenderer) Snapshot(*layout.Report) {}

func (r *jsonRenderer) Event(ev *events.Event, ch layout.Change) {
	if ev == nil {
		return
	}
	switch {
	case ev.Kind == events.KindLost:
	case !ch.Tracked:
		return
	case ev.Kind == events.KindVMA && !r.o.Verbose:
		return
	}
	j := &r.j
	r.eventHead(ev, ch)
	switch ev.Kind {
	case events.KindExec:
		j.execFields(ev.Exec, ch)
	case events.KindVMA:
		j.vmaFields(&ev.VMA)
	case events.KindMmap:
		j.mmapFields(ev, ch)
	case events.KindMunmap:
		j.hex("addr", ev.Addr)
		j.uint("len", ev.Len)
		j.intResult(ev.Ret)
		j.uint("headroom", ch.Headroom)
	case events.KindMremap:
		j.mremapFields(ev, ch)
	case events.KindMprotect:
		j.hex("addr", ev.Addr)
		j.uint("len", ev.Len)
		j.protField(ev.Prot)
		j.intResult(ev.Ret)
	case events.KindBrk:
		j.brkFields(ev, ch)
	case events.KindPersonality:
		j.hex("persona", ev.Addr)
		if uint32(ev.Addr) == personalityQuery {
			j.str("persona_names", "query")
		} else {
			j.str("persona_names", personalityNames(uint32(ev.Addr)))
		}
		j.hexResult(ev.Ret)
	case events.KindUnmodeled:
		j.str("call", events.UnmodeledCall(ev))
		j.hex("arg0", ev.Addr)
		j.hex("arg1", ev.Len)
		j.hex("arg2", ev.NewLen)
		j.hexResult(ev.Ret)
	case events.KindExecve:
		j.str("path", ev.Path)
		j.argv(ev.Argv, ev.ArgvTruncated)
		j.intResult(ev.Ret)
	case events.KindFork:
		j.uint("child", uint64(ev.Child))
	case events.KindExit:
		j.int("exit_code", int64(ev.ExitCode))
	case events.KindLost:
		j.uint("lost", ev.Lost)
	}
	j.close()
	r.line()
}

// eventHead opens an event's object with the fields every event has:
// type, seq, time_ns, then whose it is (pid, tid, comm, abi). A process's
// events come in runs, so the "whose" fields are kept as the bytes of the
// last event's and copied while they stay the same.
func (r *jsonRenderer) eventHead(ev *events.Event, ch layout.Change) {
	j := &r.j
	j.open()
	j.str("type", ev.Kind.String())
	j.uint("seq", ev.Seq)
	j.uint("time_ns", ev.Time)
	comm := ch.Comm
	if comm == "" {
		comm = ev.Comm
	}
	if comm == "" && ev.Exec != nil {
		comm = ev.Exec.Comm
	}
	w := &r.who
	if w.b == nil || w.pid != ev.PID || w.tid != ev.TID || w.comm != comm || w.abi != ev.ABI {
		at := len(j.b)
		j.uint("pid", uint64(ev.PID))
		j.uint("tid", uint64(ev.TID))
		j.str("comm", comm)
		j.str("abi", ev.ABI.String())
		w.pid, w.tid, w.comm, w.abi = ev.PID, ev.TID, comm, ev.ABI
		w.b = append(w.b[:0], j.b[at:]...)
		return
	}
	j.b = append(j.b, w.b...)
}

// whoFields are the bytes of the last event's pid, tid, comm and abi
// fields (from the comma before "pid"), and what they say.
type whoFields struct {
	pid, tid uint32
	comm     string
	abi      events.ABI
	b        []byte
}

// execFields are an exec's image facts. The headroom is known once the
// exec's VMA snapshot is complete, usually a few records later; 0 here
// would read as squeezed.
func (j *jsonBuf) execFields(x *events.Exec, ch layout.Change) {
	if x != nil {
		j.str("exe", x.Filename)
		j.argv(x.Argv, x.ArgvTruncated)
		j.uint("old_pid", uint64(x.OldPID))
		j.uint("ppid", uint64(x.PPID))
		j.str("parent_comm", x.ParentComm)
		j.str("parent_abi", x.ParentABI.String())
		j.hex("personality", uint64(x.Personality))
		j.hex("task_size", x.TaskSize)
		j.hex("start_code", x.StartCode)
		j.hex("end_code", x.EndCode)
		j.hex("start_data", x.StartData)
		j.hex("end_data", x.EndData)
		j.hex("start_brk", x.StartBrk)
		j.hex("brk", x.Brk)
		j.hex("start_stack", x.StartStack)
		j.hex("mmap_base", x.MmapBase)
		j.hex("mmap_legacy_base", x.MmapLegacyBase)
		j.hex("mmap_compat_base", x.MmapCompatBase)
		j.hex("mmap_compat_legacy_base", x.MmapCompatLegacyBase)
		j.uint("rlimit_stack_cur", x.RlimStackCur)
		j.uint("rlimit_stack_max", x.RlimStackMax)
		j.uint("vma_count", uint64(x.VMACount))
		j.boolean("vmas_known", x.VMAsKnown)
	}
	if ch.SnapshotReady {
		j.uint("headroom", ch.Headroom)
	} else {
		j.null("headroom")
	}
}

// vmaFields are one VMA of an exec's snapshot (--verbose).
func (j *jsonBuf) vmaFields(v *events.VMA) {
	j.hex("start", v.Start)
	j.hex("end", v.End)
	j.key("prot")
	j.b = append(j.b, '"')
	j.b = appendVMAProt(j.b, v.Flags)
	j.b = append(j.b, '"')
	j.hex("flags_raw", v.Flags)
	j.uint("offset", v.PgOff*4096)
	j.str("path", v.Path)
	j.uint("index", uint64(v.Index))
	j.uint("total", uint64(v.Total))
}

func (j *jsonBuf) mmapFields(ev *events.Event, ch layout.Change) {
	j.hex("addr", ev.Addr)
	j.uint("len", ev.Len)
	j.protField(ev.Prot)
	j.key("flags")
	j.b = append(j.b, '"')
	j.b = appendMmapFlags(j.b, ev.Flags, "MAP_")
	j.b = append(j.b, '"')
	j.hex("flags_raw", uint64(ev.Flags))
	j.int("fd", int64(ev.FD))
	j.uint("offset", ev.Offset)
	j.hexResult(ev.Ret)
	j.str("path", ev.Path)
	j.str("placement", string(ch.Placement))
	j.uint("headroom", ch.Headroom)
	j.boolean("new_squeezer", ch.NewSqueezer != nil)
}

func (j *jsonBuf) mremapFields(ev *events.Event, ch layout.Change) {
	j.hex("addr", ev.Addr)
	j.uint("old_len", ev.Len)
	j.uint("new_len", ev.NewLen)
	j.key("flags")
	j.b = append(j.b, '"')
	j.b = appendFlagNames(j.b, ev.Flags, mremapFlags, "MREMAP_")
	j.b = append(j.b, '"')
	j.hex("flags_raw", uint64(ev.Flags))
	j.hex("new_addr", ev.NewAddr)
	j.hexResult(ev.Ret)
	j.str("placement", string(ch.Placement))
	j.uint("headroom", ch.Headroom)
	j.boolean("new_squeezer", ch.NewSqueezer != nil)
}

func (j *jsonBuf) brkFields(ev *events.Event, ch layout.Change) {
	j.hex("requested", ev.Addr)
	j.hex("result", uint64(ev.Ret))
	f := ch.BrkFailure
	j.boolean("failed", f != nil)
	if f != nil && f.BlockedBy != nil {
		j.hex("blocked_by", f.BlockedBy.Start)
	} else {
		j.null("blocked_by")
	}
	if f != nil {
		j.str("cause", string(f.Reason()))
	}
	j.uint("headroom", ch.Headroom)
}

func (r *jsonRenderer) Report(rep *layout.Report) {
	if rep == nil {
		return
	}
	j := &r.j
	j.open()
	j.str("type", "report")
	j.reportImage(rep)
	j.key("squeezer")
	if sq := rep.Squeezer; sq != nil {
		j.open()
		j.mappingFields(&sq.Mapping)
		j.uint("headroom", sq.Headroom)
		j.close()
	} else {
		j.b = append(j.b, "null"...)
	}
	j.key("bounded_by")
	if rep.BoundedBy != nil {
		j.open()
		j.mappingFields(rep.BoundedBy)
		j.close()
	} else {
		j.b = append(j.b, "null"...)
	}
	j.brkFailures(rep.BrkFailures)
	r.reportVMAs(rep)
	j.uint("lost_events", rep.LostEvents)
	j.boolean("uncertain", rep.Uncertain)
	j.boolean("from_proc", rep.FromProc)
	j.boolean("forked", rep.Forked)
	j.key("notes")
	j.b = append(j.b, '[')
	for i, n := range rep.Notes {
		if i > 0 {
			j.b = append(j.b, ',')
		}
		j.b = appendJSONString(j.b, n)
	}
	j.b = append(j.b, ']')
	j.str("ended", rep.Ended)
	j.uint("exec_seq", rep.ExecSeq)
	j.uint("end_seq", rep.EndSeq)
	j.close()
	r.line()
}

// reportImage writes what a report says of the image itself: who it is,
// its layout and its heap.
func (j *jsonBuf) reportImage(rep *layout.Report) {
	j.uint("pid", uint64(rep.PID))
	j.str("comm", rep.Comm)
	j.str("exe", rep.Exe)
	j.argv(rep.Argv, rep.ArgvTruncated)
	j.str("abi", rep.ABI.String())
	j.uint("ppid", uint64(rep.PPID))
	j.str("parent_comm", rep.ParentComm)
	j.str("parent_abi", rep.ParentABI.String())
	j.hex("personality", uint64(rep.Personality))
	j.str("personality_source", rep.PersonalitySource)
	j.str("layout", rep.Layout)
	j.str("layout_reason", rep.LayoutReason)
	j.hex("mmap_base", rep.MmapBase)
	j.hex("start_brk", rep.StartBrk)
	j.hex("brk", rep.Brk)
	j.uint("brk_headroom", rep.BrkHeadroom)
	j.uint("brk_usable_headroom", rep.BrkUsable)
}

func (j *jsonBuf) brkFailures(fs []layout.BrkFailure) {
	j.key("brk_failures")
	j.b = append(j.b, '[')
	for i := range fs {
		f := &fs[i]
		j.open()
		j.uint("seq", f.Seq)
		j.hex("requested", f.Requested)
		j.hex("result", f.Result)
		if f.BlockedBy != nil {
			j.hex("blocked_by", f.BlockedBy.Start)
		} else {
			j.null("blocked_by")
		}
		j.str("cause", string(f.Reason()))
		j.close()
	}
	j.b = append(j.b, ']')
}

// reportVMAs writes the "vmas" array. A report may list hundreds of
// thousands: they are read from the model one at a time (EachVMA), each
// is written with its keys in one piece (the same bytes as key and str
// would write), and the line goes out as it grows rather than being held
// whole.
func (r *jsonRenderer) reportVMAs(rep *layout.Report) {
	j := &r.j
	j.key("vmas")
	j.b = append(j.b, '[')
	first := true
	rep.EachVMA(func(m *layout.Mapping) bool {
		if !first {
			j.b = append(j.b, ',')
		}
		first = false
		j.b = append(j.b, `{"start":"0x`...)
		j.b = strconv.AppendUint(j.b, m.Start, 16)
		j.b = append(j.b, `","end":"0x`...)
		j.b = strconv.AppendUint(j.b, m.End, 16)
		j.b = append(j.b, `","prot":`...)
		j.b = appendJSONString(j.b, m.Prot)
		j.b = append(j.b, `,"path":`...)
		j.b = appendJSONString(j.b, m.Path)
		j.b = append(j.b, `,"placement":`...)
		j.b = appendJSONString(j.b, string(m.Placement))
		j.b = append(j.b, '}')
		if n := len(j.b); n >= 64<<10 {
			// Keep the last byte for sep.
			r.w.Write(j.b[:n-1])
			j.b = append(j.b[:0], j.b[n-1])
		}
		return true
	})
	j.b = append(j.b, ']')
}

func (r *jsonRenderer) Summary(s Summary) {
	j := &r.j
	j.open()
	j.str("type", "summary")
	j.uint("images", uint64(max(s.Images, 0)))
	j.uint("squeezed", uint64(max(s.Squeezed, 0)))
	j.uint("brk_failed", uint64(max(s.BrkFailed, 0)))
	j.uint("lost_events", s.Lost)
	j.int("duration_ns", int64(s.Duration))
	j.boolean("check", s.Check)
	j.key("failing")
	j.b = append(j.b, '[')
	for _, rep := range s.Failing {
		if rep == nil {
			continue
		}
		j.open()
		j.uint("pid", uint64(rep.PID))
		j.str("comm", rep.Comm)
		j.str("exe", rep.Exe)
		j.str("abi", rep.ABI.String())
		j.str("layout", rep.Layout)
		j.boolean("squeezed", rep.Squeezer != nil)
		j.uint("brk_headroom", rep.BrkHeadroom)
		j.uint("brk_failures", uint64(len(rep.BrkFailures)))
		j.boolean("uncertain", rep.Uncertain)
		j.close()
	}
	j.b = append(j.b, ']')
	j.close()
	r.line()
}

// jsonBuf appends JSON by hand. sep decides commas from the last byte, so
// objects and arrays nest without bookkeeping.
type jsonBuf struct{ b []byte }

func (j *jsonBuf) sep() {
	if n := len(j.b); n > 0 {
		switch j.b[n-1] {
		case '{', '[', ':', '\n':
		default:
			j.b = append(j.b, ',')
		}
	}
}

func (j *jsonBuf) open() {
	j.sep()
	j.b = append(j.b, '{')
}

func (j *jsonBuf) close() { j.b = append(j.b, '}') }

func (j *jsonBuf) key(k string) {
	j.sep()
	j.b = append(j.b, '"')
	j.b = append(j.b, k...)
	j.b = append(j.b, '"', ':')
}

func (j *jsonBuf) str(k, v string) {
	j.key(k)
	j.b = appendJSONString(j.b, v)
}

func (j *jsonBuf) hex(k string, v uint64) {
	j.key(k)
	j.b = append(j.b, '"')
	j.b = appendHex(j.b, v)
	j.b = append(j.b, '"')
}

func (j *jsonBuf) uint(k string, v uint64) {
	j.key(k)
	j.b = strconv.AppendUint(j.b, v, 10)
}

func (j *jsonBuf) int(k string, v int64) {
	j.key(k)
	j.b = strconv.AppendInt(j.b, v, 10)
}

func (j *jsonBuf) boolean(k string, v bool) {
	j.key(k)
	j.b = strconv.AppendBool(j.b, v)
}

// argv writes "argv" (always, [] when unknown) and "argv_truncated": true
// when the command line was longer than the record held.
func (j *jsonBuf) argv(argv []string, truncated bool) {
	j.key("argv")
	j.b = append(j.b, '[')
	for _, a := range argv {
		j.sep()
		j.b = appendJSONString(j.b, a)
	}
	j.b = append(j.b, ']')
	if truncated {
		j.boolean("argv_truncated", true)
	}
}

func (j *jsonBuf) null(k string) {
	j.key(k)
	j.b = append(j.b, "null"...)
}

// protField writes "prot":"rw-" and the raw bits.
func (j *jsonBuf) protField(prot uint32) {
	j.key("prot")
	j.b = append(j.b, '"')
	j.b = appendProt(j.b, prot)
	j.b = append(j.b, '"')
	j.hex("prot_raw", uint64(prot))
}

// hexResult writes a result (an address, a persona) in hex, or null and
// the errno name.
func (j *jsonBuf) hexResult(ret int64) {
	if isErr(ret) {
		j.null("result")
		j.str("error", errnoName(ret))
		return
	}
	j.hex("result", uint64(ret))
}

// intResult writes 0 or the negative errno and its name.
func (j *jsonBuf) intResult(ret int64) {
	j.int("result", ret)
	if isErr(ret) {
		j.str("error", errnoName(ret))
	}
}

// mappingFields writes the fields of the report's "squeezer" and
// "bounded_by" objects.
func (j *jsonBuf) mappingFields(m *layout.Mapping) {
	j.hex("start", m.Start)
	j.hex("end", m.End)
	j.str("prot", m.Prot)
	j.str("path", m.Path)
	j.str("placement", string(m.Placement))
	j.uint("seq", m.Seq)
}

// appendJSONString quotes s as a JSON string. Invalid UTF-8 (a path is
// just bytes) becomes U+FFFD so the line stays valid JSON.
func appendJSONString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	// Most strings (names, paths) need no escaping: copy the plain head
	// in one piece.
	i := 0
	for i < len(s) && jsonPlain(s[i]) {
		i++
	}
	b = append(b, s[:i]...)
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			// Valid JSON, but not valid inside JavaScript string literals.
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// jsonPlain says whether c stands for itself in a JSON string as
// appendJSONString writes it.
func jsonPlain(c byte) bool {
	return c >= 0x20 && c < utf8.RuneSelf && c != '"' && c != '\\' && c != 0x7f
}
