package events

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/cilium/ebpf/btf"

	"github.com/mmtrace/mmtrace/bpf"
)

// Tests that wire.go cannot drift from the C: every field of every record
// struct, as bpf2go mirrors it in Go, must be in wire.go at the same offset
// and width, and every enumerator of the C enums must have its Go constant
// with the same value. A field added, moved or resized in
// bpf/mmtrace.bpf.c fails here until wire.go says the same.

// wireField is one field of a wire layout: its name in the generated Go
// mirror (nested structs as "H.Pid") and its wire.go description.
type wireField struct {
	name string
	f    any // u8, u16, u32, i32, u64, i64 or chars
}

func headerFields(prefix string) []wireField {
	return []wireField{
		{prefix + "Kind", hdrKind}, {prefix + "Abi", hdrABI}, {prefix + "Pid", hdrPID},
		{prefix + "Tid", hdrTID}, {prefix + "Seq", hdrSeq}, {prefix + "Time", hdrTime},
	}
}

func memFields(prefix string) []wireField {
	return append(headerFields(prefix+"H."), []wireField{
		{prefix + "Syscall", memSyscall}, {prefix + "Fd", memFD}, {prefix + "Addr", memAddr},
		{prefix + "Len", memLen}, {prefix + "NewLen", memNewLen}, {prefix + "NewAddr", memNewAddr},
		{prefix + "Offset", memOffset}, {prefix + "Prot", memProt}, {prefix + "Flags", memFlags},
		{prefix + "Ret", memRet}, {prefix + "SearchLow", memSearchLow}, {prefix + "SearchHigh", memSearchHigh},
		{prefix + "SearchResult", memSearchResult}, {prefix + "SearchFlags", memSearchFlags},
		{prefix + "Searches", memSearches},
	}...)
}

var wireLayouts = []struct {
	c      string // the C struct
	goType any    // its generated Go mirror
	size   int    // its size in wire.go
	fields []wireField
}{
	{"event_header", bpf.MmtraceEventHeader{}, sizeHeader, headerFields("")},
	{"mem_event", bpf.MmtraceMemEvent{}, sizeMem, memFields("")},
	{"mem_path_event", bpf.MmtraceMemPathEvent{}, sizeMemPath, append(memFields("M."), wireField{"Path", memPath})},
	{"exec_event", bpf.MmtraceExecEvent{}, sizeExec, append(headerFields("H."), []wireField{
		{"Ppid", execPPID}, {"OldPid", execOldPID}, {"Personality", execPersonality},
		{"ParentAbi", execParentABI}, {"VmasKnown", execVMAsKnown}, {"VmaCount", execVMACount},
		{"LostBefore", execLostBefore}, {"TaskSize", execTaskSize},
		{"StartCode", execStartCode}, {"EndCode", execEndCode}, {"StartData", execStartData},
		{"EndData", execEndData}, {"StartBrk", execStartBrk}, {"Brk", execBrk},
		{"StartStack", execStartStack}, {"MmapBase", execMmapBase}, {"MmapLegacyBase", execMmapLegacyBase},
		{"MmapCompatBase", execMmapCompatBase}, {"MmapCompatLegacyBase", execMmapCompatLegacyBase},
		{"RlimStackCur", execRlimStackCur}, {"RlimStackMax", execRlimStackMax},
		{"Comm", execComm}, {"ParentComm", execParentComm}, {"Filename", execFilename},
		{"MntNs", execMntNS}, {"Root", execRoot},
		{"ArgsLen", execArgsLen}, {"ArgsFlags", execArgsFlags}, {"Args", execArgs},
	}...)},
	{"vma_event", bpf.MmtraceVmaEvent{}, sizeVMA, append(headerFields("H."), []wireField{
		{"Start", vmaStart}, {"End", vmaEnd}, {"Flags", vmaFlags}, {"Pgoff", vmaPgOff},
		{"Index", vmaIndex}, {"Total", vmaTotal}, {"Path", vmaPath},
	}...)},
	{"vma_batch", bpf.MmtraceVmaBatch{}, sizeVMABatch, append(headerFields("H."), []wireField{
		{"Count", batchCount}, {"Stride", batchStride}, {"V", vmaRecords{batchFirst, batchMax}},
	}...)},
	{"execve_event", bpf.MmtraceExecveEvent{}, sizeExecve, append(headerFields("H."), []wireField{
		{"Syscall", execveSyscall}, {"Argc", execveArgc}, {"ArgsFlags", execveArgsFlags},
		{"Ret", execveRet}, {"Filename", execveFilename}, {"Args", execveArgs},
	}...)},
	{"task_event", bpf.MmtraceTaskEvent{}, sizeTask, append(headerFields("H."), []wireField{
		{"Child", taskChild}, {"ExitCode", taskExitCode}, {"Comm", taskComm},
	}...)},
	{"lost_event", bpf.MmtraceLostEvent{}, sizeLost, append(headerFields("H."), wireField{"Count", lostCount})},
}

