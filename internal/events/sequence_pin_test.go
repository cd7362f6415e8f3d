package events

import (
	"fmt"
	"slices"
	"testing"
	"unsafe"

	"github.com/mmtrace/mmtrace/bpf"
)

// Tests that pin what the sequencer promises (see Sequencer's comment):
// each process's numbered changes come out in seq order, a gap is given up
// on only by a loss, an exit, an exec, the hold bound, Tick or Flush, and
// what is given up on comes out in seq order and is reported as unordered.

func pinBytes[T any](v *T) []byte {
	return append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(v)), unsafe.Sizeof(*v))...)
}

// pinChange is a munmap record of pid numbered seq, made at time; its
// address (seq pages) says which change it is.
func pinChange(pid, seq uint32, time uint64) []byte {
	m := bpf.MmtraceMemEvent{
		H:    bpf.MmtraceEventHeader{Kind: uint8(KindMunmap), Pid: pid, Tid: pid, Seq: seq, Time: time},
		Addr: uint64(seq) << 12,
	}
	return pinBytes(&m)
}

type pinOut struct {
	names     []string // "pid:seq" for changes, the kind for the rest
	unordered []string // "pid/n" for each Unordered call
}

func pinSequencer(t *testing.T) (*Sequencer, *pinOut) {
	t.Helper()
	o := &pinOut{}
	d := NewDecoder()
	s := NewSequencer(func(r []byte) {
		var ev Event
		if err := d.Decode(r, &ev); err != nil {
			o.names = append(o.names, "undecodable")
			return
		}
		if ev.Kind == KindMunmap {
			o.names = append(o.names, fmt.Sprintf("%d:%d", ev.PID, ev.Addr>>12))
		} else {
			o.names = append(o.names, ev.Kind.String())
		}
	})
	s.Unordered = func(pid uint32, n int) { o.unordered = append(o.unordered, fmt.Sprintf("%d/%d", pid, n)) }
	return s, o
}

func pinTask(kind Kind, pid, child uint32) []byte {
	if kind == KindExec {
		e := bpf.MmtraceExecEvent{H: bpf.MmtraceEventHeader{Kind: uint8(kind), Pid: pid, Tid: pid}}
		return pinBytes(&e)
	}
	e := bpf.MmtraceTaskEvent{H: bpf.MmtraceEventHeader{Kind: uint8(kind), Pid: pid, Tid: pid}, Child: child}
	return pinBytes(&e)
}

func pinCheck(t *testing.T, o *pinOut, names, unordered []string) {
	t.Helper()
	if !slices.Equal(o.names, names) || !slices.Equal(o.unordered, unordered) {
		t.Errorf("got %v (unordered %v)\nwant %v (unordered %v)", o.names, o.unordered, names, unordered)
	}
}

// Records given up on (change 1 lost) come out in seq order, however many:
// 40 held records in reverse ring order; a map walk would not give them
// back sorted.
func TestPinReleaseSortsHeldRecords(t *testing.T) {
	s, o := pinSequencer(t)
	var want []string
	for q := uint32(41); q >= 2; q-- {
		s.Push(pinChange(7, q, 0))
	}
	for q := 2; q <= 41; q++ {
		want = append(want, fmt.Sprintf("7:%d", q))
	}
	s.Push(EncodeLost(7, 1, 0))
	want = append(want, "lost")
	// After the release the next expected change is 42: 42 passes at once,
	// 44 waits for 43.
	s.Push(pinChange(7, 42, 0))
	s.Push(pinChange(7, 44, 0))
	s.Push(pinChange(7, 43, 0))
	want = append(want, "7:42", "7:43", "7:44")
	pinCheck(t, o, want, []string{"7/40"})
}

// The ring buffer reuses the memory behind a record once Push returns: a
// held record must be a copy, not the caller's bytes.
func TestPinHeldRecordIsACopy(t *testing.T) {
	s, o := pinSequencer(t)
	buf := pinChange(7, 2, 0)
	s.Push(buf)
	copy(buf, pinChange(7, 9, 0)) // the ring slot is overwritten by a later record
	s.Push(pinChange(7, 1, 0))
	pinCheck(t, o, []string{"7:1", "7:2"}, nil)
}

