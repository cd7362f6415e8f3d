package layout

import (
	"testing"

	"github.com/mmtrace/mmtrace/internal/events"
)

// Tests that pin the verdicts against the kernel's documented behaviour
// (mm/mmap.c, mm/mremap.c, mm/mprotect.c) and the README's words, with the
// expected values computed by hand. Sizes are written out (4096, 1 MiB,
// 64 MiB) rather than taken from the package's constants, so that a wrong
// constant fails here.

const (
	pinPage = 4096
	pinMiB  = 1 << 20
	// The kernel's default stack_guard_gap: 256 pages (mm/mmap.c,
	// "stack_guard_gap = 256UL<<PAGE_SHIFT"), 1 MiB with 4 KiB pages.
	pinGuardGap = 256 * pinPage
	anonRW      = 0x02 | mapAnonymous // MAP_PRIVATE|MAP_ANONYMOUS
)

// pinStart execs an image whose VMAs are vmas and whose fields x sets.
func pinStart(t *testing.T, g *gen, opts Options, x events.Exec, vmas []events.VMA) *Tracker {
	t.Helper()
	tr := NewTracker(opts)
	ch := applyAll(tr, g.exec(x, vmas)...)
	if !ch.SnapshotReady {
		t.Fatal("snapshot not ready after the last VMA")
	}
	return tr
}

func pinBlocker(f *BrkFailure) string {
	if f == nil {
		return "no failure"
	}
	if f.BlockedBy == nil {
		return "limit"
	}
	return f.BlockedBy.Prot + "@" + hex(f.BlockedBy.Start)
}

func hex(x uint64) string {
	const digits = "0123456789abcdef"
	if x == 0 {
		return "0x0"
	}
	var b []byte
	for ; x > 0; x >>= 4 {
		b = append([]byte{digits[x&0xf]}, b...)
	}
	return "0x" + string(b)
}

// brk next to a stack: the kernel's brk() refuses a new break when
// "newbrk + PAGE_SIZE > vm_start_gap(next)", and vm_start_gap is the
// start of a VM_GROWSDOWN VMA less stack_guard_gap (0 if that
// underflows), the start of any other VMA. A failed brk names that VMA as
// the blocker; a failure the VMAs do not explain is a limit.
func TestPinBrkNextToTheStack(t *testing.T) {
	const stack = 0x7ff000000000 // start of the stack VMA
	const stackEnd = stack + 0x21000
	heap := uint64(stack - pinGuardGap - 64*pinPage) // start_brk, 64 pages below the gap

	for _, c := range []struct {
		name       string
		growsDown  bool   // VM_GROWSDOWN on the VMA at stack
		startStack uint64 // mm->start_stack
		req        uint64 // the break asked for (the kernel left it at start_brk)
		want       string
	}{
		// newbrk + 4096 == stack - 1 MiB: not above the gap start, so the
		// VMAs allowed it and the failure was a limit.
		{"up to the guard gap is allowed", true, stack + 0x20000, stack - pinGuardGap - pinPage, "limit"},
		// One byte more rounds to one page more: newbrk + 4096 is a page
		// into the gap.
		{"a page into the guard gap", true, stack + 0x20000, stack - pinGuardGap - pinPage + 1, "rw-p@0x7ff000000000"},
		// The GROWSDOWN flag alone makes the gap (start_stack elsewhere).
		{"GROWSDOWN without start_stack", true, stackEnd + 0x100000, stack - pinGuardGap - pinPage + 1, "rw-p@0x7ff000000000"},
		// Without it, the VMA's own start is the limit: a page below it fits.
		{"plain VMA: the gap does not apply", false, stackEnd + 0x100000, stack - pinGuardGap - pinPage + 1, "limit"},
		{"plain VMA: a page below it fits", false, stackEnd + 0x100000, stack - pinPage, "limit"},
		{"plain VMA: up to its start does not", false, stackEnd + 0x100000, stack - pinPage + 1, "rw-p@0x7ff000000000"},
		// The VMA that holds start_stack is the stack even without the
		// flag (a layout read from /proc shows no flags).
		{"start_stack inside, no flag", false, stack + 0x20000, stack - pinGuardGap - pinPage + 1, "rw-p@0x7ff000000000"},
		{"start_stack inside, no flag, below the gap", false, stack + 0x20000, stack - pinGuardGap - pinPage, "limit"},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := newGen(tPID)
			x := defaultExec()
			x.StartBrk, x.Brk, x.StartStack = heap, heap, c.startStack
			flags := uint64(vmRead | vmWrite)
			if c.growsDown {
				flags |= vmGrowsDown
			}
			tr := pinStart(t, g, Options{}, x, []events.VMA{
				{Start: tText, End: tText + pinPage, Flags: vmRead | vmExec, Path: "/bin/t"},
				{Start: stack, End: stackEnd, Flags: flags},
			})
			ch := tr.Apply(g.brk(c.req, heap))
			if got := pinBlocker(ch.BrkFailure); got != c.want {
				t.Errorf("brk to %#x: %s, want %s", c.req, got, c.want)
			}
			r := tr.Snapshot(tPID)
			if len(r.BrkFailures) != 1 || pinBlocker(&r.BrkFailures[0]) != c.want {
				t.Errorf("report failures %+v", r.BrkFailures)
			}
		})
	}
}

