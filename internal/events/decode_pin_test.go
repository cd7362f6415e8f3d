package events

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/mmtrace/mmtrace/bpf"
)

// Tests that pin the decoding of each field and the helpers around exec
// records, against values set by hand in the kernel's record layout.

func pinCString(dst []int8, s string) {
	for i := range s {
		dst[i] = int8(s[i])
	}
}

// Every field of a memory record lands where Event's comment says; the top
// bit of search_flags is SEARCH_ORDER_UNKNOWN, not a search flag.
func TestPinDecodeMemFields(t *testing.T) {
	rec := bpf.MmtraceMemEvent{
		H:       bpf.MmtraceEventHeader{Kind: uint8(KindMremap), Abi: uint8(ABI64), Pid: 3, Tid: 4, Seq: 5, Time: 6},
		Syscall: 25, Fd: -1, Addr: 0x10000, Len: 0x2000, NewLen: 0x4000, NewAddr: 0x20000, Offset: 0x3000,
		Prot: 7, Flags: 3, Ret: -12,
		SearchLow: 0x1000, SearchHigh: 0x7fff0000, SearchResult: 0x30000,
		SearchFlags: orderUnknownFlag | 1, Searches: 2,
	}
	var ev Event
	if err := NewDecoder().Decode(pinBytes(&rec), &ev); err != nil {
		t.Fatal(err)
	}
	want := Event{
		Seq: 1, Time: 6, Kind: KindMremap, ABI: ABI64, PID: 3, TID: 4, ChangeSeq: 5,
		Syscall: 25, FD: -1, Addr: 0x10000, Len: 0x2000, NewLen: 0x4000, NewAddr: 0x20000, Offset: 0x3000,
		Prot: 7, Flags: 3, Ret: -12,
		SearchLow: 0x1000, SearchHigh: 0x7fff0000, SearchResult: 0x30000,
		SearchFlags: 1, OrderUnknown: true, Searches: 2,
	}
	if !pinEventEqual(ev, want) {
		t.Errorf("got  %+v\nwant %+v", ev, want)
	}
	// Without the bit the order is known and the flags are kept as they are.
	rec.SearchFlags = 1
	if err := NewDecoder().Decode(pinBytes(&rec), &ev); err != nil || ev.OrderUnknown || ev.SearchFlags != 1 {
		t.Errorf("order known: %v %+v", err, ev)
	}
}

func pinEventEqual(a, b Event) bool {
	return a.Seq == b.Seq && a.Time == b.Time && a.Kind == b.Kind && a.ABI == b.ABI && a.PID == b.PID &&
		a.TID == b.TID && a.ChangeSeq == b.ChangeSeq && a.Syscall == b.Syscall && a.FD == b.FD &&
		a.Addr == b.Addr && a.Len == b.Len && a.NewLen == b.NewLen && a.NewAddr == b.NewAddr &&
		a.Offset == b.Offset && a.Prot == b.Prot && a.Flags == b.Flags && a.Ret == b.Ret &&
		a.SearchLow == b.SearchLow && a.SearchHigh == b.SearchHigh && a.SearchResult == b.SearchResult &&
		a.SearchFlags == b.SearchFlags && a.OrderUnknown == b.OrderUnknown && a.Searches == b.Searches &&
		a.Path == b.Path && a.Child == b.Child && a.ExitCode == b.ExitCode && a.Comm == b.Comm &&
		a.Lost == b.Lost && a.VMA == b.VMA && slices.Equal(a.Argv, b.Argv)
}

