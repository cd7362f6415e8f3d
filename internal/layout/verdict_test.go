package layout

import (
	"testing"

	"github.com/mmtrace/mmtrace/internal/events"
)

func TestSqueezerStaysWhenACloserMappingComes(t *testing.T) {
	g := newGen(tPID)
	tr := started(t, g)
	far, near, nearer := uint64(tStartBrk+200*mib), uint64(tStartBrk+32*mib), uint64(tStartBrk+16*mib)

	ch := tr.Apply(g.mmap(far, page, protR, 0x02, "/etc/passwd", 0, far))
	if ch.NewSqueezer != nil || ch.Headroom != 200*mib || !ch.HeadroomChanged {
		t.Fatalf("far mapping: squeezer %+v headroom %#x changed %v", ch.NewSqueezer, ch.Headroom, ch.HeadroomChanged)
	}
	ch = tr.Apply(g.mmap(near, page, protR, 0x02, "/etc/group", 0, near))
	squeezeSeq := g.seq
	if ch.NewSqueezer == nil || ch.NewSqueezer.Start != near || ch.NewSqueezer.Headroom != 32*mib ||
		ch.NewSqueezer.Placement != PlacementHint || ch.NewSqueezer.Path != "/etc/group" || ch.NewSqueezer.Seq != squeezeSeq {
		t.Fatalf("near mapping: squeezer %+v", ch.NewSqueezer)
	}
	if !ch.HeadroomChanged {
		t.Error("crossing the threshold should be a headroom change")
	}
	ch = tr.Apply(g.anon(0, page, nearer)) // top-down ran into the heap
	if ch.NewSqueezer != nil {
		t.Errorf("a later, closer mapping made a new squeezer: %+v", ch.NewSqueezer)
	}
	if ch.Headroom != 16*mib || !ch.HeadroomChanged {
		t.Errorf("headroom %#x changed %v, want 16 MiB, true", ch.Headroom, ch.HeadroomChanged)
	}
	// 16 MiB - 4 KiB falls in the next power-of-two bucket down; 16 MiB - 8 KiB
	// is in the same one.
	if ch = tr.Apply(g.brk(tStartBrk+page, tStartBrk+page)); !ch.HeadroomChanged {
		t.Error("headroom 16 MiB - 4 KiB: not a change")
	}
	if ch = tr.Apply(g.brk(tStartBrk+2*page, tStartBrk+2*page)); ch.HeadroomChanged {
		t.Error("headroom 16 MiB - 8 KiB: a change")
	}

	r := tr.Snapshot(tPID)
	if r.Squeezer == nil || r.Squeezer.Start != near || r.Squeezer.Headroom != 32*mib {
		t.Errorf("report squeezer %+v, want the 32 MiB one", r.Squeezer)
	}
	if r.BoundedBy == nil || r.BoundedBy.Start != nearer || r.BoundedBy.Placement != PlacementTopDown {
		t.Errorf("bounded by %+v, want the top-down mapping at %#x", r.BoundedBy, nearer)
	}
	if r.BrkHeadroom != 16*mib-2*page {
		t.Errorf("headroom %#x", r.BrkHeadroom)
	}
	// Unmapping the squeezer does not unmake it.
	applyAll(tr, g.munmap(near, page), g.munmap(nearer, page))
	if r := tr.Snapshot(tPID); r.Squeezer == nil || r.Squeezer.Start != near || r.BoundedBy.Start != far {
		t.Errorf("after munmap: squeezer %+v bounded by %+v", r.Squeezer, r.BoundedBy)
	}
}

func TestSqueezeThresholdOption(t *testing.T) {
	g := newGen(tPID)
	tr := NewTracker(Options{SqueezeThreshold: 8 * mib})
	applyAll(tr, g.exec(defaultExec(), defaultVMAs())...)
	if ch := tr.Apply(g.anon(0, page, tStartBrk+32*mib)); ch.NewSqueezer != nil {
		t.Errorf("32 MiB under an 8 MiB threshold squeezed: %+v", ch.NewSqueezer)
	}
	if ch := tr.Apply(g.anon(0, page, tStartBrk+4*mib)); ch.NewSqueezer == nil {
		t.Error("4 MiB under an 8 MiB threshold did not squeeze")
	}
}