// A stack VMA less than stack_guard_gap above address 0: vm_start_gap
// clamps to 0, so any brk below it is blocked.
func TestPinBrkGuardGapClampsAtZero(t *testing.T) {
	g := newGen(tPID)
	x := defaultExec()
	x.StartBrk, x.Brk, x.StartStack = 0x10000, 0x10000, 0x90000
	x.StartCode, x.EndCode = 0x1000, 0x2000
	tr := pinStart(t, g, Options{}, x, []events.VMA{
		{Start: 0x1000, End: 0x2000, Flags: vmRead | vmExec, Path: "/bin/t"},
		{Start: 0x80000, End: 0xa0000, Flags: vmRead | vmWrite | vmGrowsDown},
	})
	ch := tr.Apply(g.brk(0x11000, 0x10000))
	if got := pinBlocker(ch.BrkFailure); got != "rw-p@0x80000" {
		t.Errorf("brk under a low stack: %s, want blocked by the stack", got)
	}
}

// The squeeze threshold is 64 MiB by default and a mapping squeezes when
// it leaves headroom below it: exactly 64 MiB does not, one page less does.
func TestPinDefaultThresholdIs64MiB(t *testing.T) {
	if DefaultSqueezeThreshold != 64*pinMiB {
		t.Errorf("DefaultSqueezeThreshold = %d, want 64 MiB", DefaultSqueezeThreshold)
	}
	for _, c := range []struct {
		opts     Options
		headroom uint64
		squeezed bool
	}{
		{Options{}, 64 * pinMiB, false},
		{Options{}, 64*pinMiB - pinPage, true},
		{Options{}, 65 * pinMiB, false},
		{Options{SqueezeThreshold: 8 * pinMiB}, 8 * pinMiB, false},
		{Options{SqueezeThreshold: 8 * pinMiB}, 8*pinMiB - pinPage, true},
	} {
		g := newGen(tPID)
		tr := pinStart(t, g, c.opts, defaultExec(), defaultVMAs())
		ch := tr.Apply(g.anon(0, pinPage, tStartBrk+c.headroom))
		if (ch.NewSqueezer != nil) != c.squeezed || ch.Headroom != c.headroom {
			t.Errorf("threshold %d, headroom %#x: squeezer %+v (headroom %#x)", c.opts.SqueezeThreshold, c.headroom, ch.NewSqueezer, ch.Headroom)
		}
		if c.squeezed && (ch.NewSqueezer.Start != tStartBrk+c.headroom || ch.NewSqueezer.Headroom != c.headroom ||
			ch.NewSqueezer.Seq != g.seq || ch.NewSqueezer.Placement != PlacementTopDown) {
			t.Errorf("squeezer %+v", ch.NewSqueezer)
		}
		r := tr.Snapshot(tPID)
		if (r.Squeezer != nil) != c.squeezed {
			t.Errorf("report squeezer %+v", r.Squeezer)
		}
	}
}