// A change older than the next expected one came too late: it is passed on
// at once and counted as one unordered record.
func TestPinLateChangeIsPassedAndCounted(t *testing.T) {
	s, o := pinSequencer(t)
	s.Push(pinChange(7, 3, 0))
	s.Push(pinChange(7, 2, 0))
	s.Push(EncodeLost(7, 1, 0)) // gives up on 1: next is 4
	s.Push(pinChange(7, 1, 0))
	s.Push(pinChange(7, 4, 0))
	pinCheck(t, o, []string{"7:2", "7:3", "lost", "7:1", "7:4"}, []string{"7/2", "7/1"})
}

// Without an Unordered callback the sequencer still works.
func TestPinNoUnorderedCallback(t *testing.T) {
	var n int
	s := NewSequencer(func([]byte) { n++ })
	s.Push(pinChange(7, 3, 0))
	s.Push(EncodeLost(7, 1, 0))
	s.Push(pinChange(7, 1, 0))
	s.Flush()
	if n != 3 {
		t.Errorf("%d records passed, want 3", n)
	}
}

// An exec starts the numbering again at 1: a 2 after it waits for its 1.
func TestPinExecRestartsNumbering(t *testing.T) {
	s, o := pinSequencer(t)
	s.Push(pinChange(7, 1, 0))
	s.Push(pinChange(7, 2, 0))
	s.Push(pinTask(KindExec, 7, 0))
	s.Push(pinChange(7, 2, 0))
	s.Push(pinChange(7, 1, 0))
	pinCheck(t, o, []string{"7:1", "7:2", "exec", "7:1", "7:2"}, nil)
}

// A fork starts the child's numbering at 1 even when the pid was in use
// before (its exit was lost): what it held then comes out before the fork.
func TestPinForkRestartsChildNumbering(t *testing.T) {
	s, o := pinSequencer(t)
	s.Push(pinChange(9, 1, 0))
	s.Push(pinChange(9, 2, 0))
	s.Push(pinChange(9, 4, 0)) // held for 3
	s.Push(pinTask(KindFork, 7, 9))
	s.Push(pinChange(9, 2, 0))
	s.Push(pinChange(9, 1, 0))
	pinCheck(t, o, []string{"9:1", "9:2", "9:4", "fork", "9:1", "9:2"}, []string{"9/1"})
}

// A fork record cut short has no child: it is passed on and nothing else
// changes.
func TestPinShortForkRecord(t *testing.T) {
	s, o := pinSequencer(t)
	s.Push(pinChange(9, 1, 0))
	f := pinTask(KindFork, 7, 9)
	s.Push(f[:sizeHeader])
	s.Push(pinChange(9, 3, 0)) // still waits for 2
	s.Push(pinChange(9, 2, 0))
	pinCheck(t, o, []string{"9:1", "undecodable", "9:2", "9:3"}, nil)
}

// After an exit the pid is forgotten: a new process with the same pid (its
// fork not seen) counts from 1 without anything being late.
func TestPinExitForgetsTheProcess(t *testing.T) {
	s, o := pinSequencer(t)
	s.Push(pinChange(7, 1, 0))
	s.Push(pinChange(7, 2, 0))
	s.Push(pinTask(KindExit, 7, 0))
	s.Push(pinChange(7, 2, 0))
	s.Push(pinChange(7, 1, 0))
	pinCheck(t, o, []string{"7:1", "7:2", "exit", "7:1", "7:2"}, nil)
}

// A loss of another process does not release this one's held records.
func TestPinLossOfAnotherProcess(t *testing.T) {
	s, o := pinSequencer(t)
	s.Push(pinChange(7, 2, 0))
	s.Push(EncodeLost(8, 1, 0))
	s.Push(pinChange(7, 1, 0))
	pinCheck(t, o, []string{"lost", "7:1", "7:2"}, nil)
}

// Records shorter than a header are passed on for the decoder to reject.
func TestPinShortRecordPassed(t *testing.T) {
	var got [][]byte
	s := NewSequencer(func(r []byte) { got = append(got, r) })
	s.Push([]byte{byte(KindMunmap), 0, 0})
	if len(got) != 1 || len(got[0]) != 3 {
		t.Errorf("got %v", got)
	}
}

