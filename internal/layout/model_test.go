package layout

import (
	"testing"

	"github.com/mmtrace/mmtrace/internal/events"
)

const (
	A = 0x7e0000000000 // where the tests map things
	B = 0x7e0000100000 // a second, distant place
)

func TestModelOperations(t *testing.T) {
	const rw, ro, none = protR | protW, protR, 0
	const priv, shared, fixed = 0x02, mapShared, mapFixed
	tests := []struct {
		name string
		ops  func(g *gen) []*events.Event
		want []string
	}{
		{
			name: "munmap punches a hole",
			ops: func(g *gen) []*events.Event {
				return []*events.Event{
					g.anon(0, 4*page, A),
					g.munmap(A+page, page),
				}
			},
			want: []string{"7e0000000000-7e0000001000 rw-p", "7e0000002000-7e0000004000 rw-p"},
		},
		{
			name: "munmap of a file keeps offsets of the right part",
			ops: func(g *gen) []*events.Event {
				return []*events.Event{
					g.mmap(0, 4*page, ro, priv, "/lib/x.so", 0x10000, A),
					g.munmap(A+page, page),
				}
			},
			want: []string{
				"7e0000000000-7e0000001000 r--p /lib/x.so@10000",
				"7e0000002000-7e0000004000 r--p /lib/x.so@12000",
			},
		},
		{
			name: "munmap across a hole and a length that is not a page multiple",
			ops: func(g *gen) []*events.Event {
				return []*events.Event{
					g.anon(0, page, A),
					g.anon(0, 2*page, A+2*page),
					g.munmap(A, 3*page+1),
				}
			},
			want: nil,
		},
		{
			name: "failed munmap changes nothing",
			ops: func(g *gen) []*events.Event {
				e := g.munmap(A+1, page)
				e.Ret = -22
				return []*events.Event{g.anon(0, page, A), e}
			},
			want: []string{"7e0000000000-7e0000001000 rw-p"},
		},
		{
			name: "mprotect in the middle splits in three",
			ops: func(g *gen) []*events.Event {
				return []*events.Event{
					g.anon(0, 4*page, A),
					g.mprotect(A+page, 2*page, ro, 0),
				}
			},
			want: []string{
				"7e0000000000-7e0000001000 rw-p",
				"7e0000001000-7e0000003000 r--p",
				"7e0000003000-7e0000004000 rw-p",
			},
		},
		{
			name: "mprotect at the start edge",
			ops: func(g *gen) []*events.Event {
				return []*events.Event{
					g.anon(0, 4*page, A),
					g.mprotect(A, page, none, 0),
				}
			},
			want: []string{"7e0000000000-7e0000001000 ---p", "7e0000001000-7e0000004000 rw-p"},
		},
		{
			name: "mprotect at the end edge, then back: one range again",
			ops: func(g *gen) []*events.Event {
				return []*events.Event{
					g.anon(0, 4*page, A),
					g.mprotect(A+3*page, page, protR|protX, 0),
					g.mprotect(A+3*page, page, rw, 0),
				}
			},
			want: []string{"7e0000000000-7e0000004000 rw-p"},
		},
		{
			name: "mprotect keeps shared and the file offset",
			ops: func(g *gen) []*events.Event {
				return []*events.Event{
					g.mmap(0, 2*page, rw, shared, "/tmp/f", 0, A),
					g.mprotect(A+page, page, ro, 0),
				}
			},
			want: []string{"7e0000000000-7e0000001000 rw-s /tmp/f@0", "7e0000001000-7e0000002000 r--s /tmp/f@1000"},
		},
		{
			name: "mprotect over a hole fails with ENOMEM after changing the part before it",
			ops: func(g *gen) []*events.Event {
				return []*events.Event{
					g.anon(0, 2*page, A),
					g.anon(0, 2*page, A+3*page),
					g.mprotect(A+page, 4*page, ro, -errnoENOMEM),
				}
			},
			want: []string{
				"7e0000000000-7e0000001000 rw-p",
				"7e0000001000-7e0000002000 r--p",
				"7e0000003000-7e0000005000 rw-p",
			},
		},
		{
			name: "mprotect failing with EACCES changes nothing",
			ops: func(g *gen) []*events.Event {
				return []*events.Event{g.anon(0, 2*page, A), g.mprotect(A, page, ro, -13)}
			},
			want: []string{"7e0000000000-7e0000002000 rw-p"},
		},
		{
			name: "MAP_FIXED over a file mapping and an anonymous one",
			ops: func(g *gen) []*events.Event {
				return []*events.Event{
					g.mmap(0, 4*page, ro, priv, "/lib/x.so", 0, A),
					g.anon(0, 2*page, A+4*page),
					g.mmap(A+3*page, 2*page, protR|protX, priv|fixed, "/lib/y.so", 0x3000, A+3*page),
				}
			},
			want: []string{
				"7e0000000000-7e0000003000 r--p /lib/x.so@0",
				"7e0000003000-7e0000005000 r-xp /lib/y.so@3000",
				"7e0000005000-7e0000006000 rw-p",
			},
		},
		{
			name: "shared anonymous memory is /dev/zero (deleted); private /dev/zero is anonymous",
			ops: func(g *gen) []*events.Event {
				return []*events.Event{
					g.mmap(0, page, rw, shared|mapAnonymous, "", 0, A),
					g.mmap(0, page, rw, priv, "/dev/zero", 0, B),
				}
			},
			want: []string{"7e0000000000-7e0000001000 rw-s /dev/zero (deleted)@0", "7e0000100000-7e0000101000 rw-p"},
		},
		{
			name: "failed mmap is ignored",
			ops: func(g *gen) []*events.Event {
				return []*events.Event{g.anon(0, page, uint64(1<<64-12))}
			},
			want: nil,
		},
		{
			name: "mremap shrinks",
			ops: func(g *gen) []*events.Event {
				return []*events.Event{g.anon(0, 4*page, A), g.mremap(A, 4*page, page, 0, 0, A)}
			},
			want: []string{"7e0000000000-7e0000001000 rw-p"},
		},
		{
			name: "mremap grows a file mapping in place",
			ops: func(g *gen) []*events.Event {
				return []*events.Event{
					g.mmap(0, 2*page, ro, priv, "/f", 0x1000, A),
					g.mremap(A, 2*page, 5*page, 0, 0, A),
				}
			},
			want: []string{"7e0000000000-7e0000005000 r--p /f@1000"},
		},
		{
			name: "mremap MAYMOVE moves, keeping each part's prot and offset",
			ops: func(g *gen) []*events.Event {
				return []*events.Event{
					g.mmap(0, 3*page, rw, priv, "/f", 0, A),
					g.mprotect(A+2*page, page, ro, 0),
					g.anon(0, page, A+3*page), // blocks growing in place
					g.mremap(A, 3*page, 4*page, mremapMayMove, 0, B),
				}
			},
			want: []string{
				"7e0000003000-7e0000004000 rw-p",
				"7e0000100000-7e0000102000 rw-p /f@0",
				"7e0000102000-7e0000104000 r--p /f@2000",
			},
		},
		{
			name: "mremap FIXED replaces the target and unmaps the source",
			ops: func(g *gen) []*events.Event {
				return []*events.Event{
					g.anon(0, 2*page, A),
					g.mmap(0, 4*page, ro, priv, "/f", 0, B),
					g.mremap(A, 2*page, 2*page, mremapMayMove|mremapFixed, B+page, int64(B+page)),
				}
			},
			want: []string{
				"7e0000100000-7e0000101000 r--p /f@0",
				"7e0000101000-7e0000103000 rw-p",
				"7e0000103000-7e0000104000 r--p /f@3000",
			},
		},
		{
			name: "mremap FIXED to a lower address with a shorter length",
			ops: func(g *gen) []*events.Event {
				return []*events.Event{
					g.mmap(0, 4*page, ro, priv, "/f", 0, B),
					g.mremap(B+page, 3*page, 2*page, mremapMayMove|mremapFixed, A, int64(A)),
				}
			},
			want: []string{
				"7e0000000000-7e0000002000 r--p /f@1000",
				"7e0000100000-7e0000101000 r--p /f@0",
			},
		},
		{
			name: "mremap DONTUNMAP leaves the old range mapped",
			ops: func(g *gen) []*events.Event {
				return []*events.Event{
					g.anon(0, 2*page, A),
					g.mremap(A, 2*page, 2*page, mremapMayMove|mremapDontUnmap, 0, int64(B)),
				}
			},
			want: []string{"7e0000000000-7e0000002000 rw-p", "7e0000100000-7e0000102000 rw-p"},
		},
		{
			name: "mremap with old_len 0 maps the same shared pages again",
			ops: func(g *gen) []*events.Event {
				return []*events.Event{
					g.mmap(0, 4*page, rw, shared, "/f", 0, A),
					g.mremap(A+page, 0, 2*page, mremapMayMove, 0, int64(B)),
				}
			},
			want: []string{"7e0000000000-7e0000004000 rw-s /f@0", "7e0000100000-7e0000102000 rw-s /f@1000"},
		},
		{
			name: "failed mremap is ignored",
			ops: func(g *gen) []*events.Event {
				return []*events.Event{g.anon(0, page, A), g.mremap(A, page, 2*page, 0, 0, -errnoENOMEM)}
			},
			want: []string{"7e0000000000-7e0000001000 rw-p"},
		},
		{
			name: "brk grows the heap, shrinks it, and a mapping next to it merges into [heap] as in /proc",
			ops: func(g *gen) []*events.Event {
				return []*events.Event{
					g.brk(0, tStartBrk),
					g.brk(tStartBrk+0x21000, tStartBrk+0x21000),
					g.brk(tStartBrk+0x30100, tStartBrk+0x30100),
					g.brk(tStartBrk+0x10000, tStartBrk+0x10000),
					g.anon(0, page, tStartBrk+0x20000),
				}
			},
			want: []string{"10000000-10010000 rw-p [heap]", "10020000-10021000 rw-p"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newGen(tPID)
			tr := started(t, g)
			applyAll(tr, tc.ops(g)...)
			equalLines(t, "layout", layoutOf(t, tr, tPID), tc.want)
		})
	}
}