// The README: the squeezer is the mapping that left the headroom below the
// threshold "when it was created". When the heap's own growth brings the
// headroom down, the mapping that was already there is not the squeezer,
// nor is one created elsewhere afterwards (below the heap, or above the
// bound); the next mapping created between the break and the bound is.
func TestPinHeapGrowthMakesNoSqueezer(t *testing.T) {
	g := newGen(tPID)
	tr := pinStart(t, g, Options{}, defaultExec(), defaultVMAs())
	bound := uint64(tStartBrk + 100*pinMiB)
	if ch := tr.Apply(g.anon(0, pinPage, bound)); ch.NewSqueezer != nil {
		t.Fatalf("100 MiB of headroom squeezed: %+v", ch.NewSqueezer)
	}
	// The heap grows by 50 MiB: 50 MiB of headroom, under the threshold.
	ch := tr.Apply(g.brk(tStartBrk+50*pinMiB, tStartBrk+50*pinMiB))
	if ch.NewSqueezer != nil || ch.Headroom != 50*pinMiB || !ch.HeadroomChanged {
		t.Errorf("heap growth: squeezer %+v headroom %#x changed %v", ch.NewSqueezer, ch.Headroom, ch.HeadroomChanged)
	}
	// A mapping below the heap (under the text), and one above the bound.
	for _, at := range []uint64{0x200000, bound + 10*pinMiB} {
		if ch := tr.Apply(g.mmap(at, pinPage, protR, anonRW, "", 0, at)); ch.NewSqueezer != nil {
			t.Errorf("mapping at %#x named squeezer %+v", at, ch.NewSqueezer)
		}
	}
	r := tr.Snapshot(tPID)
	if r.Squeezer != nil || r.BoundedBy == nil || r.BoundedBy.Start != bound || r.BrkHeadroom != 50*pinMiB {
		t.Errorf("report: squeezer %+v bounded by %+v headroom %#x", r.Squeezer, r.BoundedBy, r.BrkHeadroom)
	}
	// Now one between the break and the bound: 10 MiB above the break.
	near := uint64(tStartBrk + 60*pinMiB)
	ch = tr.Apply(g.anon(0, pinPage, near))
	if ch.NewSqueezer == nil || ch.NewSqueezer.Start != near || ch.NewSqueezer.Headroom != 10*pinMiB {
		t.Errorf("mapping 10 MiB above the break: squeezer %+v", ch.NewSqueezer)
	}
}

// A mapping placed (MAP_FIXED) inside the heap right below a mapping the
// heap has grown up to: the bound starts exactly where the new mapping
// ends, and neither made the squeeze when it was created.
func TestPinMappingBelowTheBreakEndingAtTheBound(t *testing.T) {
	g := newGen(tPID)
	tr := pinStart(t, g, Options{}, defaultExec(), defaultVMAs())
	bound := uint64(tStartBrk + 100*pinMiB)
	applyAll(tr, g.anon(0, pinPage, bound), g.brk(bound, bound))
	if r := tr.Snapshot(tPID); r.BrkHeadroom != 0 || r.Squeezer != nil {
		t.Fatalf("heap up to the mapping: headroom %#x squeezer %+v", r.BrkHeadroom, r.Squeezer)
	}
	ch := tr.Apply(g.mmap(bound-pinPage, pinPage, protR, anonRW|mapFixed, "", 0, bound-pinPage))
	if ch.NewSqueezer != nil {
		t.Errorf("MAP_FIXED inside the heap named squeezer %+v", ch.NewSqueezer)
	}
	if ch := tr.Apply(g.mmap(0x200000, pinPage, protR, anonRW|mapFixed, "", 0, 0x200000)); ch.NewSqueezer != nil {
		t.Errorf("a mapping below the text named squeezer %+v", ch.NewSqueezer)
	}
}

// Headroom bounded by the mmap base (legacy layout, base above the break)
// names no squeezer; a mapping below the base bounds and is named.
func TestPinBaseBoundNamesNoSqueezer(t *testing.T) {
	g := newGen(tPID)
	x := defaultExec()
	x.MmapBase, x.MmapLegacyBase = tStartBrk+16*pinMiB, tStartBrk+16*pinMiB // legacy, base 16 MiB up
	tr := pinStart(t, g, Options{}, x, defaultVMAs())
	r := tr.Snapshot(tPID)
	if r.Squeezer != nil || r.BoundedBy != nil || r.BrkHeadroom != 16*pinMiB {
		t.Errorf("the base bounds the heap: squeezer %+v bounded by %+v headroom %#x", r.Squeezer, r.BoundedBy, r.BrkHeadroom)
	}
	// A mapping above the base does not change the bound: the base is
	// lower, so no mapping bounds the heap and none is named.
	ch := tr.Apply(g.anon(0, pinPage, tStartBrk+17*pinMiB))
	if ch.NewSqueezer != nil || ch.Placement != PlacementBottomUp || ch.Headroom != 16*pinMiB {
		t.Errorf("above the base: %+v", ch)
	}
	if r := tr.Snapshot(tPID); r.BoundedBy != nil {
		t.Errorf("bounded by %+v, want the base (nil)", r.BoundedBy)
	}
	// Below the base it bounds, and it was created there: squeezer.
	ch = tr.Apply(g.mmap(tStartBrk+8*pinMiB, pinPage, protR, anonRW|mapFixed, "", 0, tStartBrk+8*pinMiB))
	if ch.NewSqueezer == nil || ch.NewSqueezer.Start != tStartBrk+8*pinMiB || ch.NewSqueezer.Placement != PlacementFixed {
		t.Errorf("below the base: %+v", ch.NewSqueezer)
	}
}