// goField is a field of a generated mirror, nested structs flattened.
type goField struct {
	off uintptr
	typ reflect.Type
}

func flatten(t reflect.Type, prefix string, base uintptr, out map[string]goField) {
	for i := range t.NumField() {
		f := t.Field(i)
		// "_" is structs.HostLayout; _pad* fields carry nothing.
		if f.Name == "_" || strings.HasPrefix(f.Name, "Pad") {
			continue
		}
		if f.Type.Kind() == reflect.Struct {
			flatten(f.Type, prefix+f.Name+".", base+f.Offset, out)
			continue
		}
		out[prefix+f.Name] = goField{base + f.Offset, f.Type}
	}
}

// describe says where a wire.go field is and what it holds, in the terms
// of a generated Go field, for comparison.
func describe(f any) string {
	switch f := f.(type) {
	case u8:
		return fmt.Sprintf("uint8 at %d", f)
	case u16:
		return fmt.Sprintf("uint16 at %d", f)
	case u32:
		return fmt.Sprintf("uint32 at %d", f)
	case i32:
		return fmt.Sprintf("int32 at %d", f)
	case u64:
		return fmt.Sprintf("uint64 at %d", f)
	case i64:
		return fmt.Sprintf("int64 at %d", f)
	case chars:
		return fmt.Sprintf("[%d]int8 at %d", f.n, f.off)
	case vmaRecords:
		return fmt.Sprintf("[%d]bpf.MmtraceVmaEvent at %d", f.n, f.off)
	}
	return fmt.Sprintf("unknown wire field %T", f)
}

// vmaRecords is vma_batch.v: n VMA records from off.
type vmaRecords struct{ off, n int }

func TestWireLayoutsMatchGeneratedMirrors(t *testing.T) {
	for _, l := range wireLayouts {
		typ := reflect.TypeOf(l.goType)
		if int(typ.Size()) != l.size {
			t.Errorf("struct %s: %d bytes, wire.go says %d", l.c, typ.Size(), l.size)
		}
		gen := map[string]goField{}
		flatten(typ, "", 0, gen)
		for _, w := range l.fields {
			g, ok := gen[w.name]
			if !ok {
				t.Errorf("struct %s: wire.go has %s, the C struct does not", l.c, w.name)
				continue
			}
			delete(gen, w.name)
			if want, got := fmt.Sprintf("%s at %d", g.typ, g.off), describe(w.f); got != want {
				t.Errorf("struct %s field %s: C has %s, wire.go %s", l.c, w.name, want, got)
			}
		}
		for name, g := range gen {
			t.Errorf("struct %s: field %s (%s at %d) is not in wire.go", l.c, name, g.typ, g.off)
		}
	}
}

