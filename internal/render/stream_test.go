package render

import (
	"github.com/mmtrace/mmtrace/internal/events"
	"github.com/mmtrace/mmtrace/internal/layout"
)

// step is one event with the Change the tracker would have returned.
type step struct {
	ev events.Event
	ch layout.Change
}

// hintSqueezeStream is the event stream behind hintSqueeze64, as
// cmd/mmtrace would feed it to a renderer: execve, the exec with its VMA
// snapshot, ld.so mapping libc, the heap growing, the hinted mapping that
// squeezes it, the failed brk, exit.
func hintSqueezeStream() []step {
	rep := hintSqueeze64()
	const pid = 7311
	const libc = "/usr/lib/x86_64-linux-gnu/libc.so.6"
	t := uint64(5_000_000_000)
	var out []step
	seq := uint64(0)
	add := func(ev events.Event, ch layout.Change) {
		seq++
		t += 37_000
		ev.Seq, ev.Time, ev.PID, ev.TID = seq, t, pid, pid
		ch.Tracked = true
		if ch.Comm == "" {
			ch.Comm = "hintsqueeze"
		}
		out = append(out, step{ev, ch})
	}
	add(events.Event{Kind: events.KindExecve, Path: rep.Exe, Argv: []string{rep.Exe, "--hint"}}, layout.Change{Comm: "mmtrace"})
	var exeVMAs []layout.Mapping
	for _, m := range rep.VMAs {
		if m.Placement == layout.PlacementExec {
			exeVMAs = append(exeVMAs, m)
		}
	}
	add(events.Event{Kind: events.KindExec, Exec: &events.Exec{
		Comm: "hintsqueeze", Filename: rep.Exe, OldPID: pid, PPID: 7300, ParentComm: "mmtrace",
		TaskSize: 0x7ffffffff000, StartCode: 0x5603f6a2d000, EndCode: 0x5603f6a2e000,
		StartData: 0x5603f6a2f000, EndData: 0x5603f6a31000,
		StartBrk: rep.StartBrk, Brk: rep.StartBrk, StartStack: 0x7ffd5c3c0f30,
		MmapBase: rep.MmapBase, MmapLegacyBase: 0x2aaaaaaab000,
		RlimStackCur: 8 << 20, RlimStackMax: ^uint64(0),
		VMACount: uint32(len(exeVMAs)), VMAsKnown: true,
	}}, layout.Change{}) // as the tracker does: no headroom until the snapshot is complete
	for i, m := range exeVMAs {
		flags := layout.VMFlags(m.Prot, "")
		add(events.Event{Kind: events.KindVMA, VMA: events.VMA{Start: m.Start, End: m.End, Flags: flags, Path: m.Path,
			Index: uint32(i), Total: uint32(len(exeVMAs))}},
			layout.Change{Headroom: 0x7f5c2a1aa000 - rep.StartBrk, SnapshotReady: i == len(exeVMAs)-1})
	}
	hr := func(bound uint64) uint64 { return bound - rep.StartBrk }
	add(events.Event{Kind: events.KindBrk, Addr: 0, Ret: int64(rep.StartBrk)}, layout.Change{Headroom: hr(0x7f5c2a1aa000)})
	add(events.Event{Kind: events.KindMmap, Len: 8192, Prot: 3, Flags: 0x22, FD: -1, Ret: 0x7f5c2a1a8000},
		layout.Change{Placement: layout.PlacementTopDown, Headroom: hr(0x7f5c2a1a8000)})
	add(events.Event{Kind: events.KindMmap, Len: 0x9000, Prot: 1, Flags: 0x2, FD: 3, Path: "/etc/ld.so.cache", Ret: 0x7f5c2a19f000},
		layout.Change{Placement: layout.PlacementTopDown, Headroom: hr(0x7f5c2a19f000)})
	add(events.Event{Kind: events.KindMmap, Len: 0x212000, Prot: 1, Flags: 0x802, FD: 3, Path: libc, Ret: 0x7f5c29f8d000},
		layout.Change{Placement: layout.PlacementTopDown, Headroom: hr(0x7f5c29f8d000)})
	add(events.Event{Kind: events.KindMmap, Addr: 0x7f5c29fb5000, Len: 0x188000, Prot: 5, Flags: 0x812, FD: 3, Offset: 0x28000, Path: libc, Ret: 0x7f5c29fb5000},
		layout.Change{Placement: layout.PlacementFixed, Headroom: hr(0x7f5c29f8d000)})
	add(events.Event{Kind: events.KindMmap, Addr: 0x7f5c2a18c000, Len: 0x6000, Prot: 3, Flags: 0x812, FD: 3, Offset: 0x1fe000, Path: libc, Ret: 0x7f5c2a18c000},
		layout.Change{Placement: layout.PlacementFixed, Headroom: hr(0x7f5c29f8d000)})
	add(events.Event{Kind: events.KindMmap, Addr: 0x7f5c2a192000, Len: 0xd000, Prot: 3, Flags: 0x32, FD: -1, Ret: 0x7f5c2a192000},
		layout.Change{Placement: layout.PlacementFixed, Headroom: hr(0x7f5c29f8d000)})
	add(events.Event{Kind: events.KindMunmap, Addr: 0x7f5c2a19f000, Len: 0x9000, Ret: 0},
		layout.Change{Headroom: hr(0x7f5c29f8d000)})
	add(events.Event{Kind: events.KindMmap, Len: 0x3000, Prot: 3, Flags: 0x22, FD: -1, Ret: 0x7f5c29f8a000},
		layout.Change{Placement: layout.PlacementTopDown, Headroom: hr(0x7f5c29f8a000)})
	add(events.Event{Kind: events.KindMprotect, Addr: 0x7f5c2a18c000, Len: 0x4000, Prot: 1, Ret: 0},
		layout.Change{Headroom: hr(0x7f5c29f8a000)})
	add(events.Event{Kind: events.KindBrk, Addr: rep.Brk, Ret: int64(rep.Brk)},
		layout.Change{Headroom: 0x7f5c29f8a000 - rep.Brk})
	sq := rep.Squeezer
	add(events.Event{Kind: events.KindMmap, Addr: sq.Start, Len: 0x1000, Prot: 1, Flags: 0x2, FD: 3, Path: "/etc/passwd", Ret: int64(sq.Start)},
		layout.Change{Placement: layout.PlacementHint, Headroom: sq.Headroom, HeadroomChanged: true, NewSqueezer: sq})
	f := rep.BrkFailures[0]
	add(events.Event{Kind: events.KindBrk, Addr: f.Requested, Ret: int64(f.Result)},
		layout.Change{Headroom: sq.Headroom, BrkFailure: &f})
	add(events.Event{Kind: events.KindExit, ExitCode: 1, Comm: "hintsqueeze"},
		layout.Change{Headroom: sq.Headroom, Ended: []*layout.Report{rep}})
	return out
}