// Merging: the kernel joins a VMA split by mprotect back into one when the
// protection is restored (vma_merge in mprotect_fixup), so the mapping
// bounding the heap is the whole mapping again, for anonymous memory and
// for a file mapped at contiguous offsets.
func TestPinMprotectRoundTripRejoins(t *testing.T) {
	for _, path := range []string{"", "/usr/lib/x.so"} {
		g := newGen(tPID)
		tr := pinStart(t, g, Options{}, defaultExec(), defaultVMAs())
		a := uint64(tStartBrk + 32*pinMiB)
		if path == "" {
			tr.Apply(g.anon(0, 4*pinPage, a))
		} else {
			tr.Apply(g.mmap(0, 4*pinPage, protR|protW, 0x02, path, 0x3000, a))
		}
		mapSeq := g.seq
		applyAll(tr, g.mprotect(a+pinPage, pinPage, protR, 0), g.mprotect(a+pinPage, pinPage, protR|protW, 0))
		r := tr.Snapshot(tPID)
		b := r.BoundedBy
		if b == nil || b.Start != a || b.End != a+4*pinPage || b.Prot != "rw-p" || b.Seq != mapSeq || b.Path != path {
			t.Errorf("%q: bounded by %+v, want the whole mapping [%#x, %#x) seq %d", path, b, a, a+4*pinPage, mapSeq)
		}
		if path != "" && b != nil && b.Offset != 0x3000 {
			t.Errorf("%q: offset %#x, want 0x3000", path, b.Offset)
		}
		// A failed brk into it names the whole mapping too.
		ch := tr.Apply(g.brk(a+pinPage, tStartBrk))
		if f := ch.BrkFailure; f == nil || f.BlockedBy == nil || f.BlockedBy.Start != a || f.BlockedBy.End != a+4*pinPage {
			t.Errorf("%q: brk failure %+v", path, ch.BrkFailure)
		}
	}
}

// Part of a mapping with another protection is another VMA in /proc.
func TestPinMprotectSplitsByProtection(t *testing.T) {
	g := newGen(tPID)
	tr := pinStart(t, g, Options{}, defaultExec(), defaultVMAs())
	a := uint64(tStartBrk + 32*pinMiB)
	applyAll(tr, g.mmap(0, 4*pinPage, protR|protW, 0x02, "/x", 0, a), g.mprotect(a+2*pinPage, 2*pinPage, protR, 0))
	equalLines(t, "layout", layoutOf(t, tr, tPID), []string{
		"12000000-12002000 rw-p /x@0",
		"12002000-12004000 r--p /x@2000",
	})
	// The bound is the part below: the same call made both parts, but the
	// kernel holds them as two VMAs.
	if b := tr.Snapshot(tPID).BoundedBy; b == nil || b.End != a+2*pinPage || b.Prot != "rw-p" {
		t.Errorf("bounded by %+v", b)
	}
}

// Two mappings made by two calls stay two mappings for the verdict, even
// when the kernel would merge them into one VMA: the squeezer is named
// exactly (Regions' comment, DESIGN "squeezer").
func TestPinAdjacentMappingsOfTwoCallsStayApart(t *testing.T) {
	g := newGen(tPID)
	tr := pinStart(t, g, Options{}, defaultExec(), defaultVMAs())
	a := uint64(tStartBrk + 32*pinMiB)
	ch := tr.Apply(g.anon(0, 2*pinPage, a+2*pinPage)) // top-down: the upper one first
	first := g.seq
	if ch.NewSqueezer == nil || ch.NewSqueezer.End != a+4*pinPage {
		t.Fatalf("first: %+v", ch.NewSqueezer)
	}
	tr.Apply(g.anon(0, 2*pinPage, a))
	second := g.seq
	r := tr.Snapshot(tPID)
	if r.Squeezer == nil || r.Squeezer.Seq != first || r.Squeezer.Start != a+2*pinPage || r.Squeezer.End != a+4*pinPage {
		t.Errorf("squeezer %+v, want the first call's [%#x, %#x)", r.Squeezer, a+2*pinPage, a+4*pinPage)
	}
	if b := r.BoundedBy; b == nil || b.Seq != second || b.Start != a || b.End != a+2*pinPage {
		t.Errorf("bounded by %+v, want the second call's [%#x, %#x)", b, a, a+2*pinPage)
	}
	// /proc shows one VMA: same flags, anonymous, adjacent.
	equalLines(t, "layout", layoutOf(t, tr, tPID), []string{"12000000-12004000 rw-p"})
}

