package layout

import (
	"testing"

	"github.com/mmtrace/mmtrace/internal/events"
)

// Tests that pin how each memory call changes the model, against what the
// kernel does with it (mm/mmap.c, mm/mprotect.c, kernel/exec_domain.c,
// drivers/char/mem.c).

// mprotect changes VMAs in address order and stops at the first hole with
// ENOMEM: what came before the hole changed, what comes after did not.
// Any other error changed nothing.
func TestPinMprotectStopsAtAHole(t *testing.T) {
	x := uint64(0x7e0000000000)
	for _, c := range []struct {
		name string
		ret  int64
		want []string
	}{
		{"ENOMEM", -12, []string{
			"7e0000000000-7e0000002000 r--p",
			"7e0000003000-7e0000004000 rw-p",
		}},
		{"EACCES", -13, []string{
			"7e0000000000-7e0000002000 rw-p",
			"7e0000003000-7e0000004000 rw-p",
		}},
		{"success", 0, []string{
			"7e0000000000-7e0000002000 r--p",
			"7e0000003000-7e0000004000 r--p",
		}},
	} {
		g := newGen(tPID)
		tr := pinStart(t, g, Options{}, defaultExec(), defaultVMAs())
		applyAll(tr, g.anon(0, 2*pinPage, x), g.anon(0, pinPage, x+3*pinPage))
		tr.Apply(g.mprotect(x, 4*pinPage, protR, c.ret))
		equalLines(t, c.name, layoutOf(t, tr, tPID), c.want)
	}
}

// A failed munmap unmaps nothing.
func TestPinFailedMunmap(t *testing.T) {
	g := newGen(tPID)
	tr := pinStart(t, g, Options{}, defaultExec(), defaultVMAs())
	x := uint64(0x7e0000000000)
	tr.Apply(g.anon(0, 2*pinPage, x))
	m := g.munmap(x, pinPage)
	m.Ret = -22
	tr.Apply(m)
	equalLines(t, "after EINVAL", layoutOf(t, tr, tPID), []string{"7e0000000000-7e0000002000 rw-p"})
	// A partial munmap (length rounded up to a page) keeps the rest.
	tr.Apply(g.munmap(x, 1))
	equalLines(t, "after munmap of 1 byte", layoutOf(t, tr, tPID), []string{"7e0000001000-7e0000002000 rw-p"})
}

// Shared anonymous memory is shmem: /proc names it "/dev/zero (deleted)"
// and shows 's'; private /dev/zero is made anonymous by mmap_zero.
func TestPinSharedAndZeroMappings(t *testing.T) {
	g := newGen(tPID)
	tr := pinStart(t, g, Options{}, defaultExec(), defaultVMAs())
	x := uint64(0x7e0000000000)
	applyAll(tr,
		g.mmap(0, pinPage, protR|protW, mapShared|mapAnonymous, "", 0, x),
		g.mmap(0, pinPage, protR, mapSharedValidate|mapAnonymous, "", 0, x+0x10000),
		g.mmap(0, pinPage, protR|protW, 0x02, "/dev/zero", 0x5000, x+0x20000),
		g.mmap(0, pinPage, protR, mapShared, "/data", 0x5000, x+0x30000),
		g.mmap(0, pinPage, protR, 0x02, "/data", 0x7000, x+0x40000),
	)
	equalLines(t, "layout", layoutOf(t, tr, tPID), []string{
		"7e0000000000-7e0000001000 rw-s /dev/zero (deleted)@0",
		"7e0000010000-7e0000011000 r--s /dev/zero (deleted)@0",
		"7e0000020000-7e0000021000 rw-p",
		"7e0000030000-7e0000031000 r--s /data@5000",
		"7e0000040000-7e0000041000 r--p /data@7000",
	})
}

// personality(2) on a live image: READ_IMPLIES_EXEC makes later PROT_READ
// mappings executable (do_mmap checks current->personality); a failed
// call or a query (0xffffffff) changes nothing.
func TestPinPersonalityOnALiveImage(t *testing.T) {
	for _, c := range []struct {
		name    string
		persona uint64
		ret     int64
		want    string
	}{
		{"set", readImpliesExec, 0, "r-xp"},
		{"failed", readImpliesExec, -22, "r--p"},
		{"query", personaQuery, 0, "r--p"},
	} {
		g := newGen(tPID)
		tr := pinStart(t, g, Options{}, defaultExec(), defaultVMAs())
		p := g.ev(events.KindPersonality)
		p.Addr, p.Ret = c.persona, c.ret
		if ch := tr.Apply(p); !ch.Tracked {
			t.Errorf("%s: personality of a traced image not tracked", c.name)
		}
		tr.Apply(g.mmap(0, pinPage, protR, 0x02|mapAnonymous, "", 0, 0x7e0000000000))
		equalLines(t, c.name, layoutOf(t, tr, tPID), []string{"7e0000000000-7e0000001000 " + c.want})
	}
}