// An exec record's image facts all reach Exec; vmas_known 1 is "walked by
// the kernel", 2 "read from /proc", 0 "not known".
func TestPinDecodeExecFields(t *testing.T) {
	rec := bpf.MmtraceExecEvent{
		H:    bpf.MmtraceEventHeader{Kind: uint8(KindExec), Abi: uint8(ABI32), Pid: 20, Tid: 20, Time: 7},
		Ppid: 10, OldPid: 21, Personality: 0x0200000, ParentAbi: uint8(ABI32), VmasKnown: 1, VmaCount: 9,
		TaskSize: 0xffffe000, StartCode: 0x1000, EndCode: 0x2000, StartData: 0x3000, EndData: 0x4000,
		StartBrk: 0x5000, Brk: 0x6000, StartStack: 0xff000000, MmapBase: 0x7000, MmapLegacyBase: 0x8000,
		MmapCompatBase: 0x9000, MmapCompatLegacyBase: 0xa000, RlimStackCur: 8 << 20, RlimStackMax: 1 << 40,
	}
	pinCString(rec.Comm[:], "bash")
	pinCString(rec.ParentComm[:], "sshd")
	pinCString(rec.Filename[:], "/usr/bin/bash")
	var ev Event
	if err := NewDecoder().Decode(pinBytes(&rec), &ev); err != nil {
		t.Fatal(err)
	}
	want := Exec{
		Comm: "bash", Filename: "/usr/bin/bash", OldPID: 21, PPID: 10, ParentComm: "sshd", ParentABI: ABI32,
		Personality: 0x0200000, TaskSize: 0xffffe000, StartCode: 0x1000, EndCode: 0x2000,
		StartData: 0x3000, EndData: 0x4000, StartBrk: 0x5000, Brk: 0x6000, StartStack: 0xff000000,
		MmapBase: 0x7000, MmapLegacyBase: 0x8000, MmapCompatBase: 0x9000, MmapCompatLegacyBase: 0xa000,
		RlimStackCur: 8 << 20, RlimStackMax: 1 << 40, VMACount: 9, VMAsKnown: true,
	}
	if ev.Exec == nil || !reflect.DeepEqual(*ev.Exec, want) {
		t.Fatalf("got  %+v\nwant %+v", ev.Exec, want)
	}
	if ev.Comm != "bash" || ev.PID != 20 || ev.ABI != ABI32 || ev.Time != 7 {
		t.Errorf("header or comm: %+v", ev)
	}
	for _, c := range []struct {
		known           uint8
		walked, fromPro bool
	}{{0, false, false}, {1, true, false}, {2, true, true}} {
		rec.VmasKnown = c.known
		if err := NewDecoder().Decode(pinBytes(&rec), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Exec.VMAsKnown != c.walked || ev.Exec.VMAsFromProc != c.fromPro {
			t.Errorf("vmas_known %d: known %v from proc %v", c.known, ev.Exec.VMAsKnown, ev.Exec.VMAsFromProc)
		}
	}
}

func TestPinDecodeVMAAndTask(t *testing.T) {
	v := bpf.MmtraceVmaEvent{
		H:     bpf.MmtraceEventHeader{Kind: uint8(KindVMA), Pid: 5, Tid: 6, Time: 8},
		Start: 0x400000, End: 0x401000, Flags: 0x875, Pgoff: 3, Index: 2, Total: 4,
	}
	pinCString(v.Path[:], "/usr/bin/true")
	d := NewDecoder()
	var ev Event
	if err := d.Decode(pinBytes(&v), &ev); err != nil {
		t.Fatal(err)
	}
	if want := (VMA{Start: 0x400000, End: 0x401000, Flags: 0x875, PgOff: 3, Path: "/usr/bin/true", Index: 2, Total: 4}); ev.VMA != want ||
		ev.PID != 5 || ev.TID != 6 || ev.Time != 8 || ev.Kind != KindVMA {
		t.Errorf("vma: %+v", ev)
	}
	for _, k := range []Kind{KindFork, KindExit} {
		task := bpf.MmtraceTaskEvent{H: bpf.MmtraceEventHeader{Kind: uint8(k), Pid: 5, Tid: 5}, Child: 77, ExitCode: -9}
		pinCString(task.Comm[:], "make")
		if err := d.Decode(pinBytes(&task), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Kind != k || ev.Child != 77 || ev.ExitCode != -9 || ev.Comm != "make" || ev.PID != 5 || ev.Seq != uint64(k)-8 {
			t.Errorf("%s: %+v", k, ev)
		}
	}
}

// Each kind's record must be whole: one byte short is an error that says
// "truncated", and the record still takes a sequence number.
func TestPinShortRecordsOfEachKind(t *testing.T) {
	sizes := map[Kind]int{
		KindMmap: sizeMem, KindMunmap: sizeMem, KindMremap: sizeMem, KindMprotect: sizeMem,
		KindBrk: sizeMem, KindPersonality: sizeMem, KindExec: sizeExecMin, KindVMA: sizeVMA,
		KindUnmodeled: sizeMem,
		KindExecve:    sizeExecveMin, KindFork: sizeTask, KindExit: sizeTask, KindLost: sizeLost,
	}
	for k, n := range sizes {
		b := make([]byte, n)
		b[0] = byte(k)
		d := NewDecoder()
		var ev Event
		if err := d.Decode(b[:n-1], &ev); !errors.Is(err, errTruncated) {
			t.Errorf("%s of %d bytes: %v, want truncated", k, n-1, err)
		}
		if err := d.Decode(b, &ev); err != nil {
			t.Errorf("%s of %d bytes: %v", k, n, err)
		}
		if ev.Seq != 2 || ev.Kind != k {
			t.Errorf("%s: seq %d kind %s, want 2 and the kind", k, ev.Seq, ev.Kind)
		}
	}
	// Shorter than a header: no sequence number.
	d := NewDecoder()
	var ev Event
	if err := d.Decode(make([]byte, sizeHeader-1), &ev); !errors.Is(err, errTruncated) {
		t.Errorf("short header: %v", err)
	}
	hdr := bpf.MmtraceEventHeader{Kind: 200}
	if err := d.Decode(pinBytes(&hdr), &ev); ev.Seq != 1 || !errors.Is(err, ErrUnknownKind) {
		t.Errorf("after a short header the next record got seq %d (%v), want 1", ev.Seq, err)
	}
	d.SkipSeq(10)
	if err := d.Decode(EncodeLost(1, 1, 1), &ev); err != nil || ev.Seq != 12 {
		t.Errorf("after SkipSeq(10): seq %d, want 12", ev.Seq)
	}
}

// A record that fills the whole mem_event but stops before the end of the
// path is anonymous; one with the path area is named.
func TestPinMemPathNeedsTheWholeArea(t *testing.T) {
	var rec bpf.MmtraceMemPathEvent
	rec.M.H.Kind = uint8(KindMmap)
	pinCString(rec.Path[:], "/lib/x.so")
	b := pinBytes(&rec)
	var ev Event
	d := NewDecoder()
	if err := d.Decode(b[:len(b)-1], &ev); err != nil || ev.Path != "" {
		t.Errorf("path area cut short: %v %q", err, ev.Path)
	}
	if err := d.Decode(b, &ev); err != nil || ev.Path != "/lib/x.so" {
		t.Errorf("whole: %v %q", err, ev.Path)
	}
	// A path that fills its area without a NUL is taken whole.
	for i := range rec.Path {
		rec.Path[i] = 'a'
	}
	if err := d.Decode(pinBytes(&rec), &ev); err != nil || ev.Path != strings.Repeat("a", len(rec.Path)) {
		t.Errorf("unterminated path: %v %d bytes", err, len(ev.Path))
	}
}

// execve arguments: argc is not trusted; a last argument without its NUL
// is kept; a shorter record of an older version decodes what it has.
func TestPinExecveArgs(t *testing.T) {
	mk := func(args string, argc uint16) bpf.MmtraceExecveEvent {
		var rec bpf.MmtraceExecveEvent
		rec.H = bpf.MmtraceEventHeader{Kind: uint8(KindExecve), Pid: 1}
		rec.Syscall = 59
		rec.Ret = -2
		rec.Argc = argc
		pinCString(rec.Filename[:], "/bin/x")
		pinCString(rec.Args[:], args)
		return rec
	}
	for _, c := range []struct {
		args string
		argc uint16
		want []string
	}{
		{"a\x00bb\x00ccc\x00", 3, []string{"a", "bb", "ccc"}},
		{"a\x00bb\x00ccc\x00", 2, []string{"a", "bb"}},
		{"a\x00bb\x00ccc\x00", 0xffff, []string{"a", "bb", "ccc"}},
		{"a\x00\x00c\x00", 3, []string{"a", "", "c"}},
		{"", 0, []string{}},
	} {
		rec := mk(c.args, c.argc)
		var ev Event
		if err := NewDecoder().Decode(pinBytes(&rec), &ev); err != nil {
			t.Fatal(err)
		}
		// A huge argc reads empty strings after the last argument up to
		// the end of the area: only the leading ones are checked then.
		got := ev.Argv
		if c.argc > 100 {
			got = got[:min(len(got), len(c.want))]
			if len(ev.Argv) > len(rec.Args)/2+1 {
				t.Errorf("argc %d: %d arguments from a %d-byte area", c.argc, len(ev.Argv), len(rec.Args))
			}
		}
		if !slices.Equal(got, c.want) || ev.Path != "/bin/x" || ev.Ret != -2 || ev.Syscall != 59 {
			t.Errorf("%q argc %d: %q %q %d %d", c.args, c.argc, ev.Argv, ev.Path, ev.Ret, ev.Syscall)
		}
	}
	// The whole area without a NUL: one argument of every byte.
	rec := mk("", 1)
	for i := range rec.Args {
		rec.Args[i] = 'x'
	}
	var ev Event
	if err := NewDecoder().Decode(pinBytes(&rec), &ev); err != nil || len(ev.Argv) != 1 || len(ev.Argv[0]) != len(rec.Args) {
		t.Errorf("unterminated: %v %d args", err, len(ev.Argv))
	}
	// An older, shorter argument area: the arguments it holds.
	rec = mk("p\x00q\x00", 2)
	b := pinBytes(&rec)[:sizeExecveMin+4]
	if err := NewDecoder().Decode(b, &ev); err != nil || !slices.Equal(ev.Argv, []string{"p", "q"}) || ev.Path != "/bin/x" {
		t.Errorf("short area: %v %q", err, ev.Argv)
	}
}

// Every argument is split at NULs, and with argc 2^32-1 over 512 bytes of
// NULs there are at most 257 (len/2+1) of them.
func TestPinArgcBound(t *testing.T) {
	got := splitArgs(make([]byte, 10), 1<<31)
	if len(got) != 6 {
		t.Errorf("10 NULs with a huge argc: %d arguments, want 10/2+1 = 6", len(got))
	}
	if got := splitArgs([]byte("ab"), 5); !slices.Equal(got, []string{"ab"}) {
		t.Errorf("unterminated: %q", got)
	}
}

func TestPinKindAndABINames(t *testing.T) {
	for k, want := range map[Kind]string{
		KindInvalid: "invalid", KindExec: "exec", KindVMA: "vma", KindMmap: "mmap", KindMunmap: "munmap",
		KindMremap: "mremap", KindMprotect: "mprotect", KindBrk: "brk", KindPersonality: "personality",
		KindExecve: "execve", KindFork: "fork", KindExit: "exit", KindLost: "lost", KindUnmodeled: "unmodeled",
		KindUnmodeled + 1: "kind(14)", 255: "kind(255)",
	} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d) = %q, want %q", uint8(k), got, want)
		}
	}
	if ABI32.String() != "i386" || ABI64.String() != "x86_64" {
		t.Errorf("ABI names: %s %s", ABI32, ABI64)
	}
}