func TestSqueezedAtExec(t *testing.T) {
	// A 32-bit legacy image as in the seed incident: ld.so right above the heap.
	g := newGen(tPID)
	g.abi = events.ABI32
	tr := NewTracker(Options{})
	x := defaultExec()
	x.StartBrk, x.Brk = 0x7ac000, 0x7ac000
	x.MmapCompatBase, x.MmapCompatLegacyBase = 0x55555000, 0x55555000
	x.Personality = addrCompatLayout | 0x8
	ch := applyAll(tr, g.exec(x, []events.VMA{
		{Start: 0x400000, End: 0x7ab000, Flags: vmRead | vmExec, Path: "/bin/bash"},
		{Start: 0x886000, End: 0x8a0000, Flags: vmRead | vmExec, Path: "/lib/ld-linux.so.2"},
	})...)
	if ch.NewSqueezer == nil || ch.NewSqueezer.Start != 0x886000 || ch.NewSqueezer.Placement != PlacementExec {
		t.Fatalf("squeezer %+v, want ld.so placed by exec", ch.NewSqueezer)
	}
	if ch.NewSqueezer.Headroom != 0x886000-0x7ac000 {
		t.Errorf("headroom %#x", ch.NewSqueezer.Headroom)
	}
	// The legacy base sits above the break but beyond the mapping: the mapping bounds.
	if r := tr.Snapshot(tPID); r.BoundedBy == nil || r.Layout != "legacy" || r.MmapBase != 0x55555000 {
		t.Errorf("bounded by %+v layout %q base %#x", r.BoundedBy, r.Layout, r.MmapBase)
	}
}

func TestHeadroomToTheMmapBase(t *testing.T) {
	// Bottom-up mappings go above the base: the room up to it is the heap's.
	g := newGen(tPID)
	tr := NewTracker(Options{})
	x := defaultExec()
	x.MmapBase, x.MmapLegacyBase = tStartBrk+100*mib, tStartBrk+100*mib
	applyAll(tr, g.exec(x, defaultVMAs())...)
	ch := tr.Apply(g.anon(0, page, tStartBrk+100*mib))
	if ch.Placement != PlacementBottomUp || ch.Headroom != 100*mib || ch.NewSqueezer != nil {
		t.Errorf("placement %q headroom %#x squeezer %+v", ch.Placement, ch.Headroom, ch.NewSqueezer)
	}
	r := tr.Snapshot(tPID)
	if r.BoundedBy == nil || r.BoundedBy.Start != tStartBrk+100*mib {
		t.Errorf("bounded by %+v", r.BoundedBy)
	}
	applyAll(tr, g.munmap(tStartBrk+100*mib, page))
	if r := tr.Snapshot(tPID); r.BoundedBy != nil || r.BrkHeadroom != 100*mib {
		t.Errorf("bounded by %+v headroom %#x, want the mmap base (nil) at 100 MiB", r.BoundedBy, r.BrkHeadroom)
	}
}

