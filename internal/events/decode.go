package events

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

var (
	errUnknown   = errors.New("unknown record kind")
	errTruncated = errors.New("record shorter than its kind requires")
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

	// scratch holds a record shorter than its kind's full size (from an
	// older version), zero-filled to that size, reused for every decode.
	scratch []byte
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
	kind := Kind(hdrKind.get(raw))
	ev.Seq = d.seq
	ev.Kind = kind

	var err error
	switch kind {
	case KindMmap, KindMunmap, KindMremap, KindMprotect, KindBrk, KindPersonality, KindUnmodeled:
		err = d.memCall(raw, ev)
	case KindExec:
		err = d.exec(raw, ev)
	case KindVMA:
		err = d.vma(raw, ev)
	case KindExecve:
		err = d.execve(raw, ev)
	case KindFork, KindExit:
		if len(raw) < sizeTask {
			return short(kind, raw, sizeTask)
		}
		ev.Child = taskChild.get(raw)
		ev.ExitCode = taskExitCode.get(raw)
		ev.Comm = d.intern(cstr(taskComm.get(raw)))
	case KindLost:
		if len(raw) < sizeLost {
			return short(kind, raw, sizeLost)
		}
		ev.Lost = lostCount.get(raw)
	default:
		d.unknown++
		return fmt.Errorf("record kind %d: %w", kind, errUnknown)
	}
	if err != nil {
		return err
	}
	ev.ABI = ABI(hdrABI.get(raw))
	ev.PID = hdrPID.get(raw)
	ev.TID = hdrTID.get(raw)
	ev.Time = hdrTime.get(raw)
	ev.ChangeSeq = hdrSeq.get(raw)
	return nil
}

// memCall decodes a mem_event, with the file's path when it has one.
func (d *Decoder) memCall(raw []byte, ev *Event) error {
	if len(raw) < sizeMem {
		return short(ev.Kind, raw, sizeMem)
	}
	ev.Syscall = memSyscall.get(raw)
	ev.FD = memFD.get(raw)
	ev.Addr = memAddr.get(raw)
	ev.Len = memLen.get(raw)
	ev.NewLen = memNewLen.get(raw)
	ev.NewAddr = memNewAddr.get(raw)
	ev.Offset = memOffset.get(raw)
	ev.Prot = memProt.get(raw)
	ev.Flags = memFlags.get(raw)
	ev.Ret = memRet.get(raw)
	ev.Searches = memSearches.get(raw)
	flags := memSearchFlags.get(raw)
	ev.SearchFlags = flags &^ orderUnknownFlag
	ev.OrderUnknown = flags&orderUnknownFlag != 0
	ev.SearchLow = memSearchLow.get(raw)
	ev.SearchHigh = memSearchHigh.get(raw)
	ev.SearchResult = memSearchResult.get(raw)
	if len(raw) >= sizeMemPath {
		ev.Path = d.intern(cstr(memPath.get(raw)))
	}
	return nil
}

// exec decodes an exec_event: the new image's mm fields and argv.
func (d *Decoder) exec(raw []byte, ev *Event) error {
	if len(raw) < sizeExecMin {
		return short(ev.Kind, raw, sizeExecMin)
	}
	e := d.full(raw, sizeExec)
	ev.Exec = &Exec{
		Comm:                 string(cstr(execComm.get(e))),
		Filename:             string(cstr(execFilename.get(e))),
		OldPID:               execOldPID.get(e),
		PPID:                 execPPID.get(e),
		ParentComm:           string(cstr(execParentComm.get(e))),
		ParentABI:            ABI(execParentABI.get(e)),
		Personality:          execPersonality.get(e),
		TaskSize:             execTaskSize.get(e),
		StartCode:            execStartCode.get(e),
		EndCode:              execEndCode.get(e),
		StartData:            execStartData.get(e),
		EndData:              execEndData.get(e),
		StartBrk:             execStartBrk.get(e),
		Brk:                  execBrk.get(e),
		StartStack:           execStartStack.get(e),
		MmapBase:             execMmapBase.get(e),
		MmapLegacyBase:       execMmapLegacyBase.get(e),
		MmapCompatBase:       execMmapCompatBase.get(e),
		MmapCompatLegacyBase: execMmapCompatLegacyBase.get(e),
		RlimStackCur:         execRlimStackCur.get(e),
		RlimStackMax:         execRlimStackMax.get(e),
		VMACount:             execVMACount.get(e),
		VMAsKnown:            execVMAsKnown.get(e) != 0,
		VMAsFromProc:         execVMAsKnown.get(e) == vmasFromProc,
		MntNS:                execMntNS.get(e),
		Root:                 string(cstr(execRoot.get(e))),
		ArgvTruncated:        execArgsFlags.get(e)&argsTruncated != 0,
	}
	args := execArgs.get(e)
	if n := min(int(execArgsLen.get(e)), len(args)); n > 0 {
		ev.Exec.Argv = strings.Split(strings.TrimSuffix(string(args[:n]), "\x00"), "\x00")
	}
	ev.Comm = ev.Exec.Comm
	return nil
}

