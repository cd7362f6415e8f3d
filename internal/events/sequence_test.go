package events

import (
	"fmt"
	"slices"
	"testing"

	"github.com/mmtrace/mmtrace/bpf"
)

// change is a munmap record of pid numbered seq; its address says which.
func change(pid, seq uint32, time uint64) []byte {
	m := bpf.MmtraceMemEvent{
		H:    bpf.MmtraceEventHeader{Kind: uint8(KindMunmap), Pid: pid, Tid: pid, Seq: seq, Time: time},
		Addr: uint64(seq) << 12,
	}
	return raw(&m)
}

func task(kind Kind, pid, child uint32) []byte {
	if kind == KindExec {
		e := bpf.MmtraceExecEvent{H: bpf.MmtraceEventHeader{Kind: uint8(kind), Pid: pid}}
		return raw(&e)
	}
	e := bpf.MmtraceTaskEvent{H: bpf.MmtraceEventHeader{Kind: uint8(kind), Pid: pid}, Child: child}
	return raw(&e)
}

// sequenced feeds recs through a Sequencer and names what came out, in
// order: "pid:seq" for changes, the kind for the rest.
func sequenced(t *testing.T, recs ...[]byte) (out []string, unordered []uint32) {
	t.Helper()
	d := NewDecoder()
	var ev Event
	s := NewSequencer(func(r []byte) {
		if err := d.Decode(r, &ev); err != nil {
			t.Fatalf("decode: %v", err)
		}
		if ev.Kind == KindMunmap {
			out = append(out, fmt.Sprintf("%d:%d", ev.PID, ev.Addr>>12))
		} else {
			out = append(out, ev.Kind.String())
		}
	})
	s.Unordered = func(pid uint32, _ int) { unordered = append(unordered, pid) }
	for _, r := range recs {
		s.Push(r)
	}
	s.Flush()
	return out, unordered
}

func TestSequencerPutsChangesInOrder(t *testing.T) {
	for _, c := range []struct {
		name      string
		in        [][]byte
		want      []string
		unordered []uint32
	}{
		{"in order", [][]byte{change(7, 1, 0), change(7, 2, 0), change(7, 3, 0)},
			[]string{"7:1", "7:2", "7:3"}, nil},
		{"a late exit record", [][]byte{change(7, 2, 0), change(7, 3, 0), change(7, 1, 0), change(7, 4, 0)},
			[]string{"7:1", "7:2", "7:3", "7:4"}, nil},
		{"processes are independent", [][]byte{change(7, 2, 0), change(8, 1, 0), change(7, 1, 0)},
			[]string{"8:1", "7:1", "7:2"}, nil},
		{"unnumbered records pass at once", [][]byte{change(7, 2, 0), change(7, 0, 0), change(7, 1, 0)},
			[]string{"7:0", "7:1", "7:2"}, nil},
		{"a loss gives up the wait", [][]byte{change(7, 3, 0), change(7, 2, 0), EncodeLost(7, 1, 0), change(7, 4, 0)},
			[]string{"7:2", "7:3", "lost", "7:4"}, []uint32{7}},
		{"a loss of no one process too", [][]byte{change(7, 2, 0), EncodeLost(0, 1, 0)},
			[]string{"7:2", "lost"}, []uint32{7}},
		{"what was lost comes after all", [][]byte{change(7, 2, 0), EncodeLost(7, 1, 0), change(7, 1, 0)},
			[]string{"7:2", "lost", "7:1"}, []uint32{7, 7}},
		{"exec: the old image's changes first, then from 1", [][]byte{change(7, 5, 0), task(KindExec, 7, 0), change(7, 1, 0)},
			[]string{"7:5", "exec", "7:1"}, []uint32{7}},
		{"fork: the child counts from 1", [][]byte{change(7, 1, 0), task(KindFork, 7, 9), change(9, 2, 0), change(9, 1, 0)},
			[]string{"7:1", "fork", "9:1", "9:2"}, nil},
		{"exit: nothing is held past it", [][]byte{change(7, 2, 0), task(KindExit, 7, 0)},
			[]string{"7:2", "exit"}, []uint32{7}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, unordered := sequenced(t, c.in...)
			if !slices.Equal(got, c.want) || !slices.Equal(unordered, c.unordered) {
				t.Errorf("got %v (unordered %v), want %v (unordered %v)", got, unordered, c.want, c.unordered)
			}
		})
	}
}

func TestSequencerTickGivesUp(t *testing.T) {
	var out []uint32
	s := NewSequencer(func(r []byte) { out = append(out, hdrSeq.get(r)) })
	s.Push(change(7, 2, 1000))
	s.Tick(1000 + heldTooLong/2)
	if len(out) != 0 {
		t.Fatalf("released after half the wait: %v", out)
	}
	s.Tick(1000 + heldTooLong + 1)
	if !slices.Equal(out, []uint32{2}) {
		t.Fatalf("after the wait: %v, want [2]", out)
	}
}

func TestSequencerBoundsWhatItHolds(t *testing.T) {
	n := 0
	s := NewSequencer(func([]byte) { n++ })
	for q := uint32(2); q < 2+maxHeld; q++ {
		s.Push(change(7, q, 0))
	}
	if n != maxHeld {
		t.Errorf("%d of %d records passed on with change 1 missing, want all once the bound is reached", n, maxHeld)
	}
}