func TestPlacements(t *testing.T) {
	const anonPriv = 0x02 | mapAnonymous
	tests := []struct {
		name   string
		legacy bool
		ev     func(g *gen) *events.Event
		want   Placement
	}{
		{"fixed", false, func(g *gen) *events.Event { return g.mmap(A, page, protR, anonPriv|mapFixed, "", 0, A) }, PlacementFixed},
		{"fixed-noreplace", false, func(g *gen) *events.Event { return g.mmap(A, page, protR, anonPriv|mapFixedNoReplace, "", 0, A) }, PlacementFixedNoReplace},
		{"hint honoured", false, func(g *gen) *events.Event { return g.mmap(A, page, protR, anonPriv, "", 0, A) }, PlacementHint},
		{"unaligned hint honoured", false, func(g *gen) *events.Event { return g.mmap(A+1, page, protR, anonPriv, "", 0, A+page) }, PlacementHint},
		{"hint ignored", false, func(g *gen) *events.Event { return g.mmap(A, page, protR, anonPriv, "", 0, B) }, PlacementHintIgnored},
		{"top-down", false, func(g *gen) *events.Event { return g.mmap(0, page, protR, anonPriv, "", 0, A) }, PlacementTopDown},
		{"bottom-up", true, func(g *gen) *events.Event { return g.mmap(0, page, protR, anonPriv, "", 0, A) }, PlacementBottomUp},
		{"mremap move", false, func(g *gen) *events.Event { return g.mremap(tText, page, 2*page, mremapMayMove, 0, A) }, PlacementMremap},
		{"mremap grow", false, func(g *gen) *events.Event {
			return g.mremap(tStack, tStackEnd-tStack, tStackEnd-tStack+page, 0, 0, tStack)
		}, PlacementMremap},
		{"mremap shrink", false, func(g *gen) *events.Event { return g.mremap(tStack, tStackEnd-tStack, page, 0, 0, tStack) }, PlacementNone},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newGen(tPID)
			tr := NewTracker(Options{})
			x := defaultExec()
			if tc.legacy {
				x.MmapBase = x.MmapLegacyBase
			}
			applyAll(tr, g.exec(x, defaultVMAs())...)
			e := tc.ev(g)
			ch := tr.Apply(e)
			if ch.Placement != tc.want {
				t.Errorf("change placement %q, want %q", ch.Placement, tc.want)
			}
			if tc.want == PlacementNone {
				return
			}
			// The model's own regions: the report's VMAs merge a grown
			// range into the range it grew from.
			var found bool
			for _, r := range tr.images[tPID].r {
				if r.place.Placement() == tc.want && r.seq == e.Seq {
					found = true
				}
			}
			if !found {
				t.Errorf("no mapping with placement %q and seq %d in the layout", tc.want, e.Seq)
			}
		})
	}
}

func TestHeapAndProcPlacements(t *testing.T) {
	g := newGen(tPID)
	tr := started(t, g)
	applyAll(tr, g.brk(tStartBrk+page, tStartBrk+page))
	var heap *Mapping
	for _, m := range tr.Snapshot(tPID).VMAs {
		if m.Path == "[heap]" {
			heap = &m
		}
	}
	if heap == nil || heap.Placement != PlacementBrk || heap.Seq != g.seq {
		t.Errorf("heap %+v, want placement brk seq %d", heap, g.seq)
	}
	tr.SeedFromProc(ProcImage{PID: 7, Maps: []Mapping{{Start: A, End: A + page, Prot: "r--p", Path: "/x"}}})
	if m := tr.Snapshot(7).VMAs[0]; m.Placement != PlacementProc {
		t.Errorf("seeded mapping placement %q", m.Placement)
	}
}