// Interned paths are equal strings whatever the table does.
func TestPinInterning(t *testing.T) {
	d := NewDecoder()
	if d.intern(nil) != "" || d.intern([]byte("/a")) != "/a" || d.intern([]byte("/a")) != "/a" {
		t.Error("intern")
	}
	for i := range 1<<16 + 3 {
		b := []byte{byte(i), byte(i >> 8), byte(i >> 16), 'x'}
		if d.intern(b) != string(b) {
			t.Fatalf("intern %d", i)
		}
	}
	if len(d.paths) > 1<<16+1 {
		t.Errorf("intern table has %d entries, bound is 2^16+1", len(d.paths))
	}
}

// EndsImage: an exit ends the image with every drop counted so far (-1),
// an exec with the drops counted just before it; nothing else ends one.
func TestPinEndsImage(t *testing.T) {
	exit := bpf.MmtraceTaskEvent{H: bpf.MmtraceEventHeader{Kind: uint8(KindExit), Pid: 41}}
	if pid, lost, ok := EndsImage(pinBytes(&exit)); pid != 41 || lost != -1 || !ok {
		t.Errorf("exit: %d %d %v", pid, lost, ok)
	}
	// A bare header is enough for an exit: it needs only the pid.
	if pid, lost, ok := EndsImage(pinBytes(&exit)[:sizeHeader]); pid != 41 || lost != -1 || !ok {
		t.Errorf("exit header: %d %d %v", pid, lost, ok)
	}
	exec := bpf.MmtraceExecEvent{H: bpf.MmtraceEventHeader{Kind: uint8(KindExec), Pid: 42}, LostBefore: 0xfffffff0}
	if pid, lost, ok := EndsImage(pinBytes(&exec)); pid != 42 || lost != 0xfffffff0 || !ok {
		t.Errorf("exec: %d %d %v", pid, lost, ok)
	}
	if _, _, ok := EndsImage(pinBytes(&exec)[:sizeExec-1]); ok {
		t.Error("a cut-short exec record ends an image")
	}
	if _, _, ok := EndsImage(pinBytes(&exit)[:sizeHeader-1]); ok {
		t.Error("a record shorter than a header ends an image")
	}
	for _, k := range []Kind{KindFork, KindMunmap, KindVMA, KindLost} {
		r := bpf.MmtraceExecEvent{H: bpf.MmtraceEventHeader{Kind: uint8(k), Pid: 43}}
		if _, _, ok := EndsImage(pinBytes(&r)); ok {
			t.Errorf("%s ends an image", k)
		}
	}
}