// The sizes of records from older versions are where the newer fields start.
func TestWireMinimumSizes(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"exec_event before mnt_ns", uintptr(sizeExecMin), reflect.TypeOf(bpf.MmtraceExecEvent{}).Field(fieldIndex(t, bpf.MmtraceExecEvent{}, "MntNs")).Offset},
		{"execve_event before args", uintptr(sizeExecveMin), reflect.TypeOf(bpf.MmtraceExecveEvent{}).Field(fieldIndex(t, bpf.MmtraceExecveEvent{}, "Args")).Offset},
		{"mem_path_event's path", uintptr(memPath.off), reflect.TypeOf(bpf.MmtraceMemPathEvent{}).Field(fieldIndex(t, bpf.MmtraceMemPathEvent{}, "Path")).Offset},
	} {
		if c.got != c.want {
			t.Errorf("%s: wire.go %d, C %d", c.name, c.got, c.want)
		}
	}
}

func fieldIndex(t *testing.T, v any, name string) int {
	f, ok := reflect.TypeOf(v).FieldByName(name)
	if !ok {
		t.Fatalf("%T has no field %s", v, name)
	}
	return f.Index[0]
}

// Kind, ABI and the args flag are the C enums' values, each enumerator
// of which has its Go constant: the generated constants by name, and the
// enums as the BPF object's BTF holds them, so a new enumerator fails too.
func TestWireEnumsMatchC(t *testing.T) {
	consts := []struct {
		enum, name string
		got, want  uint64 // Go, generated
	}{
		{"event_kind", "KIND_EXEC", uint64(KindExec), uint64(bpf.MmtraceEventKindKIND_EXEC)},
		{"event_kind", "KIND_VMA", uint64(KindVMA), uint64(bpf.MmtraceEventKindKIND_VMA)},
		{"event_kind", "KIND_MMAP", uint64(KindMmap), uint64(bpf.MmtraceEventKindKIND_MMAP)},
		{"event_kind", "KIND_MUNMAP", uint64(KindMunmap), uint64(bpf.MmtraceEventKindKIND_MUNMAP)},
		{"event_kind", "KIND_MREMAP", uint64(KindMremap), uint64(bpf.MmtraceEventKindKIND_MREMAP)},
		{"event_kind", "KIND_MPROTECT", uint64(KindMprotect), uint64(bpf.MmtraceEventKindKIND_MPROTECT)},
		{"event_kind", "KIND_BRK", uint64(KindBrk), uint64(bpf.MmtraceEventKindKIND_BRK)},
		{"event_kind", "KIND_PERSONALITY", uint64(KindPersonality), uint64(bpf.MmtraceEventKindKIND_PERSONALITY)},
		{"event_kind", "KIND_EXECVE", uint64(KindExecve), uint64(bpf.MmtraceEventKindKIND_EXECVE)},
		{"event_kind", "KIND_FORK", uint64(KindFork), uint64(bpf.MmtraceEventKindKIND_FORK)},
		{"event_kind", "KIND_EXIT", uint64(KindExit), uint64(bpf.MmtraceEventKindKIND_EXIT)},
		{"event_kind", "KIND_LOST", uint64(KindLost), uint64(bpf.MmtraceEventKindKIND_LOST)},
		{"event_kind", "KIND_UNMODELED", uint64(KindUnmodeled), uint64(bpf.MmtraceEventKindKIND_UNMODELED)},
		{"event_kind", "KIND_VMA_BATCH", kindVMABatch, uint64(bpf.MmtraceEventKindKIND_VMA_BATCH)},
		{"event_abi", "ABI_X86_64", uint64(ABI64), uint64(bpf.MmtraceEventAbiABI_X8664)},
		{"event_abi", "ABI_I386", uint64(ABI32), uint64(bpf.MmtraceEventAbiABI_I386)},
		{"args_flag", "ARGS_TRUNCATED", argsTruncated, uint64(bpf.MmtraceArgsFlagARGS_TRUNCATED)},
	}
	goValues := map[string]map[string]uint64{}
	for _, c := range consts {
		if c.got != c.want {
			t.Errorf("%s: Go %d, generated %d", c.name, c.got, c.want)
		}
		if goValues[c.enum] == nil {
			goValues[c.enum] = map[string]uint64{}
		}
		goValues[c.enum][c.name] = c.got
	}

	spec, err := bpf.LoadMmtrace()
	if err != nil {
		t.Fatal(err)
	}
	for enum, goValues := range goValues {
		var e *btf.Enum
		if err := spec.Types.TypeByName(enum, &e); err != nil {
			t.Fatalf("enum %s: %v", enum, err)
		}
		if len(e.Values) != len(goValues) {
			t.Errorf("enum %s: C has %d enumerators, Go %d", enum, len(e.Values), len(goValues))
		}
		for _, v := range e.Values {
			if g, ok := goValues[v.Name]; !ok || g != v.Value {
				t.Errorf("enum %s: C %s = %d, Go %d (present %v)", enum, v.Name, v.Value, g, ok)
			}
		}
	}
	for k := KindInvalid; k <= KindUnmodeled; k++ {
		if strings.HasPrefix(k.String(), "kind(") {
			t.Errorf("kind %d has no name", k)
		}
	}
}