// mremap moving a range the kernel holds as one VMA (two calls' adjacent
// anonymous mappings, merged): at the new place it is one mapping, made
// by the mremap.
func TestPinMremapMovedPiecesJoin(t *testing.T) {
	g := newGen(tPID)
	tr := pinStart(t, g, Options{}, defaultExec(), defaultVMAs())
	x := uint64(0x7e0000000000)
	y := uint64(tStartBrk + 32*pinMiB)
	applyAll(tr, g.anon(0, 2*pinPage, x+2*pinPage), g.anon(0, 2*pinPage, x))
	ch := tr.Apply(g.mremap(x, 4*pinPage, 4*pinPage, mremapMayMove|mremapFixed, y, int64(y)))
	if s := ch.NewSqueezer; s == nil || s.Start != y || s.End != y+4*pinPage || s.Placement != PlacementMremap || s.Seq != g.seq {
		t.Errorf("squeezer %+v, want the moved [%#x, %#x)", s, y, y+4*pinPage)
	}
	equalLines(t, "layout", layoutOf(t, tr, tPID), []string{"12000000-12004000 rw-p"})
}

// mremap moving and growing: the moved part and the new tail are one VMA.
func TestPinMremapMoveAndGrowIsOneMapping(t *testing.T) {
	g := newGen(tPID)
	tr := pinStart(t, g, Options{}, defaultExec(), defaultVMAs())
	x := uint64(0x7e0000000000)
	y := uint64(tStartBrk + 32*pinMiB)
	tr.Apply(g.mmap(0, 2*pinPage, protR, 0x02, "/data", 0x5000, x))
	ch := tr.Apply(g.mremap(x, 2*pinPage, 4*pinPage, mremapMayMove, 0, int64(y)))
	if s := ch.NewSqueezer; s == nil || s.Start != y || s.End != y+4*pinPage || s.Offset != 0x5000 {
		t.Errorf("squeezer %+v, want [%#x, %#x) at offset 0x5000", s, y, y+4*pinPage)
	}
	equalLines(t, "layout", layoutOf(t, tr, tPID), []string{"12000000-12004000 r--p /data@5000"})
}

// mremap with MREMAP_FIXED onto an existing mapping: the kernel unmaps the
// target range first (mremap_to: do_munmap(new_addr, new_len)), whatever
// the model knew of the source.
func TestPinMremapOntoAMapping(t *testing.T) {
	g := newGen(tPID)
	tr := pinStart(t, g, Options{}, defaultExec(), defaultVMAs())
	x := uint64(0x7e0000000000)
	y := uint64(0x7e0000100000)
	applyAll(tr, g.mmap(0, 2*pinPage, protR, 0x02, "/a", 0, x), g.mmap(0, 4*pinPage, protR, 0x02, "/b", 0, y))
	tr.Apply(g.mremap(x, 2*pinPage, 2*pinPage, mremapMayMove|mremapFixed, y, int64(y)))
	equalLines(t, "known source", layoutOf(t, tr, tPID), []string{
		"7e0000100000-7e0000102000 r--p /a@0",
		"7e0000102000-7e0000104000 r--p /b@2000",
	})
	// A source the model never saw (its mapping was lost): the target's
	// old pages are gone all the same.
	z := uint64(0x7e0000200000)
	tr.Apply(g.mremap(z, 2*pinPage, 2*pinPage, mremapMayMove|mremapFixed, y+2*pinPage, int64(y+2*pinPage)))
	equalLines(t, "unknown source", layoutOf(t, tr, tPID), []string{
		"7e0000100000-7e0000102000 r--p /a@0",
	})
}

// Shrink and move: mremap first unmaps the tail past new_len, then moves
// what is left; nothing stays at the old address.
func TestPinMremapShrinkAndMove(t *testing.T) {
	g := newGen(tPID)
	tr := pinStart(t, g, Options{}, defaultExec(), defaultVMAs())
	x := uint64(0x7e0000000000)
	y := uint64(0x7e0000100000)
	tr.Apply(g.mmap(0, 4*pinPage, protR, 0x02, "/a", 0x1000, x))
	ch := tr.Apply(g.mremap(x, 4*pinPage, 2*pinPage, mremapMayMove|mremapFixed, y, int64(y)))
	if ch.Placement != PlacementMremap {
		t.Errorf("placement %q", ch.Placement)
	}
	equalLines(t, "layout", layoutOf(t, tr, tPID), []string{"7e0000100000-7e0000102000 r--p /a@1000"})
	// Shrinking in place unmaps the tail only.
	tr.Apply(g.mremap(y, 2*pinPage, pinPage, 0, 0, int64(y)))
	equalLines(t, "in place", layoutOf(t, tr, tPID), []string{"7e0000100000-7e0000101000 r--p /a@1000"})
}

