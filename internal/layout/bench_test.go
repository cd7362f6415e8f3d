package layout

import (
	"fmt"
	"testing"

	"github.com/mmtrace/mmtrace/internal/events"
)

// BenchmarkApply measures the hot path on an image with a few hundred
// regions, cycling through mmap, mprotect, munmap and brk so that the
// layout stays the same size.
func BenchmarkApply(b *testing.B) {
	g := newGen(tPID)
	tr := NewTracker(Options{})
	applyAll(tr, g.exec(defaultExec(), defaultVMAs())...)
	for i := range uint64(300) {
		tr.Apply(g.mmap(0, page, protR, 0x02, "/usr/lib/lib.so", i*page, A+8*i*page))
	}
	at := uint64(A + 8*150*page + page) // in a hole in the middle
	cycle := []*events.Event{
		g.anon(0, 4*page, at),
		g.mprotect(at+page, page, protR, 0),
		g.munmap(at+2*page, page),
		g.brk(tStartBrk+0x21000, tStartBrk+0x21000),
		g.munmap(at, 4*page),
		g.brk(tStartBrk, tStartBrk),
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		tr.Apply(cycle[i%len(cycle)])
	}
}

func BenchmarkApplyUntracked(b *testing.B) {
	tr := NewTracker(Options{})
	e := newGen(1).anon(0, page, A)
	b.ReportAllocs()
	for b.Loop() {
		tr.Apply(e)
	}
}

// BenchmarkChurnAtScale is the many-VMA churn of issue 18: an image of n
// regions (every other page of one mapping read-only, as the bench's
// vmachurn workload makes), then munmap of one page and a MAP_FIXED
// re-map of it with the other protection, at pseudo-random places. Flat
// ns/op from 1k to 262k regions means O(log n) changes.
func BenchmarkChurnAtScale(b *testing.B) {
	for _, n := range []int{1 << 10, 1 << 14, 1 << 16, 1 << 18} {
		b.Run(fmt.Sprintf("vmas=%d", n), func(b *testing.B) {
			g := newGen(tPID)
			tr := NewTracker(Options{})
			applyAll(tr, g.exec(defaultExec(), defaultVMAs())...)
			base := uint64(0x100000000)
			tr.Apply(g.anon(0, uint64(n)*page, base))
			for i := range uint64(n) {
				if i%2 == 1 {
					tr.Apply(g.mprotect(base+i*page, page, protR, 0))
				}
			}
			// Places all over the space (as vmachurn's are), not a few
			// thousand that stay in the cache; two events rewritten for
			// each, as a decoder fills one.
			const k = 1 << 16
			at := make([]uint64, k)
			rng := uint64(1)
			for i := range at {
				rng = rng*6364136223846793005 + 1442695040888963407
				at[i] = (rng >> 33) % uint64(n)
			}
			unmap, remap := g.munmap(base, page), g.mmap(base, page, protR, 0x32, "", 0, base)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				p := at[i/2%k]
				addr := base + p*page
				if i%2 == 0 {
					unmap.Addr = addr
					unmap.Seq += 2
					tr.Apply(unmap)
					continue
				}
				remap.Addr, remap.Ret, remap.Prot = addr, int64(addr), protR|protW
				if p%2 == 1 {
					remap.Prot = protR
				}
				remap.Seq += 2
				tr.Apply(remap)
			}
			b.ReportMetric(float64(len(tr.Snapshot(tPID).VMAs)), "vmas")
		})
	}
}

// BenchmarkBuildAtScale is how vmachurn makes its n VMAs: one mapping,
// then mprotect of every other page up it, each splitting the last
// region. It reports the time per mprotect and the report's cost after.
func BenchmarkBuildAtScale(b *testing.B) {
	const n = 1 << 18
	g := newGen(tPID)
	base := uint64(0x100000000)
	evs := make([]*events.Event, 0, n/2)
	for i := uint64(1); i < n; i += 2 {
		evs = append(evs, g.mprotect(base+i*page, page, protR, 0))
	}
	b.ReportAllocs()
	for b.Loop() {
		tr := NewTracker(Options{})
		applyAll(tr, g.exec(defaultExec(), defaultVMAs())...)
		tr.Apply(g.anon(0, n*page, base))
		for _, e := range evs {
			tr.Apply(e)
		}
		if r := tr.Snapshot(tPID); len(r.VMAs) < n {
			b.Fatalf("%d VMAs, want %d", len(r.VMAs), n)
		}
	}
}