// A personality call before exec is named as the cause only when it
// succeeded.
func TestPinFailedPersonalityIsNoCause(t *testing.T) {
	g := newGen(tPID)
	tr := NewTracker(Options{})
	p := g.ev(events.KindPersonality)
	p.Addr, p.Ret = addrCompatLayout, -1
	tr.Apply(p)
	x := defaultExec()
	x.MmapBase, x.Personality = tLegacy, addrCompatLayout
	applyAll(tr, g.exec(x, defaultVMAs())...)
	if r := tr.Snapshot(tPID); r.PersonalitySource != "inherited" {
		t.Errorf("source %q", r.PersonalitySource)
	}
	// An exit of a process never exec'd under tracing forgets its call.
	p = g.ev(events.KindPersonality)
	p.PID, p.Addr = 77, addrCompatLayout
	tr.Apply(p)
	e := g.ev(events.KindExit)
	e.PID = 77
	if ch := tr.Apply(e); ch.Tracked {
		t.Error("exit of an untraced pid tracked")
	}
	g77 := newGen(77)
	applyAll(tr, g77.exec(x, defaultVMAs())...)
	if r := tr.Snapshot(77); r.PersonalitySource != "inherited" {
		t.Errorf("after exit: source %q", r.PersonalitySource)
	}
}

// brk: a negative result is not an address (brk returns no error codes);
// a smaller break shrinks the heap; brk(0) asks and fails nothing.
func TestPinBrkResults(t *testing.T) {
	g := newGen(tPID)
	tr := pinStart(t, g, Options{}, defaultExec(), defaultVMAs())
	// Got what it asked: not a failure (DESIGN: a failure is a result
	// below the request).
	if ch := tr.Apply(g.brk(tStartBrk+0x5000, tStartBrk+0x5000)); ch.BrkFailure != nil {
		t.Errorf("a brk that got its break failed: %+v", ch.BrkFailure)
	}
	e := g.brk(tStartBrk+0x9000, 0)
	e.Ret = -12
	if ch := tr.Apply(e); ch.BrkFailure != nil {
		t.Errorf("negative result made a failure %+v", ch.BrkFailure)
	}
	if r := tr.Snapshot(tPID); r.Brk != tStartBrk+0x5000 {
		t.Errorf("break %#x after a negative result", r.Brk)
	}
	tr.Apply(g.brk(tStartBrk+0x1001, tStartBrk+0x1001))
	equalLines(t, "shrunk", layoutOf(t, tr, tPID), []string{"10000000-10002000 rw-p [heap]"})
	if ch := tr.Apply(g.brk(0, tStartBrk+0x1001)); ch.BrkFailure != nil {
		t.Errorf("brk(0): %+v", ch.BrkFailure)
	}
	tr.Apply(g.brk(tStartBrk, tStartBrk))
	equalLines(t, "empty heap", layoutOf(t, tr, tPID), nil)
}

// IS_ERR_VALUE: returns from -4095 to -1 are errors; a failed mremap or
// mmap changes nothing.
func TestPinErrnoRange(t *testing.T) {
	g := newGen(tPID)
	tr := pinStart(t, g, Options{}, defaultExec(), defaultVMAs())
	x := uint64(0x7e0000000000)
	tr.Apply(g.anon(0, 2*pinPage, x))
	for _, ret := range []int64{-1, -4095} {
		if ch := tr.Apply(g.mremap(x, 2*pinPage, 2*pinPage, mremapMayMove, 0, ret)); ch.Placement != PlacementNone {
			t.Errorf("mremap returning %d: placement %q", ret, ch.Placement)
		}
		m := g.anon(0, pinPage, 0)
		m.Ret = ret
		if ch := tr.Apply(m); ch.Placement != PlacementNone {
			t.Errorf("mmap returning %d: placement %q", ret, ch.Placement)
		}
	}
	equalLines(t, "layout", layoutOf(t, tr, tPID), []string{"7e0000000000-7e0000002000 rw-p"})
}

// Notes: each said once; one that says something could not be seen makes
// the report uncertain. Notes to an unknown pid are dropped.
func TestPinNotes(t *testing.T) {
	g := newGen(tPID)
	tr := pinStart(t, g, Options{}, defaultExec(), defaultVMAs())
	tr.Note(tPID, "a", false)
	tr.Note(tPID, "a", false)
	r := tr.Snapshot(tPID)
	if len(r.Notes) != 1 || r.Notes[0] != "a" || r.Uncertain {
		t.Errorf("notes %q uncertain %v", r.Notes, r.Uncertain)
	}
	tr.Note(tPID, "b", true)
	if r := tr.Snapshot(tPID); len(r.Notes) != 2 || !r.Uncertain {
		t.Errorf("notes %q uncertain %v", r.Notes, r.Uncertain)
	}
	tr.Note(999, "c", true)
	if tr.Snapshot(999) != nil {
		t.Error("a note made an image")
	}
}