// MREMAP_DONTUNMAP leaves the old range mapped (emptied), the pages at the
// new address.
func TestPinMremapDontUnmap(t *testing.T) {
	g := newGen(tPID)
	tr := pinStart(t, g, Options{}, defaultExec(), defaultVMAs())
	x := uint64(0x7e0000000000)
	y := uint64(0x7e0000100000)
	tr.Apply(g.anon(0, 2*pinPage, x))
	tr.Apply(g.mremap(x, 2*pinPage, 2*pinPage, mremapMayMove|mremapDontUnmap, 0, int64(y)))
	equalLines(t, "layout", layoutOf(t, tr, tPID), []string{
		"7e0000000000-7e0000002000 rw-p",
		"7e0000100000-7e0000102000 rw-p",
	})
}

// Growing in place extends the VMA: the new part continues the file
// offsets, and /proc shows one VMA. A range never seen cannot grow.
func TestPinMremapGrowInPlace(t *testing.T) {
	g := newGen(tPID)
	tr := pinStart(t, g, Options{}, defaultExec(), defaultVMAs())
	x := uint64(tStartBrk + 32*pinMiB)
	tr.Apply(g.mmap(0, 2*pinPage, protR, 0x02, "/a", 0x2000, x))
	ch := tr.Apply(g.mremap(x, 2*pinPage, 3*pinPage, 0, 0, int64(x)))
	if ch.Placement != PlacementMremap {
		t.Errorf("placement %q", ch.Placement)
	}
	equalLines(t, "layout", layoutOf(t, tr, tPID), []string{"12000000-12003000 r--p /a@2000"})
	// The squeezer is the first mapping; the grown part is the mremap's.
	var grown bool
	for _, m := range tr.Snapshot(tPID).VMAs {
		if m.Start == x && m.End == x+3*pinPage {
			grown = true
		}
	}
	if !grown {
		t.Error("grown VMA not found")
	}
	// Growing a range the model never saw does nothing.
	z := uint64(0x7e0000200000)
	if ch := tr.Apply(g.mremap(z, pinPage, 2*pinPage, 0, 0, int64(z))); ch.Placement != PlacementNone {
		t.Errorf("unknown range grew: %q", ch.Placement)
	}
	// A failed mremap changes nothing.
	if ch := tr.Apply(g.mremap(x, 3*pinPage, 8*pinPage, 0, 0, -errnoENOMEM)); ch.Placement != PlacementNone {
		t.Errorf("failed mremap: %q", ch.Placement)
	}
	equalLines(t, "after", layoutOf(t, tr, tPID), []string{"12000000-12003000 r--p /a@2000"})
}

// mremap with old_len 0 of a shared mapping makes a second mapping of the
// same pages; the first stays.
func TestPinMremapDuplicate(t *testing.T) {
	g := newGen(tPID)
	tr := pinStart(t, g, Options{}, defaultExec(), defaultVMAs())
	x := uint64(0x7e0000000000)
	y := uint64(0x7e0000100000)
	tr.Apply(g.mmap(0, 2*pinPage, protR, mapShared, "/shm", 0, x))
	tr.Apply(g.mremap(x+pinPage, 0, pinPage, mremapMayMove, 0, int64(y)))
	equalLines(t, "layout", layoutOf(t, tr, tPID), []string{
		"7e0000000000-7e0000002000 r--s /shm@0",
		"7e0000100000-7e0000101000 r--s /shm@1000",
	})
}

// Exec-snapshot VMAs: GROWSDOWN (vm_flags 0x100) is what makes a VMA a
// stack for brk; VM_READ/WRITE/EXEC/MAYSHARE map to /proc's letters.
func TestPinSnapshotFlags(t *testing.T) {
	g := newGen(tPID)
	x := defaultExec()
	tr := pinStart(t, g, Options{}, x, []events.VMA{
		{Start: 0x400000, End: 0x401000, Flags: vmRead | vmExec, Path: "/bin/t"},
		{Start: 0x401000, End: 0x402000, Flags: vmRead | vmWrite | vmMayShare, PgOff: 1, Path: "/bin/t"},
		{Start: 0x500000, End: 0x501000, Flags: vmWrite},
		{Start: 0x600000, End: 0x601000, Flags: 0, Path: "[vvar]"},
	})
	got := maps(tr.Snapshot(tPID).VMAs)
	equalLines(t, "layout", got, []string{
		"400000-401000 r-xp /bin/t@0",
		"401000-402000 rw-s /bin/t@1000",
		"500000-501000 -w-p",
		"600000-601000 ---p [vvar]",
	})
}