// miscStream has one event of every other kind and the error paths.
func miscStream() []step {
	t := uint64(9_000_000_000)
	var out []step
	seq := uint64(100)
	add := func(pid uint32, abi events.ABI, ev events.Event, ch layout.Change) {
		seq++
		t += 1_250_000
		ev.Seq, ev.Time, ev.PID, ev.TID, ev.ABI = seq, t, pid, pid, abi
		ch.Tracked = true
		if ch.Comm == "" {
			ch.Comm = "memtest32"
		}
		out = append(out, step{ev, ch})
	}
	add(5101, events.ABI32, events.Event{Kind: events.KindPersonality, Addr: 0x0200008, Ret: 0}, layout.Change{Comm: "sshd"})
	add(5101, events.ABI32, events.Event{Kind: events.KindPersonality, Addr: 0xffffffff, Ret: 0x0200008}, layout.Change{Comm: "sshd"})
	add(5101, events.ABI32, events.Event{Kind: events.KindFork, Child: 5150, Comm: "sshd"}, layout.Change{Comm: "sshd"})
	add(5150, events.ABI32, events.Event{Kind: events.KindExecve, Path: "/root/missing", Argv: []string{"missing"}, Ret: -2}, layout.Change{})
	add(5150, events.ABI32, events.Event{Kind: events.KindVMA, VMA: events.VMA{Start: 0x56555000, End: 0x56556000, Flags: layout.VMFlags("r--p", ""), Path: "/root/memtest32", Index: 0, Total: 9}}, layout.Change{})
	add(5150, events.ABI32, events.Event{Kind: events.KindMmap, Len: 1 << 40, Prot: 3, Flags: 0x22, FD: -1, Ret: -12}, layout.Change{})
	add(5150, events.ABI32, events.Event{Kind: events.KindMremap, Addr: 0x5655a000, Len: 8 << 20, NewLen: 16 << 20, Flags: 1, Ret: 0x57a5f000},
		layout.Change{Placement: layout.PlacementMremap, Headroom: 0, HeadroomChanged: true})
	add(5150, events.ABI32, events.Event{Kind: events.KindMprotect, Addr: 0x57a5f000, Len: 4096, Prot: 7, Ret: -13}, layout.Change{})
	add(5150, events.ABI32, events.Event{Kind: events.KindBrk, Addr: 0x57a80000, Ret: 0x57a5f000},
		layout.Change{BrkFailure: &layout.BrkFailure{Seq: seq + 1, Requested: 0x57a80000, Result: 0x57a5f000}})
	add(0, events.ABI64, events.Event{Kind: events.KindLost, Lost: 17}, layout.Change{Tracked: false, Comm: "?"})
	// Not traced: must not be shown.
	out = append(out, step{events.Event{Seq: 999, Kind: events.KindMmap, PID: 1}, layout.Change{}})
	// A path with invalid UTF-8 and control characters must stay valid JSON.
	add(5150, events.ABI32, events.Event{Kind: events.KindMmap, Len: 4096, Prot: 1, Flags: 2, FD: 4, Path: "/tmp/bad\xff\"name\n\x01", Ret: 0x58a5f000},
		layout.Change{Placement: layout.PlacementBottomUp})
	return out
}
