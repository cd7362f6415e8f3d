package events

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unsafe"

	"github.com/mmtrace/mmtrace/bpf"
)

// Record sizes, from the generated mirrors of the C structs.
var (
	sizeHeader    = int(unsafe.Sizeof(bpf.MmtraceEventHeader{}))
	sizeMem       = int(unsafe.Sizeof(bpf.MmtraceMemEvent{}))
	sizeMemPath   = int(unsafe.Sizeof(bpf.MmtraceMemPathEvent{}))
	sizeExec      = int(unsafe.Sizeof(bpf.MmtraceExecEvent{}))
	sizeExecMin   = int(unsafe.Offsetof(bpf.MmtraceExecEvent{}.MntNs)) // recordings made before mnt_ns and root
	sizeVMA       = int(unsafe.Sizeof(bpf.MmtraceVmaEvent{}))
	sizeExecve    = int(unsafe.Sizeof(bpf.MmtraceExecveEvent{}))
	sizeExecveMin = int(unsafe.Offsetof(bpf.MmtraceExecveEvent{}.Args))
	sizeTask      = int(unsafe.Sizeof(bpf.MmtraceTaskEvent{}))
	sizeLost      = int(unsafe.Sizeof(bpf.MmtraceLostEvent{}))
	errUnknown    = errors.New("unknown record kind")
	errTruncated  = errors.New("record shorter than its kind requires")
)

// ErrUnknownKind is returned (wrapped) for a record of a kind this version
// does not know: count it and go on, a newer kernel object or recording
// may have more kinds.
var ErrUnknownKind = errUnknown

// Decoder turns raw records into Events. It is not safe for concurrent use.
// Decoding a memory-syscall record allocates nothing; file paths are
// interned so a path seen before costs no allocation either.
type Decoder struct {
	seq     uint64
	unknown uint64
	paths   map[string]string

	// Scratch copies of the records, reused for every decode.
	mem    bpf.MmtraceMemPathEvent
	exec   bpf.MmtraceExecEvent
	vma    bpf.MmtraceVmaEvent
	execve bpf.MmtraceExecveEvent
	task   bpf.MmtraceTaskEvent
	lost   bpf.MmtraceLostEvent
}

// NewDecoder returns a decoder whose first event gets Seq 1.
func NewDecoder() *Decoder {
	return &Decoder{paths: make(map[string]string)}
}

// SkipSeq advances the sequence numbers by n records that were lost (to
// damage in a recording), so the events after them keep their numbers.
func (d *Decoder) SkipSeq(n uint64) { d.seq += n }

// Unknown is the number of records of unknown kinds seen so far.
func (d *Decoder) Unknown() uint64 { return d.unknown }