func TestLayoutDecision(t *testing.T) {
	const compat, compatLegacy = 0xf7fc0000, 0x55555000
	tests := []struct {
		name         string
		abi          events.ABI
		opts         Options
		edit         func(x *events.Exec)
		layout, why  string
		base         uint64
		personaCall  bool
		personaQuery bool
		source       string
	}{
		{name: "64-bit default", abi: events.ABI64, layout: "flexible", why: "default: top-down below the stack", base: tMmapBase, source: "inherited"},
		{name: "64-bit unlimited stack stays flexible", abi: events.ABI64,
			edit:   func(x *events.Exec) { x.RlimStackCur = rlimInfinity },
			layout: "flexible", why: "default: top-down below the stack; RLIMIT_STACK unlimited: base lowered", base: tMmapBase, source: "inherited"},
		{name: "64-bit setarch -L", abi: events.ABI64,
			edit:   func(x *events.Exec) { x.MmapBase = tLegacy; x.Personality = addrCompatLayout },
			layout: "legacy", why: "ADDR_COMPAT_LAYOUT personality (0x200000)", base: tLegacy,
			personaCall: true, source: "personality(0x200000) at seq 1 before exec"},
		{name: "a personality query is not a cause", abi: events.ABI64,
			edit:   func(x *events.Exec) { x.MmapBase = tLegacy; x.Personality = addrCompatLayout },
			layout: "legacy", why: "ADDR_COMPAT_LAYOUT personality (0x200000)", base: tLegacy,
			personaQuery: true, source: "inherited"},
		{name: "64-bit sysctl", abi: events.ABI64, opts: Options{LegacyVALayout: true},
			edit:   func(x *events.Exec) { x.MmapBase = tLegacy },
			layout: "legacy", why: legacySysctlWhy, base: tLegacy, source: "inherited"},
		// x86's mmap_is_legacy() on 5.10+ reads the personality bit and
		// the sysctl only: with neither bit set, a legacy base means the
		// sysctl was 1 at that exec, whatever RLIMIT_STACK was, and
		// whatever mmtrace read of the sysctl when it started.
		{name: "64-bit unlimited stack, legacy base", abi: events.ABI64,
			edit:   func(x *events.Exec) { x.MmapBase = tLegacy; x.RlimStackCur = rlimInfinity },
			layout: "legacy", why: legacySysctlWhy, base: tLegacy, source: "inherited"},
		{name: "32-bit flexible uses the compat bases", abi: events.ABI32,
			edit: func(x *events.Exec) {
				x.MmapBase = tLegacy // the 64-bit pair says legacy; it does not apply
				x.MmapCompatBase, x.MmapCompatLegacyBase, x.Personality = compat, compatLegacy, 0x8
			},
			layout: "flexible", why: "default: top-down below the stack", base: compat, source: "inherited"},
		{name: "32-bit setarch i386 -L", abi: events.ABI32,
			edit: func(x *events.Exec) {
				x.MmapCompatBase, x.MmapCompatLegacyBase, x.Personality = compatLegacy, compatLegacy, addrCompatLayout|0x8
			},
			layout: "legacy", why: "ADDR_COMPAT_LAYOUT personality (0x200008)", base: compatLegacy, source: "inherited"},
		{name: "32-bit on a kernel without compat bases", abi: events.ABI32,
			edit:   func(x *events.Exec) { x.MmapBase = tLegacy; x.Personality = addrCompatLayout },
			layout: "legacy", why: "ADDR_COMPAT_LAYOUT personality (0x200000)", base: tLegacy, source: "inherited"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newGen(tPID)
			g.abi = tc.abi
			tr := NewTracker(tc.opts)
			if tc.personaCall || tc.personaQuery {
				// setarch runs as a traced image, calls personality, then execs.
				p := g.ev(events.KindPersonality)
				p.Addr = addrCompatLayout
				if tc.personaQuery {
					p.Addr = personaQuery
				}
				if ch := tr.Apply(p); ch.Tracked {
					t.Error("personality of an unknown pid reported as tracked")
				}
			}
			x := defaultExec()
			if tc.edit != nil {
				tc.edit(&x)
			}
			applyAll(tr, g.exec(x, defaultVMAs())...)
			r := tr.Snapshot(tPID)
			if r.Layout != tc.layout || r.LayoutReason != tc.why || r.MmapBase != tc.base || r.PersonalitySource != tc.source {
				t.Errorf("got %q %q %#x %q\nwant %q %q %#x %q", r.Layout, r.LayoutReason, r.MmapBase, r.PersonalitySource,
					tc.layout, tc.why, tc.base, tc.source)
			}
			if r.ABI != tc.abi || r.Personality != x.Personality {
				t.Errorf("abi %v personality %#x", r.ABI, r.Personality)
			}
		})
	}
}

func TestReadImpliesExec(t *testing.T) {
	g := newGen(tPID)
	tr := NewTracker(Options{})
	x := defaultExec()
	x.Personality = readImpliesExec
	applyAll(tr, g.exec(x, defaultVMAs())...)
	applyAll(tr, g.anon(0, page, A), g.mmap(0, page, protW, 0x02|mapAnonymous, "", 0, B), g.brk(tStartBrk+page, tStartBrk+page))
	equalLines(t, "layout", layoutOf(t, tr, tPID), []string{
		"10000000-10001000 rwxp [heap]",
		"7e0000000000-7e0000001000 rwxp",
		"7e0000100000-7e0000101000 -w-p",
	})
}