// vma decodes one VMA of an exec's snapshot.
func (d *Decoder) vma(raw []byte, ev *Event) error {
	if len(raw) < sizeVMA {
		return short(ev.Kind, raw, sizeVMA)
	}
	ev.VMA = VMA{
		Start: vmaStart.get(raw), End: vmaEnd.get(raw), Flags: vmaFlags.get(raw), PgOff: vmaPgOff.get(raw),
		Path: d.intern(cstr(vmaPath.get(raw))), Index: vmaIndex.get(raw), Total: vmaTotal.get(raw),
	}
	return nil
}

// execve decodes an execve call with its argument strings.
func (d *Decoder) execve(raw []byte, ev *Event) error {
	// Older versions had a shorter argument area: take what is there.
	if len(raw) < sizeExecveMin {
		return short(ev.Kind, raw, sizeExecveMin)
	}
	e := d.full(raw, sizeExecve)
	ev.Syscall = execveSyscall.get(e)
	ev.Ret = execveRet.get(e)
	ev.Path = string(cstr(execveFilename.get(e)))
	ev.Argv = splitArgs(execveArgs.get(e), int(execveArgc.get(e)))
	ev.ArgvTruncated = execveArgsFlags.get(e)&argsTruncated != 0
	return nil
}

// full returns raw as a record of n bytes: raw itself when it is that
// long, else a copy zero-filled to n (a record from an older version).
func (d *Decoder) full(raw []byte, n int) []byte {
	if len(raw) >= n {
		return raw[:n]
	}
	if cap(d.scratch) < n {
		d.scratch = make([]byte, n)
	}
	b := d.scratch[:n]
	clear(b[copy(b, raw):])
	return b
}

func short(k Kind, raw []byte, want int) error {
	return fmt.Errorf("%s record of %d bytes, want %d: %w", k, len(raw), want, errTruncated)
}

// cstr is the bytes of a NUL-terminated C string in a fixed array.
func cstr(b []byte) []byte {
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

// EndsImage reports whether raw is a record that ends a process image (an
// exit, or an exec replacing it), and whose. For an exec, lostBefore is
// the process's drop counter just before it, as the kernel read it:
// drops up to there belong to the image the exec ends. For an exit,
// lostBefore is -1: every drop counted so far belongs to the image.
func EndsImage(raw []byte) (pid uint32, lostBefore int64, ok bool) {
	if len(raw) < sizeHeader {
		return 0, 0, false
	}
	switch Kind(hdrKind.get(raw)) {
	case KindExit:
		return hdrPID.get(raw), -1, true
	case KindExec:
		if len(raw) < sizeExec {
			return 0, 0, false
		}
		return hdrPID.get(raw), int64(execLostBefore.get(raw)), true
	}
	return 0, 0, false
}

// ExecWithoutVMAs reports whether raw is an exec record whose kernel could
// not walk the new image's VMAs, and the process it is about.
func ExecWithoutVMAs(raw []byte) (pid uint32, ok bool) {
	if len(raw) < sizeExec || Kind(hdrKind.get(raw)) != KindExec {
		return 0, false
	}
	return hdrPID.get(raw), execVMAsKnown.get(raw) == 0
}

// EncodeProcVMAs is for kernels that cannot walk VMAs at exec: given an
// exec record without VMAs and the VMAs the consumer read from
// /proc/PID/maps, it returns the exec record marked as such, followed by
// one VMA record per mapping, all in the kernel's record layout, so that
// they are modelled and recorded like the kernel's own.
func EncodeProcVMAs(execRaw []byte, vmas []VMA) ([][]byte, error) {
	if len(execRaw) < sizeExec || Kind(hdrKind.get(execRaw)) != KindExec {
		return nil, fmt.Errorf("not an exec record")
	}
	x := append([]byte(nil), execRaw[:sizeExec]...)
	execVMAsKnown.put(x, vmasFromProc)
	execVMACount.put(x, uint32(len(vmas)))
	out := [][]byte{x}
	// /proc/PID/maps names files as the reader sees them; the kernel's
	// records name them as the process sees them, under its own root.
	root := strings.TrimSuffix(string(cstr(execRoot.get(x))), "/")
	for i, v := range vmas {
		if root != "" && strings.HasPrefix(v.Path, root+"/") {
			v.Path = v.Path[len(root):]
		}
		rec := make([]byte, sizeVMA)
		hdrKind.put(rec, uint8(KindVMA))
		hdrPID.put(rec, hdrPID.get(x))
		hdrTID.put(rec, hdrTID.get(x))
		hdrTime.put(rec, hdrTime.get(x))
		vmaStart.put(rec, v.Start)
		vmaEnd.put(rec, v.End)
		vmaFlags.put(rec, v.Flags)
		vmaPgOff.put(rec, v.PgOff)
		vmaIndex.put(rec, uint32(i))
		vmaTotal.put(rec, uint32(len(vmas)))
		path := vmaPath.get(rec)
		copy(path[:len(path)-1], v.Path)
		out = append(out, rec)
	}
	return out, nil
}

// EncodeLost builds a lost record in the kernel's record layout, so that
// drops counted in the kernel travel (and are recorded) like any record.
func EncodeLost(pid uint32, count, time uint64) []byte {
	rec := make([]byte, sizeLost)
	hdrKind.put(rec, uint8(KindLost))
	hdrPID.put(rec, pid)
	hdrTime.put(rec, time)
	lostCount.put(rec, count)
	return rec
}