// "The VMA that holds start_stack" is the half-open [start, end): a VMA
// that starts at start_stack holds it, one that ends there does not.
func TestPinStartStackContainment(t *testing.T) {
	const v = 0x7ff000000000 // a plain VMA (no GROWSDOWN) of 0x21000 bytes
	heap := uint64(v - pinGuardGap - 64*pinPage)
	req := uint64(v - pinGuardGap - pinPage + 1) // a page into the gap, below the VMA
	for _, c := range []struct {
		startStack uint64
		want       string
	}{
		{v, "rw-p@0x7ff000000000"},               // at its start: the stack, its gap blocks
		{v + 0x21000, "limit"},                   // at its end: not the stack, no gap
		{v + 0x21000 - 1, "rw-p@0x7ff000000000"}, // its last byte
	} {
		g := newGen(tPID)
		x := defaultExec()
		x.StartBrk, x.Brk, x.StartStack = heap, heap, c.startStack
		tr := pinStart(t, g, Options{}, x, []events.VMA{
			{Start: tText, End: tText + pinPage, Flags: vmRead | vmExec, Path: "/bin/t"},
			{Start: v, End: v + 0x21000, Flags: vmRead | vmWrite},
		})
		if got := pinBlocker(tr.Apply(g.brk(req, heap)).BrkFailure); got != c.want {
			t.Errorf("start_stack %#x: %s, want %s", c.startStack, got, c.want)
		}
	}
}

// A blocker is named as /proc names it: an anonymous VMA with
// vm_start <= start_stack <= vm_end is "[stack]" (vma_is_initial_stack,
// both ends inclusive); a file keeps its path; other anonymous memory has
// none.
func TestPinBlockerNamedStack(t *testing.T) {
	const v = 0x7ff000000000
	heap := uint64(v - 64*pinPage)
	req := uint64(v - pinPage + 1) // newbrk + 4096 > v: blocked by v itself
	for _, c := range []struct {
		startStack uint64
		path       string
		want       string
	}{
		{v + 0x20000, "", "[stack]"},
		{v, "", "[stack]"},
		{v + 0x21000, "", "[stack]"},
		{v + 0x22000, "", ""},
		{v - 1, "", ""},
		{v + 0x20000, "/dev/shm/x", "/dev/shm/x"},
	} {
		g := newGen(tPID)
		x := defaultExec()
		x.StartBrk, x.Brk, x.StartStack = heap, heap, c.startStack
		tr := pinStart(t, g, Options{}, x, []events.VMA{
			{Start: tText, End: tText + pinPage, Flags: vmRead | vmExec, Path: "/bin/t"},
			{Start: v, End: v + 0x21000, Flags: vmRead | vmWrite, Path: c.path},
		})
		f := tr.Apply(g.brk(req, heap)).BrkFailure
		if f == nil || f.BlockedBy == nil || f.BlockedBy.Path != c.want {
			t.Errorf("start_stack %#x path %q: blocked by %+v, want named %q", c.startStack, c.path, f, c.want)
		}
	}
}

// /proc/PID/maps shows the kernel's VMAs: anonymous memory mapped right
// above the break merges with the heap into one VMA, and /proc labels it
// [heap] (vma_is_initial_heap); two mappings of one file at offsets that
// do not follow each other stay two VMAs.
func TestPinMapsJoinAsTheKernelDoes(t *testing.T) {
	g := newGen(tPID)
	tr := pinStart(t, g, Options{}, defaultExec(), defaultVMAs())
	// The break inside the heap's page: the memory above it starts past
	// the break, so only the merged VMA is the heap by /proc's rule.
	tr.Apply(g.brk(tStartBrk+0x800, tStartBrk+0x800))
	tr.Apply(g.mmap(tStartBrk+0x1000, 0x2000, protR|protW, anonRW|mapFixed, "", 0, tStartBrk+0x1000))
	x := uint64(0x7e0000000000)
	applyAll(tr,
		g.mmap(x, pinPage, protR, 0x02|mapFixed, "/a", 0, x),
		g.mmap(x+pinPage, pinPage, protR, 0x02|mapFixed, "/a", 0x5000, x+pinPage),
		g.mmap(x+2*pinPage, pinPage, protR, 0x02|mapFixed, "/a", 0x6000, x+2*pinPage),
		// Offsets going down: not contiguous either.
		g.mmap(x+4*pinPage, pinPage, protR, 0x02|mapFixed, "/a", 0x5000, x+4*pinPage),
		g.mmap(x+5*pinPage, pinPage, protR, 0x02|mapFixed, "/a", 0x4000, x+5*pinPage),
	)
	equalLines(t, "layout", layoutOf(t, tr, tPID), []string{
		"10000000-10003000 rw-p [heap]",
		"7e0000000000-7e0000001000 r--p /a@0",
		"7e0000001000-7e0000003000 r--p /a@5000",
		"7e0000004000-7e0000005000 r--p /a@5000",
		"7e0000005000-7e0000006000 r--p /a@4000",
	})
}