func TestPinExecWithoutVMAs(t *testing.T) {
	exec := bpf.MmtraceExecEvent{H: bpf.MmtraceEventHeader{Kind: uint8(KindExec), Pid: 50}}
	if pid, ok := ExecWithoutVMAs(pinBytes(&exec)); pid != 50 || !ok {
		t.Errorf("vmas_known 0: %d %v", pid, ok)
	}
	exec.VmasKnown = 1
	if pid, ok := ExecWithoutVMAs(pinBytes(&exec)); pid != 50 || ok {
		t.Errorf("vmas_known 1: %d %v", pid, ok)
	}
	exec.VmasKnown = 0
	if _, ok := ExecWithoutVMAs(pinBytes(&exec)[:sizeExec-1]); ok {
		t.Error("cut short")
	}
	exec.H.Kind = uint8(KindVMA)
	if _, ok := ExecWithoutVMAs(pinBytes(&exec)); ok {
		t.Error("not an exec")
	}
}

// EncodeProcVMAs makes records that decode to the exec marked "from /proc"
// followed by one VMA per mapping, numbered, with the exec's header.
func TestPinEncodeProcVMAs(t *testing.T) {
	exec := bpf.MmtraceExecEvent{
		H:        bpf.MmtraceEventHeader{Kind: uint8(KindExec), Pid: 60, Tid: 61, Time: 99},
		StartBrk: 0x555000,
	}
	pinCString(exec.Comm[:], "sh")
	long := "/" + strings.Repeat("p", 300)
	vmas := []VMA{
		{Start: 0x400000, End: 0x401000, Flags: 0x875, PgOff: 0, Path: "/bin/sh"},
		{Start: 0x555000, End: 0x576000, Flags: 0x3, Path: "[heap]"},
		{Start: 0x7f0000, End: 0x7f1000, Flags: 0x3},
		{Start: 0x800000, End: 0x801000, Flags: 0x1, PgOff: 7, Path: long},
	}
	recs, err := EncodeProcVMAs(pinBytes(&exec), vmas)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1+len(vmas) {
		t.Fatalf("%d records, want %d", len(recs), 1+len(vmas))
	}
	d := NewDecoder()
	var ev Event
	if err := d.Decode(recs[0], &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Kind != KindExec || ev.PID != 60 || ev.TID != 61 || ev.Time != 99 || ev.Exec.StartBrk != 0x555000 ||
		ev.Exec.Comm != "sh" || !ev.Exec.VMAsKnown || !ev.Exec.VMAsFromProc || ev.Exec.VMACount != 4 {
		t.Errorf("exec: %+v %+v", ev, ev.Exec)
	}
	if _, ok := ExecWithoutVMAs(recs[0]); ok {
		t.Error("the marked exec still says its VMAs are unknown")
	}
	for i, v := range vmas {
		if err := d.Decode(recs[1+i], &ev); err != nil {
			t.Fatal(err)
		}
		want := v
		want.Index, want.Total = uint32(i), 4
		if len(want.Path) > 255 {
			want.Path = want.Path[:255] // the C string keeps its NUL
		}
		if ev.Kind != KindVMA || ev.VMA != want || ev.PID != 60 || ev.TID != 61 || ev.Time != 99 {
			t.Errorf("vma %d: %+v\nwant %+v", i, ev.VMA, want)
		}
	}
	// No VMAs: just the marked exec.
	if recs, err := EncodeProcVMAs(pinBytes(&exec), nil); err != nil || len(recs) != 1 {
		t.Errorf("no VMAs: %v %d records", err, len(recs))
	}
	if _, err := EncodeProcVMAs(pinBytes(&exec)[:sizeExec-1], vmas); err == nil {
		t.Error("cut-short exec accepted")
	}
	exec.H.Kind = uint8(KindFork)
	if _, err := EncodeProcVMAs(pinBytes(&exec), vmas); err == nil {
		t.Error("a fork record accepted as an exec")
	}
}

// Lost records keep pid, count and time; pid 0 is "no one process".
func TestPinEncodeLost(t *testing.T) {
	b := EncodeLost(0, 1<<40, 5)
	if len(b) != sizeLost {
		t.Fatalf("%d bytes, want %d", len(b), sizeLost)
	}
	var ev Event
	if err := NewDecoder().Decode(b, &ev); err != nil || ev.PID != 0 || ev.Lost != 1<<40 || ev.Time != 5 || ev.Kind != KindLost {
		t.Errorf("%v %+v", err, ev)
	}
}

// An exec record of a version before mnt_ns and root decodes, without
// them; the current one carries both.
func TestPinExecRecordVersions(t *testing.T) {
	var rec bpf.MmtraceExecEvent
	rec.H = bpf.MmtraceEventHeader{Kind: uint8(KindExec), Pid: 7}
	rec.MntNs = 4026531841
	pinCString(rec.Root[:], "/srv/jail")
	full := pinBytes(&rec)
	var ev Event
	if err := NewDecoder().Decode(full, &ev); err != nil || ev.Exec.MntNS != 4026531841 || ev.Exec.Root != "/srv/jail" {
		t.Errorf("current exec record: %v mnt_ns %d root %q", err, ev.Exec.MntNS, ev.Exec.Root)
	}
	if err := NewDecoder().Decode(full[:sizeExecMin], &ev); err != nil || ev.Exec.MntNS != 0 || ev.Exec.Root != "" || ev.PID != 7 {
		t.Errorf("older exec record: %v mnt_ns %d root %q pid %d", err, ev.Exec.MntNS, ev.Exec.Root, ev.PID)
	}
}

// Unmodeled calls are named by ABI and number, prctl and ipc by operation.
func TestPinUnmodeledCallNames(t *testing.T) {
	for _, c := range []struct {
		abi  ABI
		nr   uint32
		arg0 uint64
		want string
	}{
		{ABI64, 30, 0, "shmat"}, {ABI64, 67, 0, "shmdt"}, {ABI64, 206, 0, "io_setup"},
		{ABI64, 157, 35, "prctl(PR_SET_MM)"}, {ABI64, 157, 0x53564d41, "prctl(PR_SET_VMA)"},
		{ABI32, 117, 21, "shmat"}, {ABI32, 117, 22, "shmdt"}, {ABI32, 397, 0, "shmat"},
		{ABI32, 30, 0, "syscall 30"}, // 30 is not shmat in i386 (utime)
	} {
		ev := Event{ABI: c.abi, Syscall: c.nr, Addr: c.arg0}
		if got := UnmodeledCall(&ev); got != c.want {
			t.Errorf("%s %d(%#x): %q, want %q", c.abi, c.nr, c.arg0, got, c.want)
		}
	}
}

// The kernel marks a command line longer than the record holds; the
// decoder says so.
func TestPinArgvTruncatedFlag(t *testing.T) {
	var rec bpf.MmtraceExecveEvent
	rec.H = bpf.MmtraceEventHeader{Kind: uint8(KindExecve), Pid: 1}
	rec.Argc = 1
	pinCString(rec.Args[:], "a")
	var ev Event
	if err := NewDecoder().Decode(pinBytes(&rec), &ev); err != nil || ev.ArgvTruncated {
		t.Errorf("no flag: %v truncated %v", err, ev.ArgvTruncated)
	}
	rec.ArgsFlags = uint16(bpf.MmtraceArgsFlagARGS_TRUNCATED)
	if err := NewDecoder().Decode(pinBytes(&rec), &ev); err != nil || !ev.ArgvTruncated {
		t.Errorf("flag set: %v truncated %v", err, ev.ArgvTruncated)
	}
}

// An argument area filled exactly by its arguments ends the split there,
// whatever argc claims: n/2 arguments "x" in n bytes.
func TestPinArgsFillTheArea(t *testing.T) {
	var rec bpf.MmtraceExecveEvent
	rec.H = bpf.MmtraceEventHeader{Kind: uint8(KindExecve), Pid: 1}
	rec.Argc = 0xffff
	for i := 0; i+1 < len(rec.Args); i += 2 {
		rec.Args[i] = 'x'
	}
	var ev Event
	if err := NewDecoder().Decode(pinBytes(&rec), &ev); err != nil || len(ev.Argv) != len(rec.Args)/2 {
		t.Fatalf("%v: %d arguments, want %d", err, len(ev.Argv), len(rec.Args)/2)
	}
	for _, a := range ev.Argv {
		if a != "x" {
			t.Fatalf("argument %q", a)
		}
	}
}

// Paths seen before cost no allocation (Decoder's comment), also when
// several alternate.
func TestPinSeenPathDoesNotAllocate(t *testing.T) {
	var bs [][]byte
	for _, p := range []string{"/usr/lib/libc.so.6", "/usr/lib/libm.so.6"} {
		var rec bpf.MmtraceMemPathEvent
		rec.M.H.Kind = uint8(KindMmap)
		pinCString(rec.Path[:], p)
		bs = append(bs, pinBytes(&rec))
	}
	d := NewDecoder()
	var ev Event
	for _, b := range bs {
		if err := d.Decode(b, &ev); err != nil {
			t.Fatal(err)
		}
	}
	if n := testing.AllocsPerRun(100, func() {
		_ = d.Decode(bs[0], &ev)
		_ = d.Decode(bs[1], &ev)
	}); n != 0 {
		t.Errorf("%v allocations per decode of known paths", n)
	}
}

// The exec record's argv area: NUL after each argument, args_len bytes of
// it valid, the truncated flag passed on.
func TestPinExecArgv(t *testing.T) {
	var rec bpf.MmtraceExecEvent
	rec.H = bpf.MmtraceEventHeader{Kind: uint8(KindExec), Pid: 7}
	area := "bash\x00-c\x00\x00echo hi\x00"
	pinCString(rec.Args[:], area+"stale bytes past args_len")
	rec.ArgsLen = uint32(len(area))
	var ev Event
	if err := NewDecoder().Decode(pinBytes(&rec), &ev); err != nil {
		t.Fatal(err)
	}
	if want := []string{"bash", "-c", "", "echo hi"}; !slices.Equal(ev.Exec.Argv, want) || ev.Exec.ArgvTruncated {
		t.Errorf("argv %q truncated %v, want %q", ev.Exec.Argv, ev.Exec.ArgvTruncated, want)
	}
	rec.ArgsFlags = uint16(bpf.MmtraceArgsFlagARGS_TRUNCATED)
	rec.ArgsLen = 1 << 30 // damaged: more than the area
	if err := NewDecoder().Decode(pinBytes(&rec), &ev); err != nil || !ev.Exec.ArgvTruncated || len(ev.Exec.Argv) < 4 {
		t.Errorf("damaged args_len: %v argv %d truncated %v", err, len(ev.Exec.Argv), ev.Exec.ArgvTruncated)
	}
}

// Read from /proc by mmtrace, a chrooted process's files carry its root
// as a prefix; the records name them as the process sees them, as the
// kernel's own walk does. Files outside its root keep their full path.
func TestEncodeProcVMAsUnderRoot(t *testing.T) {
	exec := bpf.MmtraceExecEvent{H: bpf.MmtraceEventHeader{Kind: uint8(KindExec), Pid: 5}}
	pinCString(exec.Root[:], "/srv/jail")
	vmas := []VMA{
		{Start: 0x1000, End: 0x2000, Path: "/srv/jail/usr/bin/x"},
		{Start: 0x3000, End: 0x4000, Path: "/srv/jailbreak/y"},
		{Start: 0x5000, End: 0x6000, Path: "[stack]"},
	}
	recs, err := EncodeProcVMAs(pinBytes(&exec), vmas)
	if err != nil {
		t.Fatal(err)
	}
	d := NewDecoder()
	var got []string
	for _, r := range recs[1:] {
		var ev Event
		if err := d.Decode(r, &ev); err != nil {
			t.Fatal(err)
		}
		got = append(got, ev.VMA.Path)
	}
	if want := []string{"/usr/bin/x", "/srv/jailbreak/y", "[stack]"}; !slices.Equal(got, want) {
		t.Errorf("paths %q, want %q", got, want)
	}
}