func TestExecSnapshot(t *testing.T) {
	g := newGen(tPID)
	tr := NewTracker(Options{})
	x := defaultExec()
	x.StartBrk, x.Brk = tText+2*page, tText+2*page // brk not randomised: right after data
	vmas := append(defaultVMAs(),
		events.VMA{Start: 0x7ff000100000, End: 0x7ff000102000, Flags: vmRead | vmExec, Path: "[vdso]", PgOff: 99},
		events.VMA{Start: 0x7ff000200000, End: 0x7ff000201000, Flags: vmRead | vmMayShare, Path: "/dev/shm/x", PgOff: 2})
	vmas = append(vmas[:2], append([]events.VMA{{Start: tText + 2*page, End: tText + 3*page, Flags: vmRead | vmWrite, PgOff: 0x402}}, vmas[2:]...)...)
	evs := g.exec(x, vmas)
	for i, e := range evs {
		ch := tr.Apply(e)
		if !ch.Tracked {
			t.Errorf("event %d not tracked", i)
		}
		if ch.SnapshotReady != (i == len(evs)-1) {
			t.Errorf("event %d: SnapshotReady %v", i, ch.SnapshotReady)
		}
	}
	r := tr.Snapshot(tPID)
	equalLines(t, "exec layout", maps(r.VMAs), []string{
		"400000-401000 r-xp /bin/t@0",
		"401000-402000 rw-p /bin/t@1000",
		"402000-403000 rw-p [heap]", // the bss ends at start_brk: /proc calls it [heap]
		"7ff000000000-7ff000021000 rw-p [stack]",
		"7ff000100000-7ff000102000 r-xp [vdso]",
		"7ff000200000-7ff000201000 r--s /dev/shm/x@2000",
	})
	for _, m := range r.VMAs {
		if m.Placement != PlacementExec || m.Seq != 0 {
			t.Errorf("%x: placement %q seq %d, want exec 0", m.Start, m.Placement, m.Seq)
		}
	}
	if r.Uncertain || r.Ended != "live" || r.ExecSeq != 1 {
		t.Errorf("uncertain %v ended %q execseq %d", r.Uncertain, r.Ended, r.ExecSeq)
	}
}