// Growing in place extends the mapping that holds the old range's last
// byte, not a neighbour: the new part has its file, offsets and
// protection, even with another file mapped right below.
func TestPinMremapGrowsItsOwnMapping(t *testing.T) {
	g := newGen(tPID)
	tr := pinStart(t, g, Options{}, defaultExec(), defaultVMAs())
	x := uint64(0x7e0000100000)
	applyAll(tr,
		g.mmap(0, 4*pinPage, protR|protX, 0x02, "/below", 0x9000, x-4*pinPage),
		g.mmap(0, 2*pinPage, protR, 0x02, "/a", 0x2000, x),
	)
	if ch := tr.Apply(g.mremap(x, 2*pinPage, 3*pinPage, 0, 0, int64(x))); ch.Placement != PlacementMremap {
		t.Errorf("placement %q", ch.Placement)
	}
	equalLines(t, "layout", layoutOf(t, tr, tPID), []string{
		"7e00000fc000-7e0000100000 r-xp /below@9000",
		"7e0000100000-7e0000103000 r--p /a@2000",
	})
	// A range the model never saw, with a mapping right after it: nothing
	// to grow, and that mapping is not taken for it.
	z := uint64(0x7e0000200000)
	tr.Apply(g.mmap(0, pinPage, protR, 0x02, "/after", 0, z+pinPage))
	if ch := tr.Apply(g.mremap(z, pinPage, 2*pinPage, 0, 0, int64(z))); ch.Placement != PlacementNone {
		t.Errorf("an unknown range grew into the next mapping: %q", ch.Placement)
	}
}

// mremap with old_len 0 from the very start of a shared mapping.
func TestPinMremapDuplicateFromStart(t *testing.T) {
	g := newGen(tPID)
	tr := pinStart(t, g, Options{}, defaultExec(), defaultVMAs())
	x := uint64(0x7e0000000000)
	y := uint64(0x7e0000100000)
	tr.Apply(g.mmap(0, 2*pinPage, protR, mapShared, "/shm", 0x4000, x))
	if ch := tr.Apply(g.mremap(x, 0, 2*pinPage, mremapMayMove, 0, int64(y))); ch.Placement != PlacementMremap {
		t.Errorf("placement %q", ch.Placement)
	}
	equalLines(t, "layout", layoutOf(t, tr, tPID), []string{
		"7e0000000000-7e0000002000 r--s /shm@4000",
		"7e0000100000-7e0000102000 r--s /shm@4000",
	})
	// From an address the model has nothing at: no second mapping.
	if ch := tr.Apply(g.mremap(x+0x10000, 0, pinPage, mremapMayMove, 0, int64(y+0x10000))); ch.Placement != PlacementNone {
		t.Errorf("duplicate of nothing: %q", ch.Placement)
	}
}

// HeadroomChanged: the headroom moved to another power-of-two bucket or
// crossed the threshold ("below" is under 64 MiB, not at it). 65 MiB and
// 64 MiB share a bucket (2^26..2^27) and are both not below: no change;
// nor from 64 MiB to 100 MiB.
func TestPinHeadroomChangeAtTheThreshold(t *testing.T) {
	g := newGen(tPID)
	tr := pinStart(t, g, Options{}, defaultExec(), defaultVMAs())
	applyAll(tr, g.anon(0, pinPage, tStartBrk+100*pinMiB), g.anon(0, pinPage, tStartBrk+65*pinMiB))
	if ch := tr.Apply(g.anon(0, pinPage, tStartBrk+64*pinMiB)); ch.HeadroomChanged || ch.Headroom != 64*pinMiB {
		t.Errorf("65 MiB to 64 MiB: changed %v headroom %#x", ch.HeadroomChanged, ch.Headroom)
	}
	tr.Apply(g.munmap(tStartBrk+65*pinMiB, pinPage))
	if ch := tr.Apply(g.munmap(tStartBrk+64*pinMiB, pinPage)); ch.HeadroomChanged || ch.Headroom != 100*pinMiB {
		t.Errorf("64 MiB to 100 MiB: changed %v headroom %#x", ch.HeadroomChanged, ch.Headroom)
	}
}

// mremap moving and growing a range the model never saw: the target
// range is unmapped and nothing is invented for it.
func TestPinMremapMoveUnknownRange(t *testing.T) {
	g := newGen(tPID)
	tr := pinStart(t, g, Options{}, defaultExec(), defaultVMAs())
	y := uint64(0x7e0000100000)
	tr.Apply(g.mmap(0, 4*pinPage, protR, 0x02, "/b", 0, y))
	if ch := tr.Apply(g.mremap(0x7e0000000000, pinPage, 2*pinPage, mremapMayMove|mremapFixed, y, int64(y))); ch.Placement != PlacementMremap {
		t.Errorf("placement %q", ch.Placement)
	}
	equalLines(t, "layout", layoutOf(t, tr, tPID), []string{"7e0000102000-7e0000104000 r--p /b@2000"})
}
