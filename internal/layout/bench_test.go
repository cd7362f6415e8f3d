package layout

import (
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