// A lost record for a pid not traced changes nothing and is not tracked;
// one for no pid makes every image uncertain.
func TestPinLostRecords(t *testing.T) {
	g := newGen(tPID)
	tr := pinStart(t, g, Options{}, defaultExec(), defaultVMAs())
	l := g.ev(events.KindLost)
	l.PID, l.Lost = 999, 3
	if ch := tr.Apply(l); ch.Tracked {
		t.Error("loss of an untraced pid tracked")
	}
	if r := tr.Snapshot(tPID); r.Uncertain || r.LostEvents != 0 {
		t.Errorf("another pid's loss: %+v", r)
	}
	empty := NewTracker(Options{})
	l.PID = 0
	if ch := empty.Apply(l); ch.Tracked {
		t.Error("a loss with no image tracked")
	}
}

// A cut-short snapshot: a memory event before the announced VMAs all came
// ends the snapshot, uncertain.
func TestPinSnapshotCutByAnEvent(t *testing.T) {
	g := newGen(tPID)
	tr := NewTracker(Options{})
	evs := g.exec(defaultExec(), defaultVMAs())
	applyAll(tr, evs[:2]...) // the exec and one of three VMAs
	ch := tr.Apply(g.anon(0, pinPage, tStartBrk+32*pinMiB))
	if !ch.SnapshotReady {
		t.Error("the snapshot was not ended by the event")
	}
	if ch.NewSqueezer == nil {
		t.Error("the event after the cut snapshot was not judged")
	}
	r := tr.Snapshot(tPID)
	if !r.Uncertain {
		t.Error("cut-short snapshot not uncertain")
	}
}

// munmap of the middle of a mapping leaves two (do_vmi_munmap splits the
// VMA): the lower part bounds the heap, and each part can go on its own.
func TestPinMunmapMiddle(t *testing.T) {
	g := newGen(tPID)
	tr := pinStart(t, g, Options{}, defaultExec(), defaultVMAs())
	a := uint64(tStartBrk + 32*pinMiB)
	tr.Apply(g.mmap(0, 4*pinPage, protR, 0x02, "/f", 0, a))
	tr.Apply(g.munmap(a+pinPage, 2*pinPage))
	r := tr.Snapshot(tPID)
	if b := r.BoundedBy; b == nil || b.Start != a || b.End != a+pinPage || r.BrkHeadroom != 32*pinMiB {
		t.Errorf("after a hole: bounded by %+v headroom %#x", b, r.BrkHeadroom)
	}
	equalLines(t, "after a hole", layoutOf(t, tr, tPID), []string{
		"12000000-12001000 r--p /f@0",
		"12003000-12004000 r--p /f@3000",
	})
	tr.Apply(g.munmap(a, pinPage))
	r = tr.Snapshot(tPID)
	if b := r.BoundedBy; b == nil || b.Start != a+3*pinPage || b.End != a+4*pinPage || b.Offset != 0x3000 {
		t.Errorf("lower part gone: bounded by %+v", b)
	}
	// Many holes in many mappings: every other page of 300 one-page-apart
	// mappings, then the layout is what is left, in order.
	base := uint64(0x7e0000000000)
	for i := range uint64(300) {
		tr.Apply(g.mmap(0, 3*pinPage, protR, 0x02, "/g", 0, base+i*4*pinPage))
	}
	for i := range uint64(300) {
		tr.Apply(g.munmap(base+i*4*pinPage+pinPage, pinPage))
	}
	var want []string
	for i := range uint64(300) {
		s := base + i*4*pinPage
		want = append(want,
			hexRange(s, s+pinPage)+" r--p /g@0",
			hexRange(s+2*pinPage, s+3*pinPage)+" r--p /g@2000")
	}
	got := layoutOf(t, tr, tPID)
	equalLines(t, "many holes", got[1:], want) // got[0] is the part of /f
}

func hexRange(a, b uint64) string { return hex(a)[2:] + "-" + hex(b)[2:] }

// Where personality calls are not traced (--lock-path), a personality at
// exec is never called "inherited": a call just before exec could have set
// it. A default personality still is.
func TestPersonaSourceWhenCallsUnseen(t *testing.T) {
	for _, c := range []struct {
		unseen  bool
		persona uint32
		want    string
	}{
		{false, addrCompatLayout, "inherited"},
		{true, addrCompatLayout, personaUnseen},
		{true, 0, "inherited"},
	} {
		g := newGen(tPID)
		tr := NewTracker(Options{PersonaCallsUnseen: c.unseen})
		x := defaultExec()
		x.Personality = c.persona
		if c.persona != 0 {
			x.MmapBase = tLegacy
		}
		applyAll(tr, g.exec(x, defaultVMAs())...)
		if r := tr.Snapshot(tPID); r.PersonalitySource != c.want {
			t.Errorf("unseen %v persona %#x: source %q, want %q", c.unseen, c.persona, r.PersonalitySource, c.want)
		}
	}
}