func TestExecWithoutVMAsIsReadyAtOnce(t *testing.T) {
	g := newGen(tPID)
	tr := NewTracker(Options{})
	x := defaultExec()
	x.VMAsKnown = false
	ch := applyAll(tr, g.exec(x, nil)...)
	if !ch.SnapshotReady {
		t.Error("exec without VMAs: not SnapshotReady")
	}
	if r := tr.Snapshot(tPID); !r.Uncertain {
		t.Error("image without a VMA snapshot should be uncertain")
	}
}

func TestSnapshotMarkedCutShort(t *testing.T) {
	g := newGen(tPID)
	tr := NewTracker(Options{})
	evs := g.exec(defaultExec(), defaultVMAs())
	evs[len(evs)-1].VMA.Total = 0
	if ch := applyAll(tr, evs...); !ch.SnapshotReady {
		t.Error("not ready after the announced VMAs")
	}
	if r := tr.Snapshot(tPID); !r.Uncertain {
		t.Error("a VMA with Total 0 should make the image uncertain")
	}
}

func TestCutShortSnapshot(t *testing.T) {
	g := newGen(tPID)
	tr := NewTracker(Options{})
	evs := g.exec(defaultExec(), defaultVMAs())
	applyAll(tr, evs[:2]...) // exec and the first VMA only
	ch := tr.Apply(g.anon(0, page, A))
	if !ch.SnapshotReady {
		t.Error("the event after a cut-short snapshot should complete it")
	}
	if r := tr.Snapshot(tPID); !r.Uncertain || len(r.VMAs) != 2 {
		t.Errorf("uncertain %v, %d VMAs; want true, 2", r.Uncertain, len(r.VMAs))
	}
}

