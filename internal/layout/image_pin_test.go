package layout

import (
	"testing"

	"github.com/mmtrace/mmtrace/internal/events"
)

// Tests that pin the facts of an image the kernel does not state in every
// record: the top of user space when the exec record has none, the layout
// when the mmap bases are unknown, the comm of a fork child, the end of an
// exec snapshot.

// TASK_SIZE when the exec record carries none: x86_64 TASK_SIZE_MAX is
// 2^47 minus a page (arch/x86/include/asm/page_64_types.h), an ia32 task's
// is 0xffffe000 (IA32_PAGE_OFFSET). With no mapping above the heap and no
// mmap base, the headroom reaches it.
func TestPinDefaultTaskSize(t *testing.T) {
	for _, c := range []struct {
		abi  events.ABI
		top  uint64
		heap uint64
	}{
		{events.ABI64, 1<<47 - 4096, 0x10000000},
		{events.ABI32, 0xffffe000, 0x08100000},
	} {
		g := newGen(tPID)
		g.abi = c.abi
		x := defaultExec()
		x.TaskSize, x.MmapBase, x.MmapLegacyBase, x.MmapCompatBase, x.MmapCompatLegacyBase = 0, 0, 0, 0, 0
		x.StartBrk, x.Brk, x.StartStack = c.heap, c.heap, 0
		tr := pinStart(t, g, Options{}, x, []events.VMA{{Start: 0x08048000, End: 0x08049000, Flags: vmRead | vmExec, Path: "/bin/t"}})
		r := tr.Snapshot(tPID)
		if r.BrkHeadroom != c.top-c.heap || r.BoundedBy != nil {
			t.Errorf("%v: headroom %#x bounded by %+v, want %#x to the top of user space", c.abi, r.BrkHeadroom, r.BoundedBy, c.top-c.heap)
		}
	}
}

// With both mmap bases unknown (0), the layout follows the personality and
// the sysctl, as mmap_is_legacy() decides, and the reason says the bases
// were unknown. One base known is enough to decide from the bases.
func TestPinLayoutWhenBasesUnknown(t *testing.T) {
	for _, c := range []struct {
		name          string
		base, legBase uint64
		persona       uint32
		opts          Options
		layout, why   string
	}{
		{"unknown, ADDR_COMPAT_LAYOUT", 0, 0, addrCompatLayout, Options{}, "legacy", "ADDR_COMPAT_LAYOUT personality (0x200000) (mmap bases unknown)"},
		{"unknown, sysctl", 0, 0, 0, Options{LegacyVALayout: true}, "legacy", "vm.legacy_va_layout=1 when mmtrace started (mmap bases unknown)"},
		{"unknown, default", 0, 0, 0, Options{}, "flexible", "default: top-down below the stack (mmap bases unknown)"},
		{"only the base", tMmapBase, 0, addrCompatLayout, Options{}, "flexible", "default: top-down below the stack"},
		{"only the legacy base", 0, tLegacy, 0, Options{}, "flexible", "default: top-down below the stack"},
		// Bases equal without the personality bit: on x86 (5.10+) only
		// the sysctl at that exec makes that (mmap_is_legacy()).
		{"bases equal: legacy, the sysctl at exec", tLegacy, tLegacy, 0, Options{}, "legacy", legacySysctlWhy},
	} {
		g := newGen(tPID)
		x := defaultExec()
		x.MmapBase, x.MmapLegacyBase, x.Personality = c.base, c.legBase, c.persona
		tr := pinStart(t, g, c.opts, x, defaultVMAs())
		r := tr.Snapshot(tPID)
		if r.Layout != c.layout || r.LayoutReason != c.why || r.MmapBase != c.base {
			t.Errorf("%s: %q %q base %#x, want %q %q %#x", c.name, r.Layout, r.LayoutReason, r.MmapBase, c.layout, c.why, c.base)
		}
	}
}

// A 32-bit image uses the compat bases only when the kernel has both.
func TestPinCompatBasesNeedBoth(t *testing.T) {
	g := newGen(tPID)
	g.abi = events.ABI32
	x := defaultExec()
	x.MmapBase, x.MmapLegacyBase = 0xf7f00000, 0x40000000
	x.MmapCompatBase, x.MmapCompatLegacyBase = 0xf7000000, 0
	tr := pinStart(t, g, Options{}, x, defaultVMAs())
	if r := tr.Snapshot(tPID); r.MmapBase != 0xf7f00000 {
		t.Errorf("one compat base: base %#x, want the native 0xf7f00000", r.MmapBase)
	}
}

