package events

import (
	"encoding/binary"
	"errors"
	"testing"
	"unsafe"

	"github.com/cilium/ebpf/btf"

	"github.com/mmtrace/mmtrace/bpf"
)

// The Go mirrors must have the C structs' sizes, as the compiler laid
// them out in the BPF object's BTF.
func TestRecordSizesMatchC(t *testing.T) {
	spec, err := bpf.LoadMmtrace()
	if err != nil {
		t.Fatal(err)
	}
	for name, goSize := range map[string]int{
		"event_header": sizeHeader, "mem_event": sizeMem, "mem_path_event": sizeMemPath,
		"exec_event": sizeExec, "vma_event": sizeVMA, "execve_event": sizeExecve,
		"task_event": sizeTask, "lost_event": sizeLost,
	} {
		var st *btf.Struct
		if err := spec.Types.TypeByName(name, &st); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if int(st.Size) != goSize {
			t.Errorf("struct %s: C %d bytes, Go %d", name, st.Size, goSize)
		}
	}
	if binary.Size(bpf.MmtraceMemEvent{}) != sizeMem {
		t.Errorf("binary.Size(mem_event) = %d, unsafe.Sizeof = %d (padding?)", binary.Size(bpf.MmtraceMemEvent{}), sizeMem)
	}
}

func raw[T any](v *T) []byte {
	return append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(v)), unsafe.Sizeof(*v))...)
}

func cbytes(dst []int8, s string) {
	for i := range s {
		dst[i] = int8(s[i])
	}
}

func TestDecodeMmapWithPath(t *testing.T) {
	var rec bpf.MmtraceMemPathEvent
	rec.M = bpf.MmtraceMemEvent{
		H:    bpf.MmtraceEventHeader{Kind: uint8(KindMmap), Abi: uint8(ABI32), Pid: 10, Tid: 11, Time: 99},
		Addr: 0x1000, Len: 8192, Prot: 3, Flags: 2, Fd: 4, Offset: 4096, Ret: 0x5555000, Syscall: 192,
	}
	cbytes(rec.Path[:], "/usr/lib/libc.so.6")
	d := NewDecoder()
	var ev Event
	if err := d.Decode(raw(&rec), &ev); err != nil {
		t.Fatal(err)
	}
	want := Event{Seq: 1, Time: 99, Kind: KindMmap, ABI: ABI32, PID: 10, TID: 11, Addr: 0x1000, Len: 8192,
		Prot: 3, Flags: 2, FD: 4, Offset: 4096, Ret: 0x5555000, Syscall: 192, Path: "/usr/lib/libc.so.6"}
	if ev.Seq != want.Seq || ev.Path != want.Path || ev.Addr != want.Addr || ev.Ret != want.Ret ||
		ev.ABI != want.ABI || ev.PID != want.PID || ev.TID != want.TID || ev.Offset != want.Offset ||
		ev.FD != want.FD || ev.Syscall != want.Syscall || ev.Time != want.Time || ev.Kind != want.Kind {
		t.Errorf("got %+v\nwant %+v", ev, want)
	}
	// Without the path part the same record is an anonymous mapping.
	if err := d.Decode(raw(&rec.M), &ev); err != nil || ev.Path != "" || ev.Seq != 2 {
		t.Errorf("short record: %v %+v", err, ev)
	}
}

func TestDecodeExecve(t *testing.T) {
	var rec bpf.MmtraceExecveEvent
	rec.H = bpf.MmtraceEventHeader{Kind: uint8(KindExecve), Pid: 7, Tid: 7}
	cbytes(rec.Filename[:], "/bin/sh")
	cbytes(rec.Args[:], "sh\x00-c\x00exit 7\x00")
	rec.Argc = 3
	var ev Event
	if err := NewDecoder().Decode(raw(&rec), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Path != "/bin/sh" || len(ev.Argv) != 3 || ev.Argv[2] != "exit 7" {
		t.Errorf("got %q %q", ev.Path, ev.Argv)
	}
}

func TestUnknownAndShortRecords(t *testing.T) {
	d := NewDecoder()
	var ev Event
	hdr := bpf.MmtraceEventHeader{Kind: 200}
	if err := d.Decode(raw(&hdr), &ev); !errors.Is(err, ErrUnknownKind) {
		t.Errorf("unknown kind: %v", err)
	}
	if d.Unknown() != 1 {
		t.Errorf("unknown count %d", d.Unknown())
	}
	hdr.Kind = uint8(KindExec)
	if err := d.Decode(raw(&hdr), &ev); err == nil {
		t.Errorf("a bare header decoded as an exec record")
	}
	if err := d.Decode([]byte{1, 2}, &ev); err == nil {
		t.Errorf("two bytes decoded")
	}
}

func TestLostRoundTrip(t *testing.T) {
	var ev Event
	if err := NewDecoder().Decode(EncodeLost(42, 17, 1000), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Kind != KindLost || ev.PID != 42 || ev.Lost != 17 || ev.Time != 1000 {
		t.Errorf("got %+v", ev)
	}
}

// The hot path: decoding anonymous memory syscalls must not allocate.
func TestDecodeMemDoesNotAllocate(t *testing.T) {
	rec := bpf.MmtraceMemEvent{H: bpf.MmtraceEventHeader{Kind: uint8(KindMunmap)}, Addr: 1, Len: 2}
	b := raw(&rec)
	d := NewDecoder()
	var ev Event
	if n := testing.AllocsPerRun(1000, func() { _ = d.Decode(b, &ev) }); n != 0 {
		t.Errorf("%v allocations per decode", n)
	}
}

func BenchmarkDecodeMem(b *testing.B) {
	rec := bpf.MmtraceMemEvent{H: bpf.MmtraceEventHeader{Kind: uint8(KindMmap)}, Addr: 1, Len: 2}
	buf := raw(&rec)
	d := NewDecoder()
	var ev Event
	b.ReportAllocs()
	for b.Loop() {
		_ = d.Decode(buf, &ev)
	}
}

// Whatever the bytes, decoding returns an error or an event; never panics.
func FuzzDecode(f *testing.F) {
	var mp bpf.MmtraceMemPathEvent
	mp.M.H.Kind = uint8(KindMmap)
	f.Add(raw(&mp))
	var ex bpf.MmtraceExecEvent
	ex.H.Kind = uint8(KindExec)
	f.Add(raw(&ex))
	var ev bpf.MmtraceExecveEvent
	ev.H.Kind = uint8(KindExecve)
	ev.Argc = 100
	f.Add(raw(&ev))
	f.Add(EncodeLost(1, 2, 3))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var e Event
		_ = NewDecoder().Decode(b, &e)
	})
}