// Decode fills ev from one raw record. ev is overwritten entirely. Records
// of an unknown kind return an error wrapping ErrUnknownKind and still
// take a sequence number, so that replays number events the same way.
func (d *Decoder) Decode(raw []byte, ev *Event) error {
	*ev = Event{}
	if len(raw) < sizeHeader {
		return fmt.Errorf("record of %d bytes is shorter than a header (%d): %w", len(raw), sizeHeader, errTruncated)
	}
	d.seq++
	kind := Kind(raw[0])
	ev.Seq = d.seq
	ev.Kind = kind

	var h *bpf.MmtraceEventHeader
	switch kind {
	case KindMmap, KindMunmap, KindMremap, KindMprotect, KindBrk, KindPersonality, KindUnmodeled:
		if !load(&d.mem.M, raw, sizeMem) {
			return short(kind, raw, sizeMem)
		}
		m := &d.mem.M
		h = &m.H
		ev.Syscall = m.Syscall
		ev.FD = m.Fd
		ev.Addr = m.Addr
		ev.Len = m.Len
		ev.NewLen = m.NewLen
		ev.NewAddr = m.NewAddr
		ev.Offset = m.Offset
		ev.Prot = m.Prot
		ev.Flags = m.Flags
		ev.Ret = m.Ret
		ev.Searches = m.Searches
		ev.SearchFlags = m.SearchFlags &^ orderUnknownFlag
		ev.OrderUnknown = m.SearchFlags&orderUnknownFlag != 0
		ev.SearchLow = m.SearchLow
		ev.SearchHigh = m.SearchHigh
		ev.SearchResult = m.SearchResult
		if len(raw) >= sizeMemPath {
			load(&d.mem, raw, sizeMemPath)
			ev.Path = d.intern(cstr(d.mem.Path[:]))
		}
	case KindExec:
		if len(raw) < sizeExecMin {
			return short(kind, raw, sizeExecMin)
		}
		d.exec = bpf.MmtraceExecEvent{}
		load(&d.exec, raw, min(len(raw), sizeExec))
		e := &d.exec
		h = &e.H
		ev.Exec = &Exec{
			Comm:                 string(cstr(e.Comm[:])),
			Filename:             string(cstr(e.Filename[:])),
			OldPID:               e.OldPid,
			PPID:                 e.Ppid,
			ParentComm:           string(cstr(e.ParentComm[:])),
			ParentABI:            ABI(e.ParentAbi),
			Personality:          e.Personality,
			TaskSize:             e.TaskSize,
			StartCode:            e.StartCode,
			EndCode:              e.EndCode,
			StartData:            e.StartData,
			EndData:              e.EndData,
			StartBrk:             e.StartBrk,
			Brk:                  e.Brk,
			StartStack:           e.StartStack,
			MmapBase:             e.MmapBase,
			MmapLegacyBase:       e.MmapLegacyBase,
			MmapCompatBase:       e.MmapCompatBase,
			MmapCompatLegacyBase: e.MmapCompatLegacyBase,
			RlimStackCur:         e.RlimStackCur,
			RlimStackMax:         e.RlimStackMax,
			VMACount:             e.VmaCount,
			VMAsKnown:            e.VmasKnown != 0,
			VMAsFromProc:         e.VmasKnown == vmasFromProc,
			MntNS:                e.MntNs,
			Root:                 string(cstr(e.Root[:])),
			ArgvTruncated:        e.ArgsFlags&uint16(bpf.MmtraceArgsFlagARGS_TRUNCATED) != 0,
		}
		if n := min(int(e.ArgsLen), len(e.Args)); n > 0 {
			ev.Exec.Argv = strings.Split(strings.TrimSuffix(string(bytesOf(e.Args[:n])), "\x00"), "\x00")
		}
		ev.Comm = ev.Exec.Comm
	case KindVMA:
		if !load(&d.vma, raw, sizeVMA) {
			return short(kind, raw, sizeVMA)
		}
		v := &d.vma
		h = &v.H
		ev.VMA = VMA{
			Start: v.Start, End: v.End, Flags: v.Flags, PgOff: v.Pgoff,
			Path: d.intern(cstr(v.Path[:])), Index: v.Index, Total: v.Total,
		}
	case KindExecve:
		// Older versions had a shorter argument area: take what is there.
		if len(raw) < sizeExecveMin {
			return short(kind, raw, sizeExecveMin)
		}
		d.execve = bpf.MmtraceExecveEvent{}
		load(&d.execve, raw, min(len(raw), sizeExecve))
		e := &d.execve
		h = &e.H
		ev.Syscall = e.Syscall
		ev.Ret = e.Ret
		ev.Path = string(cstr(e.Filename[:]))
		ev.Argv = splitArgs(bytesOf(e.Args[:]), int(e.Argc))
		ev.ArgvTruncated = e.ArgsFlags&uint16(bpf.MmtraceArgsFlagARGS_TRUNCATED) != 0
	case KindFork, KindExit:
		if !load(&d.task, raw, sizeTask) {
			return short(kind, raw, sizeTask)
		}
		t := &d.task
		h = &t.H
		ev.Child = t.Child
		ev.ExitCode = t.ExitCode
		ev.Comm = d.intern(cstr(t.Comm[:]))
	case KindLost:
		if !load(&d.lost, raw, sizeLost) {
			return short(kind, raw, sizeLost)
		}
		h = &d.lost.H
		ev.Lost = d.lost.Count
	default:
		d.unknown++
		return fmt.Errorf("record kind %d: %w", raw[0], errUnknown)
	}
	ev.ABI = ABI(h.Abi)
	ev.PID = h.Pid
	ev.TID = h.Tid
	ev.Time = h.Time
	ev.ChangeSeq = h.Seq
	return nil
}

// load copies the first n bytes of raw over *dst, which is the generated
// mirror of a C struct of size n. Copying (rather than casting raw) keeps
// alignment irrelevant and raw reusable.
func load[T any](dst *T, raw []byte, n int) bool {
	if len(raw) < n {
		return false
	}
	copy(unsafe.Slice((*byte)(unsafe.Pointer(dst)), n), raw[:n])
	return true
}

func short(k Kind, raw []byte, want int) error {
	return fmt.Errorf("%s record of %d bytes, want %d: %w", k, len(raw), want, errTruncated)
}

func bytesOf(a []int8) []byte {
	if len(a) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&a[0])), len(a))
}

// cstr is the bytes of a NUL-terminated C string in a fixed array.
func cstr(a []int8) []byte {
	b := bytesOf(a)
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return b[:i]
	}
	return b
}