// The comm a fork child starts with is the one the fork record carries
// (the parent's at fork time, after any prctl(PR_SET_NAME)); without one,
// the parent's at exec.
func TestPinForkChildComm(t *testing.T) {
	g := newGen(tPID)
	tr := started(t, g)
	for _, c := range []struct {
		child uint32
		comm  string
		want  string
	}{{201, "worker", "worker"}, {202, "", "t"}} {
		f := g.ev(events.KindFork)
		f.Child, f.Comm = c.child, c.comm
		tr.Apply(f)
		r := tr.Snapshot(c.child)
		if r == nil || r.Comm != c.want || r.PPID != tPID || r.ParentComm != "t" || !r.Forked || r.ExecSeq != f.Seq {
			t.Errorf("child %d: %+v", c.child, r)
		}
	}
	// A fork record naming the parent itself, or no child, makes no image.
	for _, child := range []uint32{0, tPID} {
		f := g.ev(events.KindFork)
		f.Child = child
		if ch := tr.Apply(f); !ch.Tracked {
			t.Errorf("fork of a traced process (child %d) not tracked", child)
		}
	}
	if r := tr.Snapshot(tPID); r == nil || r.Forked {
		t.Errorf("the parent became a fork copy: %+v", r)
	}
}

// The snapshot ends with its last VMA by count or by index; a VMA record
// that says it is the last while fewer came than announced makes the
// report uncertain, and so does a snapshot that was cut short (total 0).
func TestPinSnapshotEnd(t *testing.T) {
	vmas := defaultVMAs()
	for _, c := range []struct {
		name      string
		announce  uint32 // VMAs the exec says follow
		send      int    // how many come
		total     uint32 // their Total field
		ready     int    // index (in those sent) of the VMA that completes it, -1 none
		uncertain bool
	}{
		{"all as announced", 3, 3, 3, 2, false},
		{"last by index, fewer than announced", 5, 3, 3, 2, true},
		{"cut short, no total", 3, 3, 0, 2, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := newGen(tPID)
			tr := NewTracker(Options{})
			e := g.ev(events.KindExec)
			x := defaultExec()
			x.VMACount = c.announce
			e.Exec = &x
			if ch := tr.Apply(e); ch.SnapshotReady {
				t.Fatal("ready before its VMAs")
			}
			ready := -1
			for i := range c.send {
				v := g.ev(events.KindVMA)
				v.VMA = vmas[i]
				v.VMA.Index, v.VMA.Total = uint32(i), c.total
				if ch := tr.Apply(v); ch.SnapshotReady {
					if ready >= 0 {
						t.Errorf("ready twice")
					}
					ready = i
				}
			}
			r := tr.Snapshot(tPID)
			if ready != c.ready || r.Uncertain != c.uncertain || len(r.VMAs) != 3 {
				t.Errorf("ready at %d uncertain %v, %d VMAs; want %d %v 3", ready, r.Uncertain, len(r.VMAs), c.ready, c.uncertain)
			}
			// A VMA record after the snapshot is not part of it.
			v := g.ev(events.KindVMA)
			v.VMA = events.VMA{Start: 0x500000, End: 0x501000, Flags: vmRead, Index: 9, Total: 10}
			tr.Apply(v)
			if n := len(tr.Snapshot(tPID).VMAs); n != 3 {
				t.Errorf("a stray VMA record changed the layout: %d VMAs", n)
			}
		})
	}
}

// "[heap]" and "[stack]" in a snapshot are labels, not paths: the model
// names them by the kernel's rules, so a heap VMA shows as [heap] only
// while it overlaps [start_brk, brk].
func TestPinSnapshotLabels(t *testing.T) {
	g := newGen(tPID)
	x := defaultExec()
	x.Brk = tStartBrk + 0x3000
	tr := pinStart(t, g, Options{}, x, []events.VMA{
		{Start: tText, End: tText + pinPage, Flags: vmRead | vmExec, Path: "/bin/t"},
		{Start: tStartBrk, End: tStartBrk + 0x3000, Flags: vmRead | vmWrite, Path: "[heap]"},
		{Start: tStack, End: tStackEnd, Flags: vmRead | vmWrite | vmGrowsDown, Path: "[stack]"},
		{Start: 0x7ff000100000, End: 0x7ff000102000, Flags: vmRead | vmExec, PgOff: 5, Path: "[vdso]"},
	})
	equalLines(t, "layout", maps(tr.Snapshot(tPID).VMAs), []string{
		"400000-401000 r-xp /bin/t@0",
		"10000000-10003000 rw-p [heap]",
		"7ff000000000-7ff000021000 rw-p [stack]",
		"7ff000100000-7ff000102000 r-xp [vdso]",
	})
	// Special mappings have no file offset.
	for _, m := range tr.Snapshot(tPID).VMAs {
		if m.Path == "[vdso]" && m.Offset != 0 {
			t.Errorf("[vdso] offset %#x", m.Offset)
		}
	}
}