func TestBrk(t *testing.T) {
	const top = tStartBrk + 0x1000000 // a mapping sits here
	tests := []struct {
		name     string
		req, ret uint64
		stack    bool // the blocking mapping is a MAP_GROWSDOWN stack
		failed   bool
		blocker  uint64 // start of BlockedBy, 0 for none
		heapEnd  uint64
		headroom uint64
	}{
		{name: "grow", req: tStartBrk + 0x5010, ret: tStartBrk + 0x5010, heapEnd: tStartBrk + 0x6000, headroom: top - tStartBrk - 0x6000},
		{name: "grow to leave exactly one page", req: top - page, ret: top - page, heapEnd: top - page, headroom: page},
		{name: "blocked by the mapping", req: top - page + 1, ret: tStartBrk, failed: true, blocker: top, headroom: top - tStartBrk},
		{name: "past the mapping", req: top + 10*mib, ret: tStartBrk, failed: true, blocker: top, headroom: top - tStartBrk},
		{name: "failed with room: a limit", req: top - 2*page, ret: tStartBrk, failed: true, headroom: top - tStartBrk},
		{name: "stack guard gap blocks", req: top - stackGuardGap, ret: tStartBrk, stack: true, failed: true, blocker: top, headroom: top - tStartBrk},
		{name: "below the guard gap is a limit", req: top - stackGuardGap - page, ret: tStartBrk, stack: true, failed: true, headroom: top - tStartBrk},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newGen(tPID)
			tr := started(t, g)
			flags := uint32(0x02 | mapAnonymous)
			if tc.stack {
				flags |= mapGrowsDown
			}
			applyAll(tr, g.mmap(top, page, protR|protW, flags, "", 0, top))
			ch := tr.Apply(g.brk(tc.req, tc.ret))
			if (ch.BrkFailure != nil) != tc.failed {
				t.Fatalf("failure %+v, want failed=%v", ch.BrkFailure, tc.failed)
			}
			if tc.failed {
				f := ch.BrkFailure
				if f.Requested != tc.req || f.Result != tc.ret || f.Seq != g.seq {
					t.Errorf("failure %+v", f)
				}
				switch {
				case tc.blocker == 0 && f.BlockedBy != nil:
					t.Errorf("blocked by %x, want none", f.BlockedBy.Start)
				case tc.blocker != 0 && (f.BlockedBy == nil || f.BlockedBy.Start != tc.blocker):
					t.Errorf("blocked by %+v, want %x", f.BlockedBy, tc.blocker)
				}
			}
			r := tr.Snapshot(tPID)
			if r.BrkHeadroom != tc.headroom || ch.Headroom != tc.headroom {
				t.Errorf("headroom report %#x change %#x, want %#x", r.BrkHeadroom, ch.Headroom, tc.headroom)
			}
			if len(r.BrkFailures) != map[bool]int{false: 0, true: 1}[tc.failed] {
				t.Errorf("%d failures in the report", len(r.BrkFailures))
			}
			var heapEnd uint64
			for _, m := range r.VMAs {
				if m.Path == "[heap]" {
					heapEnd = m.End
					if m.Start != tStartBrk || m.Placement != PlacementBrk {
						t.Errorf("heap %+v", m)
					}
				}
			}
			if heapEnd != tc.heapEnd {
				t.Errorf("heap ends at %#x, want %#x", heapEnd, tc.heapEnd)
			}
		})
	}
}

func TestBrkQueryIsNotAFailure(t *testing.T) {
	g := newGen(tPID)
	tr := started(t, g)
	if ch := tr.Apply(g.brk(0, tStartBrk)); ch.BrkFailure != nil || !ch.Tracked {
		t.Errorf("brk(0): %+v", ch)
	}
	// Below start_brk the kernel's brk() refuses ("if (brk < min_brk)
	// goto out") and returns the current break: a failure, with no
	// mapping to blame.
	ch := tr.Apply(g.brk(tText, tStartBrk))
	if f := ch.BrkFailure; f == nil || f.Cause != BrkBelowStart || f.BlockedBy != nil {
		t.Errorf("brk below start_brk: %+v, want a failure below the start", ch.BrkFailure)
	}
}