// Flush releases every process, lowest pid first, so that a replay gives
// the same output every time.
func TestPinFlushInPidOrder(t *testing.T) {
	s, o := pinSequencer(t)
	var want, unordered []string
	for _, pid := range []uint32{30, 4, 17, 22, 9, 1, 12, 25, 6, 19} {
		s.Push(pinChange(pid, 2, 0))
	}
	for _, pid := range []uint32{1, 4, 6, 9, 12, 17, 19, 22, 25, 30} {
		want = append(want, fmt.Sprintf("%d:2", pid))
		unordered = append(unordered, fmt.Sprintf("%d/1", pid))
	}
	s.Flush()
	pinCheck(t, o, want, unordered)
	// Nothing is left to flush.
	s.Flush()
	pinCheck(t, o, want, unordered)
}

// Tick gives up on a gap only once it is older than heldTooLong, counted
// from the oldest held record; a process whose gap closed has nothing to
// give up, and a new gap is timed from its own first record.
func TestPinTickTiming(t *testing.T) {
	s, o := pinSequencer(t)
	s.Push(pinChange(7, 3, 1000))
	s.Push(pinChange(7, 4, 5000)) // not the oldest: the wait runs from 1000
	s.Tick(1000 + heldTooLong)    // exactly heldTooLong old: not older
	pinCheck(t, o, nil, nil)
	s.Tick(1000 + heldTooLong + 1)
	pinCheck(t, o, []string{"7:3", "7:4"}, []string{"7/2"})

	s2, o2 := pinSequencer(t)
	s2.Push(pinChange(8, 2, 1000))
	s2.Push(pinChange(8, 1, 2000)) // the gap closes
	s2.Push(pinChange(8, 4, 3e9))  // a new gap, from 3 s
	s2.Tick(1000 + heldTooLong + 1)
	pinCheck(t, o2, []string{"8:1", "8:2"}, nil)
	s2.Tick(3e9 + heldTooLong + 1)
	pinCheck(t, o2, []string{"8:1", "8:2", "8:4"}, []string{"8/1"})
}

// A gap that half closes is still timed: with 3 and 5 held and 2
// arriving, 4 is still awaited; the wait runs from a held record's time
// (1000 or 2000), not from 0.
func TestPinPartlyClosedGapKeepsItsStart(t *testing.T) {
	s, o := pinSequencer(t)
	s.Push(pinChange(7, 1, 0))
	s.Push(pinChange(7, 3, 1000))
	s.Push(pinChange(7, 5, 2000))
	s.Push(pinChange(7, 2, 3000))
	pinCheck(t, o, []string{"7:1", "7:2", "7:3"}, nil)
	s.Tick(heldTooLong + 500)
	pinCheck(t, o, []string{"7:1", "7:2", "7:3"}, nil)
	s.Tick(2000 + heldTooLong + 1)
	pinCheck(t, o, []string{"7:1", "7:2", "7:3", "7:5"}, []string{"7/1"})
}

// An exit record cut to its header still names the process: what it held
// comes out before it.
func TestPinHeaderOnlyExit(t *testing.T) {
	s, o := pinSequencer(t)
	s.Push(pinChange(7, 2, 0))
	s.Push(pinTask(KindExit, 7, 0)[:sizeHeader])
	pinCheck(t, o, []string{"7:2", "undecodable"}, []string{"7/1"})
}

// Non-memory records (personality, VMA, execve) are never held, whatever
// their seq field says.
func TestPinOtherKindsNotHeld(t *testing.T) {
	s, o := pinSequencer(t)
	m := bpf.MmtraceMemEvent{H: bpf.MmtraceEventHeader{Kind: uint8(KindPersonality), Pid: 7, Seq: 5}}
	s.Push(pinBytes(&m))
	pinCheck(t, o, []string{"personality"}, nil)
	for _, k := range []Kind{KindMmap, KindMremap, KindMprotect, KindBrk} {
		m := bpf.MmtraceMemEvent{H: bpf.MmtraceEventHeader{Kind: uint8(k), Pid: 7, Seq: 2}}
		before := len(o.names)
		s.Push(pinBytes(&m)) // held: 1 is missing
		if len(o.names) != before {
			t.Fatalf("%s with seq 2 passed before 1: %v", k, o.names)
		}
		s.Push(pinTask(KindExit, 7, 0)) // releases it; the next starts afresh
	}
}
