package layout

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/mmtrace/mmtrace/internal/events"
)

// A streamed report (Options.StreamVMAs) must read as the filled one: the
// same mappings from EachVMA, from WithVMAs, and when EachVMA is stopped
// early, the ones before the stop. Random changes (the page reference's
// steps, labelled heap and stack included) end with each way an image
// ends: exit, exec and mmtrace stopping.
func TestStreamedReportsMatchFilled(t *testing.T) {
	for _, end := range []string{"exit", "exec", "stopped"} {
		for seed := uint64(1); seed <= 4; seed++ {
			t.Run(fmt.Sprintf("%s/seed%d", end, seed), func(t *testing.T) {
				filled, streamed := endedReports(t, seed, end)
				if filled.VMAs == nil || streamed.VMAs != nil {
					t.Fatalf("filled report has %d VMAs, streamed %d: want the streamed one empty", len(filled.VMAs), len(streamed.VMAs))
				}
				if len(filled.VMAs) < 10 {
					t.Fatalf("only %d mappings: the test changes too little", len(filled.VMAs))
				}
				var got []Mapping
				streamed.EachVMA(func(m *Mapping) bool { got = append(got, *m); return true })
				if !reflect.DeepEqual(got, filled.VMAs) {
					equalLines(t, "EachVMA", maps(got), maps(filled.VMAs))
				}
				if w := streamed.WithVMAs(); !reflect.DeepEqual(w.VMAs, filled.VMAs) {
					equalLines(t, "WithVMAs", maps(w.VMAs), maps(filled.VMAs))
				}
				half := len(filled.VMAs) / 2
				got = got[:0]
				streamed.EachVMA(func(m *Mapping) bool { got = append(got, *m); return len(got) < half })
				if !reflect.DeepEqual(got, filled.VMAs[:half]) {
					t.Errorf("EachVMA stopped after %d gave %d mappings, or others", half, len(got))
				}
			})
		}
	}
}

// endedReports applies the same random steps to a tracker with and one
// without StreamVMAs, ends the image, and returns both reports.
func endedReports(t *testing.T, seed uint64, end string) (filled, streamed *Report) {
	t.Helper()
	var reps [2]*Report
	for i, stream := range []bool{false, true} {
		rng := rand.New(rand.NewPCG(seed, 0x73747265))
		g := newGen(tPID)
		tr := NewTracker(Options{StreamVMAs: stream})
		x := defaultExec()
		x.StartBrk, x.Brk, x.StartStack = refBase, refBase, 0x30000000
		x.MmapBase = 0x40000000
		applyAll(tr, g.exec(x, []events.VMA{{Start: 0x2fff0000, End: 0x30001000, Flags: 0x3 | 0x100}})...)
		ref := &refSpace{brk: refBase}
		for range 400 {
			ev, _ := ref.step(rng, g)
			tr.Apply(ev)
		}
		switch end {
		case "exit":
			reps[i] = endedBy(t, tr.Apply(g.ev(events.KindExit)))
		case "exec":
			evs := g.exec(defaultExec(), defaultVMAs())
			reps[i] = endedBy(t, tr.Apply(evs[0]))
			applyAll(tr, evs[1:]...)
		default:
			fin := tr.Finish()
			if len(fin) != 1 {
				t.Fatalf("Finish gave %d reports, want 1", len(fin))
			}
			reps[i] = fin[0]
		}
		// The tracker goes on (a new image after exec): the ended
		// report must not change with it.
		for range 100 {
			ev, _ := ref.step(rng, g)
			tr.Apply(ev)
		}
	}
	return reps[0], reps[1]
}

func endedBy(t *testing.T, ch Change) *Report {
	t.Helper()
	if len(ch.Ended) != 1 {
		t.Fatalf("%d images ended, want 1", len(ch.Ended))
	}
	return ch.Ended[0]
}