func TestForkCopyAndSilentDrop(t *testing.T) {
	g := newGen(tPID)
	tr := started(t, g)
	applyAll(tr, g.anon(0, page, A))

	fork := func(child uint32) {
		f := g.ev(events.KindFork)
		f.Child, f.Comm = child, "t"
		if ch := tr.Apply(f); !ch.Tracked {
			t.Fatal("fork of a traced process not tracked")
		}
	}
	childEv := func(child uint32, e *events.Event) *events.Event {
		e.PID, e.TID = child, child
		return e
	}

	// A child that only exits: no report.
	fork(201)
	if r := tr.Snapshot(201); r == nil || len(r.VMAs) != len(tr.Snapshot(tPID).VMAs) || r.PPID != tPID || r.ParentComm != "t" {
		t.Fatalf("child copy %+v", r)
	}
	if ch := tr.Apply(childEv(201, g.ev(events.KindExit))); !ch.Tracked || len(ch.Ended) != 0 {
		t.Errorf("untouched fork exit: tracked %v ended %d", ch.Tracked, len(ch.Ended))
	}
	if tr.Snapshot(201) != nil {
		t.Error("exited child still live")
	}

	// A child that execs at once: the copy is dropped, the new image starts.
	fork(202)
	evs := g.exec(defaultExec(), defaultVMAs())
	for _, e := range evs {
		childEv(202, e)
	}
	if ch := applyAll(tr, evs[0]); len(ch.Ended) != 0 {
		t.Errorf("exec after untouched fork ended %d images", len(ch.Ended))
	}
	applyAll(tr, evs[1:]...)
	if r := tr.Snapshot(202); r == nil || r.ExecSeq != evs[0].Seq {
		t.Errorf("exec'd child %+v", r)
	}

	// A child that maps memory of its own is reported, with the parent's
	// layout and its squeezer.
	squeezer := g.anon(0, page, tStartBrk+mib)
	applyAll(tr, squeezer)
	fork(203)
	applyAll(tr, childEv(203, g.anon(0, page, B)))
	ch := tr.Apply(childEv(203, g.ev(events.KindExit)))
	if len(ch.Ended) != 1 {
		t.Fatalf("child with its own mmap: %d reports", len(ch.Ended))
	}
	r := ch.Ended[0]
	if r.PID != 203 || r.Ended != "exit" || r.EndSeq != g.seq {
		t.Errorf("report pid %d ended %q endseq %d", r.PID, r.Ended, r.EndSeq)
	}
	var seenA, seenB bool
	for _, m := range r.VMAs {
		seenA = seenA || m.Start == A
		seenB = seenB || m.Start == B
	}
	if r.Squeezer == nil || r.Squeezer.Seq != squeezer.Seq {
		t.Errorf("child squeezer %+v, want the parent's (seq %d)", r.Squeezer, squeezer.Seq)
	}
	if !seenA || !seenB {
		t.Errorf("child layout lacks the parent's (%v) or its own (%v) mapping", seenA, seenB)
	}
	if parent := tr.Snapshot(tPID); len(parent.VMAs) != len(r.VMAs)-1 {
		t.Errorf("the child's mmap leaked into the parent")
	}
}

func TestThreadsFeedOneImage(t *testing.T) {
	g := newGen(tPID)
	tr := started(t, g)
	e := g.anon(0, page, A)
	e.TID = tPID + 1
	if ch := tr.Apply(e); !ch.Tracked {
		t.Fatal("thread event not tracked")
	}
	equalLines(t, "layout", layoutOf(t, tr, tPID), []string{"7e0000000000-7e0000001000 rw-p"})
}

