package layout

import "testing"

// Why a brk failed, as mm/mmap.c's brk() decides it, and the room brk can
// really use (its check: newbrk + PAGE_SIZE <= vm_start_gap(next)).
func TestBrkFailureCauses(t *testing.T) {
	above := uint64(tStartBrk + 16*page) // a mapping 64 KiB above the heap's start
	for _, c := range []struct {
		name      string
		req, ret  uint64
		cause     BrkCause
		blockedBy uint64 // start of the mapping blamed, 0: none
	}{
		// Into the mapping: blocked by it.
		{"into a mapping", tStartBrk + 32*page, tStartBrk, BrkBlocked, above},
		// Ending exactly one page below it is allowed by the kernel, so a
		// refusal there is a limit (RLIMIT_DATA), not the mapping.
		{"a page below a mapping", above - page, tStartBrk, BrkLimit, 0},
		// Ending on the mapping's first byte leaves no page: blocked.
		{"up to a mapping", above, tStartBrk, BrkBlocked, above},
		// Past TASK_SIZE (brk(1<<62)): no mapping can be the cause,
		// although one lies between the heap and the request.
		{"beyond TASK_SIZE", 1 << 62, tStartBrk, BrkBeyondSpace, 0},
		// Below start_brk: refused, the old break returned (above the
		// request).
		{"below start_brk", tText, tStartBrk, BrkBelowStart, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := newGen(tPID)
			tr := started(t, g)
			tr.Apply(g.anon(above, page, above))
			f := tr.Apply(g.brk(c.req, c.ret)).BrkFailure
			if f == nil {
				t.Fatalf("brk(%#x) = %#x is not a failure", c.req, c.ret)
			}
			var got uint64
			if f.BlockedBy != nil {
				got = f.BlockedBy.Start
			}
			if f.Cause != c.cause || got != c.blockedBy {
				t.Errorf("cause %q blocked by %#x, want %q %#x (%s)", f.Cause, got, c.cause, c.blockedBy, f.Why())
			}
		})
	}
	// A shrink that worked, and growth that worked, are no failures.
	g := newGen(tPID)
	tr := started(t, g)
	tr.Apply(g.brk(tStartBrk+4*page, tStartBrk+4*page))
	if f := tr.Apply(g.brk(tStartBrk+page, tStartBrk+page)).BrkFailure; f != nil {
		t.Errorf("a shrink that worked is a failure: %+v", f)
	}
}

func TestBrkUsableHeadroom(t *testing.T) {
	heapTop := uint64(tStartBrk)
	for _, c := range []struct {
		name   string
		next   func(g *gen, tr *Tracker)
		raw    uint64
		usable uint64
	}{
		// The next mapping 1 MiB up: brk may end one page below it.
		{"a mapping above", func(g *gen, tr *Tracker) { tr.Apply(g.anon(heapTop+mib, page, heapTop+mib)) }, mib, mib - page},
		// A grows-down mapping 2 MiB up: a page and the 1 MiB stack guard
		// gap (stack_guard_gap, 256 pages) stay free.
		{"a stack above", func(g *gen, tr *Tracker) {
			tr.Apply(g.mmap(heapTop+2*mib, page, protR|protW, 0x02|mapAnonymous|mapGrowsDown, "", 0, heapTop+2*mib))
		}, 2 * mib, 2*mib - page - mib},
		// Closer than the gap: nothing usable, though the raw gap is not 0.
		{"a stack too close", func(g *gen, tr *Tracker) {
			tr.Apply(g.mmap(heapTop+16*page, page, protR|protW, 0x02|mapAnonymous|mapGrowsDown, "", 0, heapTop+16*page))
		}, 16 * page, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := newGen(tPID)
			tr := started(t, g)
			c.next(g, tr)
			rep := tr.Snapshot(tPID)
			if rep.BrkHeadroom != c.raw || rep.BrkUsable != c.usable || rep.BrkUsableWhy == "" {
				t.Errorf("headroom %#x usable %#x (%q), want %#x and %#x", rep.BrkHeadroom, rep.BrkUsable, rep.BrkUsableWhy, c.raw, c.usable)
			}
		})
	}
}