// A batch made as the C lays it out splits into its VMA records, which
// decode as the kernel filled them; a batch the kernel cannot have made
// is passed on whole, and the decoder counts it as of unknown kind.
func TestSplitVMABatch(t *testing.T) {
	var b bpf.MmtraceVmaBatch
	b.H = bpf.MmtraceEventHeader{Kind: kindVMABatch, Pid: 5, Tid: 5, Time: 9}
	b.Count, b.Stride = 3, uint32(unsafe.Sizeof(b.V[0]))
	paths := []string{"/usr/bin/true", "/usr/bin/true", ""}
	for i := range 3 {
		b.V[i] = bpf.MmtraceVmaEvent{
			H:     bpf.MmtraceEventHeader{Kind: uint8(KindVMA), Pid: 5, Tid: 5, Time: 9},
			Start: uint64(0x400000 + i*0x1000), End: uint64(0x401000 + i*0x1000), Index: uint32(i), Total: 3,
		}
		pinCString(b.V[i].Path[:], paths[i])
	}
	batch, ok := SplitVMABatch(pinBytes(&b))
	if !ok || batch.Len() != 3 {
		t.Fatalf("a batch of 3: split %v, %d records", ok, batch.Len())
	}
	d := NewDecoder()
	var ev Event
	for i := range batch.Len() {
		if err := d.Decode(batch.Record(i), &ev); err != nil {
			t.Fatal(err)
		}
		want := VMA{Start: uint64(0x400000 + i*0x1000), End: uint64(0x401000 + i*0x1000), Path: paths[i], Index: uint32(i), Total: 3}
		if ev.Kind != KindVMA || ev.VMA != want || ev.PID != 5 {
			t.Errorf("record %d: %+v, want %+v", i, ev.VMA, want)
		}
	}

	for _, c := range []struct {
		name   string
		change func(*bpf.MmtraceVmaBatch)
		cut    int
	}{
		{"empty", func(b *bpf.MmtraceVmaBatch) { b.Count = 0 }, 0},
		{"count past the array", func(b *bpf.MmtraceVmaBatch) { b.Count = batchMax + 1 }, 0},
		{"another stride", func(b *bpf.MmtraceVmaBatch) { b.Stride-- }, 0},
		{"cut short", func(*bpf.MmtraceVmaBatch) {}, sizeVMABatch - batchFirst - 2*sizeVMA - 1},
	} {
		bad := b
		c.change(&bad)
		raw := pinBytes(&bad)
		raw = raw[:len(raw)-c.cut]
		if _, ok := SplitVMABatch(raw); ok {
			t.Errorf("%s: split", c.name)
		}
		if err := d.Decode(raw, &ev); !errors.Is(err, ErrUnknownKind) {
			t.Errorf("%s: decoded with %v, want an unknown kind", c.name, err)
		}
	}
	if _, ok := SplitVMABatch(batch.Record(0)); ok {
		t.Error("a VMA record split as a batch")
	}
}
