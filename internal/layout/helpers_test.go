package layout

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mmtrace/mmtrace/internal/events"
)

// A synthetic 64-bit image: text and data low, heap at 0x10000000, stack
// high, top-down mmap base below the stack.
const (
	tPID       = 100
	tText      = 0x400000
	tStartBrk  = 0x10000000
	tStack     = 0x7ff000000000
	tStackEnd  = 0x7ff000021000
	tMmapBase  = 0x7f0000000000
	tLegacy    = 0x2aaaaaaab000
	tStartStck = 0x7ff000020000
	page       = pageSize
	mib        = 1 << 20

	protR = 1
	protW = 2
	protX = 4
)

// gen makes a numbered event stream for one process.
type gen struct {
	seq uint64
	pid uint32
	abi events.ABI
}

func newGen(pid uint32) *gen { return &gen{pid: pid} }

func (g *gen) ev(k events.Kind) *events.Event {
	g.seq++
	return &events.Event{Seq: g.seq, Kind: k, PID: g.pid, TID: g.pid, ABI: g.abi, FD: -1}
}

func defaultExec() events.Exec {
	return events.Exec{
		Comm: "t", Filename: "/bin/t", PPID: 1, ParentComm: "init",
		TaskSize: taskSize64, StartCode: tText, EndCode: tText + page,
		StartBrk: tStartBrk, Brk: tStartBrk, StartStack: tStartStck,
		MmapBase: tMmapBase, MmapLegacyBase: tLegacy, RlimStackCur: 8 * mib,
		VMAsKnown: true,
	}
}

func defaultVMAs() []events.VMA {
	return []events.VMA{
		{Start: tText, End: tText + page, Flags: vmRead | vmExec, Path: "/bin/t"},
		{Start: tText + page, End: tText + 2*page, Flags: vmRead | vmWrite, PgOff: 1, Path: "/bin/t"},
		{Start: tStack, End: tStackEnd, Flags: vmRead | vmWrite | vmGrowsDown},
	}
}

// exec returns an exec event followed by its VMA snapshot.
func (g *gen) exec(x events.Exec, vmas []events.VMA) []*events.Event {
	e := g.ev(events.KindExec)
	x.VMACount = uint32(len(vmas))
	e.Exec = &x
	out := []*events.Event{e}
	for i, v := range vmas {
		ve := g.ev(events.KindVMA)
		v.Index, v.Total = uint32(i), uint32(len(vmas))
		ve.VMA = v
		out = append(out, ve)
	}
	return out
}

func (g *gen) mmap(hint, length uint64, prot, flags uint32, path string, off uint64, ret uint64) *events.Event {
	e := g.ev(events.KindMmap)
	e.Addr, e.Len, e.Prot, e.Flags, e.Path, e.Offset, e.Ret = hint, length, prot, flags, path, off, int64(ret)
	if path != "" {
		e.FD = 3
	}
	return e
}

// anon is a private anonymous read-write mmap that landed at ret.
func (g *gen) anon(hint, length, ret uint64) *events.Event {
	return g.mmap(hint, length, protR|protW, 0x02|mapAnonymous, "", 0, ret)
}

func (g *gen) munmap(addr, length uint64) *events.Event {
	e := g.ev(events.KindMunmap)
	e.Addr, e.Len = addr, length
	return e
}

func (g *gen) mprotect(addr, length uint64, prot uint32, ret int64) *events.Event {
	e := g.ev(events.KindMprotect)
	e.Addr, e.Len, e.Prot, e.Ret = addr, length, prot, ret
	return e
}

func (g *gen) mremap(old, oldLen, newLen uint64, flags uint32, newAddr uint64, ret int64) *events.Event {
	e := g.ev(events.KindMremap)
	e.Addr, e.Len, e.NewLen, e.Flags, e.NewAddr, e.Ret = old, oldLen, newLen, flags, newAddr, ret
	return e
}

func (g *gen) brk(req, ret uint64) *events.Event {
	e := g.ev(events.KindBrk)
	e.Addr, e.Ret = req, int64(ret)
	return e
}

func applyAll(t *Tracker, evs ...*events.Event) Change {
	var ch Change
	for _, e := range evs {
		ch = t.Apply(e)
	}
	return ch
}

// started returns a tracker with the default image exec'd for g.
func started(t *testing.T, g *gen) *Tracker {
	t.Helper()
	tr := NewTracker(Options{})
	ch := applyAll(tr, g.exec(defaultExec(), defaultVMAs())...)
	if !ch.SnapshotReady {
		t.Fatal("snapshot not ready after the last VMA")
	}
	return tr
}

// maps renders a layout one line per range, "start-end prot path@offset".
func maps(ms []Mapping) []string {
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		s := fmt.Sprintf("%x-%x %s %s", m.Start, m.End, m.Prot, m.Path)
		if fileBacked(m.Path) {
			s += fmt.Sprintf("@%x", m.Offset)
		}
		out = append(out, strings.TrimSpace(s))
	}
	return out
}

// layoutOf returns the live layout of pid without the default exec
// mappings, so tests see only what they did.
func layoutOf(t *testing.T, tr *Tracker, pid uint32) []string {
	t.Helper()
	r := tr.Snapshot(pid)
	if r == nil {
		t.Fatalf("no live image for pid %d", pid)
	}
	var out []string
	for _, l := range maps(r.VMAs) {
		if strings.HasSuffix(l, "/bin/t@0") || strings.HasSuffix(l, "/bin/t@1000") || strings.HasSuffix(l, "[stack]") {
			continue
		}
		out = append(out, l)
	}
	return out
}

func equalLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\ngot:\n  %s\nwant:\n  %s", what, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}