func (d *Decoder) intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if s, ok := d.paths[string(b)]; ok { // no allocation for the lookup
		return s
	}
	if len(d.paths) > 1<<16 {
		clear(d.paths) // bound the table; interning is only an optimisation
	}
	s := string(b)
	d.paths[s] = s
	return s
}

// splitArgs splits the NUL-separated arguments; n comes from the record
// and is not trusted (a damaged recording may claim billions).
func splitArgs(b []byte, n int) []string {
	n = min(n, len(b)/2+1)
	args := make([]string, 0, n)
	for len(args) < n && len(b) > 0 {
		i := bytes.IndexByte(b, 0)
		if i < 0 {
			args = append(args, string(b))
			break
		}
		args = append(args, string(b[:i]))
		b = b[i+1:]
	}
	return args
}

// vmas_known values in exec records: 0 none, 1 walked by the kernel at
// exec, vmasFromProc read from /proc by the consumer (EncodeProcVMAs).
const vmasFromProc = 2

// EndsImage reports whether raw is a record that ends a process image (an
// exit, or an exec replacing it), and whose. For an exec, lostBefore is
// the process's drop counter just before it, as the kernel read it:
// drops up to there belong to the image the exec ends. For an exit,
// lostBefore is -1: every drop counted so far belongs to the image.
func EndsImage(raw []byte) (pid uint32, lostBefore int64, ok bool) {
	if len(raw) < sizeHeader {
		return 0, 0, false
	}
	switch Kind(raw[0]) {
	case KindExit:
		var h bpf.MmtraceEventHeader
		load(&h, raw, sizeHeader)
		return h.Pid, -1, true
	case KindExec:
		if len(raw) < sizeExec {
			return 0, 0, false
		}
		var x bpf.MmtraceExecEvent
		load(&x, raw, sizeExec)
		return x.H.Pid, int64(x.LostBefore), true
	}
	return 0, 0, false
}

// ExecWithoutVMAs reports whether raw is an exec record whose kernel could
// not walk the new image's VMAs, and the process it is about.
func ExecWithoutVMAs(raw []byte) (pid uint32, ok bool) {
	if len(raw) < sizeExec || Kind(raw[0]) != KindExec {
		return 0, false
	}
	var x bpf.MmtraceExecEvent
	load(&x, raw, sizeExec)
	return x.H.Pid, x.VmasKnown == 0
}

// EncodeProcVMAs is for kernels that cannot walk VMAs at exec: given an
// exec record without VMAs and the VMAs the consumer read from
// /proc/PID/maps, it returns the exec record marked as such, followed by
// one VMA record per mapping, all in the kernel's record layout, so that
// they are modelled and recorded like the kernel's own.
func EncodeProcVMAs(execRaw []byte, vmas []VMA) ([][]byte, error) {
	if len(execRaw) < sizeExec || Kind(execRaw[0]) != KindExec {
		return nil, fmt.Errorf("not an exec record")
	}
	var x bpf.MmtraceExecEvent
	load(&x, execRaw, sizeExec)
	x.VmasKnown = vmasFromProc
	x.VmaCount = uint32(len(vmas))
	out := [][]byte{bytesOfStruct(&x)}
	// /proc/PID/maps names files as the reader sees them; the kernel's
	// records name them as the process sees them, under its own root.
	root := strings.TrimSuffix(string(cstr(x.Root[:])), "/")
	for i, v := range vmas {
		if root != "" && strings.HasPrefix(v.Path, root+"/") {
			v.Path = v.Path[len(root):]
		}
		rec := bpf.MmtraceVmaEvent{
			H:     bpf.MmtraceEventHeader{Kind: uint8(KindVMA), Pid: x.H.Pid, Tid: x.H.Tid, Time: x.H.Time},
			Start: v.Start, End: v.End, Flags: v.Flags, Pgoff: v.PgOff,
			Index: uint32(i), Total: uint32(len(vmas)),
		}
		copy(bytesOf(rec.Path[:len(rec.Path)-1]), v.Path)
		out = append(out, bytesOfStruct(&rec))
	}
	return out, nil
}

func bytesOfStruct[T any](v *T) []byte {
	return append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(v)), unsafe.Sizeof(*v))...)
}

// orderUnknownFlag is SEARCH_ORDER_UNKNOWN in mem_event.search_flags.
const orderUnknownFlag = 0x80000000

// EncodeLost builds a lost record in the kernel's record layout, so that
// drops counted in the kernel travel (and are recorded) like any record.
func EncodeLost(pid uint32, count, time uint64) []byte {
	rec := bpf.MmtraceLostEvent{
		H:     bpf.MmtraceEventHeader{Kind: uint8(KindLost), Pid: pid, Time: time},
		Count: count,
	}
	return bytesOfStruct(&rec)
}