func TestUnknownPIDIsIgnored(t *testing.T) {
	g := newGen(tPID)
	tr := started(t, g)
	other := newGen(999)
	for _, e := range []*events.Event{other.anon(0, page, A), other.brk(0, 1), other.ev(events.KindExit), other.ev(events.KindFork)} {
		if ch := tr.Apply(e); ch.Tracked {
			t.Errorf("%v of unknown pid tracked", e.Kind)
		}
	}
	if ch := tr.Apply(nil); ch.Tracked {
		t.Error("nil event tracked")
	}
	if tr.Snapshot(999) != nil {
		t.Error("unknown pid got an image")
	}
}

func TestLostEvents(t *testing.T) {
	g := newGen(tPID)
	tr := started(t, g)
	g2 := newGen(tPID + 1)
	applyAll(tr, g2.exec(defaultExec(), defaultVMAs())...)
	g3 := newGen(tPID + 2)
	applyAll(tr, g3.exec(defaultExec(), defaultVMAs())...)

	l := g.ev(events.KindLost)
	l.Lost = 5
	if ch := tr.Apply(l); !ch.Tracked {
		t.Error("lost for a traced pid not tracked")
	}
	all := g.ev(events.KindLost)
	all.PID, all.Lost = 0, 2
	tr.Apply(all)

	want := map[uint32]uint64{tPID: 7, tPID + 1: 2, tPID + 2: 2}
	for _, r := range tr.Finish() {
		if r.LostEvents != want[r.PID] || !r.Uncertain || r.Ended != "stopped" {
			t.Errorf("pid %d: lost %d uncertain %v ended %q, want %d true stopped", r.PID, r.LostEvents, r.Uncertain, r.Ended, want[r.PID])
		}
	}
}

func TestEndings(t *testing.T) {
	g := newGen(tPID)
	tr := started(t, g)
	// Exec again: the first image ends with "exec".
	evs := g.exec(defaultExec(), defaultVMAs())
	ch := tr.Apply(evs[0])
	if len(ch.Ended) != 1 || ch.Ended[0].Ended != "exec" || ch.Ended[0].EndSeq != evs[0].Seq || ch.Ended[0].ExecSeq != 1 {
		t.Fatalf("exec ended %+v", ch.Ended)
	}
	applyAll(tr, evs[1:]...)
	g2 := newGen(50)
	applyAll(tr, g2.exec(defaultExec(), defaultVMAs())...)
	reps := tr.Finish()
	if len(reps) != 2 || reps[0].PID != 50 || reps[1].PID != tPID || reps[0].EndSeq != 0 {
		t.Errorf("finish: %d reports", len(reps))
	}
	if len(tr.Finish()) != 0 || tr.Snapshot(tPID) != nil {
		t.Error("images live after Finish")
	}
}

// When the kernel reported its search for free space, the search says
// which allocator ran, whatever the image's layout suggests: a 32-bit
// syscall in a 64-bit flexible image can still search bottom-up.
func TestPlacementFromKernelSearch(t *testing.T) {
	const A = 0x7f0000000000
	const anonPriv = 0x02 | mapAnonymous
	for _, c := range []struct {
		name     string
		hint     uint64
		flags    uint32
		searches uint32
		want     Placement
	}{
		{"search down", 0, vmUnmappedAreaTopDown, 1, PlacementTopDown},
		{"search up", 0, 0, 1, PlacementBottomUp},
		{"hint taken without a search", A, 0, 0, PlacementHint},
		{"hint searched past", A + page, vmUnmappedAreaTopDown, 1, PlacementHintIgnored},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := newGen(tPID)
			tr := started(t, g)
			ev := g.mmap(c.hint, page, protR, anonPriv, "", 0, A)
			ev.Searches, ev.SearchFlags = c.searches, c.flags
			if ch := tr.Apply(ev); ch.Placement != c.want {
				t.Errorf("placement %q, want %q", ch.Placement, c.want)
			}
		})
	}
}

// legacySysctlWhy is the reason given for a legacy layout without the
// ADDR_COMPAT_LAYOUT personality: the only other cause on x86.
const legacySysctlWhy = "vm.legacy_va_layout=1 at exec (the personality has no ADDR_COMPAT_LAYOUT)"
