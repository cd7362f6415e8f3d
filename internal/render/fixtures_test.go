package render

import (
	"github.com/mmtrace/mmtrace/internal/events"
	"github.com/mmtrace/mmtrace/internal/layout"
)

// Hand-built reports for the golden tests. Addresses follow real layouts
// on x86_64 Linux 6.x: 64-bit PIEs near 0x55.., libraries near 0x7f..,
// 32-bit legacy mappings bottom-up from about 0x55555000, 32-bit flexible
// ones below 0xf7ff....

func mp(start, end uint64, prot, path string, pl layout.Placement, seq uint64) layout.Mapping {
	return layout.Mapping{Start: start, End: end, Prot: prot, Path: path, Placement: pl, Seq: seq}
}

const (
	atExecve = layout.PlacementExec
	up       = layout.PlacementBottomUp
	down     = layout.PlacementTopDown
	onHint   = layout.PlacementHint
	heap     = layout.PlacementBrk
)

// legacySqueeze32 is the seed incident class: a 32-bit image with the
// legacy (bottom-up) layout inherited from its parent; bottom-up mappings
// filled the space below and around the executable, the next one landed
// directly on top of the heap, and brk then failed against it.
func legacySqueeze32() *layout.Report {
	const ld, libc, blob, exe = "/usr/lib32/ld-linux.so.2", "/usr/lib32/libc.so.6", "/var/tmp/blob.dat", "/root/memtest32"
	vmas := []layout.Mapping{
		mp(0x5556b000, 0x5556c000, "r--p", ld, atExecve, 0),
		mp(0x5556c000, 0x55591000, "r-xp", ld, atExecve, 0),
		mp(0x55591000, 0x5559c000, "r--p", ld, atExecve, 0),
		mp(0x5559c000, 0x5559e000, "r--p", ld, atExecve, 0),
		mp(0x5559e000, 0x5559f000, "rw-p", ld, atExecve, 0),
		mp(0x5559f000, 0x555a3000, "r--p", "[vvar]", atExecve, 0),
		mp(0x555a3000, 0x555a5000, "r-xp", "[vdso]", atExecve, 0),
		mp(0x555a5000, 0x555a7000, "rw-p", "", up, 9),
		mp(0x555a7000, 0x555ca000, "r--p", libc, up, 14),
		mp(0x555ca000, 0x5574a000, "r-xp", libc, up, 15),
		mp(0x5574a000, 0x557cf000, "r--p", libc, up, 16),
		mp(0x557cf000, 0x557d1000, "r--p", libc, up, 19),
		mp(0x557d1000, 0x557d2000, "rw-p", libc, up, 17),
		mp(0x557d2000, 0x557dc000, "rw-p", "", up, 18),
		mp(0x557dc000, 0x55fdc000, "r--p", blob, up, 31),
		mp(0x56555000, 0x56556000, "r--p", exe, atExecve, 0),
		mp(0x56556000, 0x56557000, "r-xp", exe, atExecve, 0),
		mp(0x56557000, 0x56558000, "r--p", exe, atExecve, 0),
		mp(0x56558000, 0x56559000, "r--p", exe, atExecve, 0),
		mp(0x56559000, 0x5655a000, "rw-p", exe, atExecve, 0),
		mp(0x5655a000, 0x56d5a000, "r--p", blob, up, 33),
		mp(0x56d5a000, 0x5755a000, "r--p", blob, up, 35),
		mp(0x57a3e000, 0x57a5f000, "rw-p", "[heap]", heap, 0),
		mp(0x57a5f000, 0x5825f000, "r--p", blob, up, 37),
		mp(0x5825f000, 0x58a5f000, "r--p", blob, up, 45),
		mp(0xffd9c000, 0xffdbd000, "rw-p", "[stack]", atExecve, 0),
	}
	sq := vmas[23]
	return &layout.Report{
		PID: 5150, Comm: "memtest32", Exe: exe, ABI: events.ABI32,
		PPID: 5101, ParentComm: "sshd", ParentABI: events.ABI32,
		Personality: 0x0200008, PersonalitySource: "inherited",
		Layout: "legacy", LayoutReason: "ADDR_COMPAT_LAYOUT personality (0x200008)",
		MmapBase: 0x5556b000, StartBrk: 0x57a3e000, Brk: 0x57a5f000, BrkHeadroom: 0,
		Squeezer:  &layout.Squeezer{Mapping: sq, Headroom: 0},
		BoundedBy: &sq,
		BrkFailures: []layout.BrkFailure{
			{Seq: 39, Requested: 0x57a80000, Result: 0x57a5f000, BlockedBy: &sq},
			{Seq: 41, Requested: 0x57a60000, Result: 0x57a5f000, BlockedBy: &sq},
		},
		VMAs:    vmas,
		ExecSeq: 4, EndSeq: 47, Ended: "exit",
	}
}

// hintSqueeze64 is the end-to-end fixture of issue 2: a 64-bit program
// maps a file at an address hint a little above its heap end, then fails
// to grow brk.
func hintSqueeze64() *layout.Report {
	const exe, libc, ld = "/tmp/mmtrace-e2e/hintsqueeze", "/usr/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
	vmas := []layout.Mapping{
		mp(0x5603f6a2c000, 0x5603f6a2d000, "r--p", exe, atExecve, 0),
		mp(0x5603f6a2d000, 0x5603f6a2e000, "r-xp", exe, atExecve, 0),
		mp(0x5603f6a2e000, 0x5603f6a2f000, "r--p", exe, atExecve, 0),
		mp(0x5603f6a2f000, 0x5603f6a30000, "r--p", exe, atExecve, 0),
		mp(0x5603f6a30000, 0x5603f6a31000, "rw-p", exe, atExecve, 0),
		mp(0x5603f7d9f000, 0x5603f7dc0000, "rw-p", "[heap]", heap, 0),
		mp(0x5603f7dc1000, 0x5603f7dc2000, "r--p", "/etc/passwd", onHint, 27),
		mp(0x7f5c29f8a000, 0x7f5c29f8d000, "rw-p", "", down, 24),
		mp(0x7f5c29f8d000, 0x7f5c29fb5000, "r--p", libc, down, 19),
		mp(0x7f5c29fb5000, 0x7f5c2a13d000, "r-xp", libc, layout.PlacementFixed, 20),
		mp(0x7f5c2a13d000, 0x7f5c2a18c000, "r--p", libc, down, 19),
		mp(0x7f5c2a18c000, 0x7f5c2a190000, "r--p", libc, layout.PlacementFixed, 21),
		mp(0x7f5c2a190000, 0x7f5c2a192000, "rw-p", libc, layout.PlacementFixed, 21),
		mp(0x7f5c2a192000, 0x7f5c2a19f000, "rw-p", "", layout.PlacementFixed, 22),
		mp(0x7f5c2a1a8000, 0x7f5c2a1aa000, "rw-p", "", down, 17),
		mp(0x7f5c2a1aa000, 0x7f5c2a1ae000, "r--p", "[vvar]", atExecve, 0),
		mp(0x7f5c2a1ae000, 0x7f5c2a1b0000, "r-xp", "[vdso]", atExecve, 0),
		mp(0x7f5c2a1b0000, 0x7f5c2a1b1000, "r--p", ld, atExecve, 0),
		mp(0x7f5c2a1b1000, 0x7f5c2a1d6000, "r-xp", ld, atExecve, 0),
		mp(0x7f5c2a1d6000, 0x7f5c2a1e0000, "r--p", ld, atExecve, 0),
		mp(0x7f5c2a1e0000, 0x7f5c2a1e2000, "r--p", ld, atExecve, 0),
		mp(0x7f5c2a1e2000, 0x7f5c2a1e4000, "rw-p", ld, atExecve, 0),
		mp(0x7ffd5c3a1000, 0x7ffd5c3c2000, "rw-p", "[stack]", atExecve, 0),
	}
	sq := vmas[6]
	return &layout.Report{
		PID: 7311, Comm: "hintsqueeze", Exe: exe, ABI: events.ABI64,
		PPID: 7300, ParentComm: "mmtrace", ParentABI: events.ABI64,
		Personality: 0, PersonalitySource: "inherited",
		Layout: "flexible", LayoutReason: "default: top-down below the stack",
		MmapBase: 0x7f5c2a1e4000, StartBrk: 0x5603f7d9f000, Brk: 0x5603f7dc0000, BrkHeadroom: 0x1000,
		Squeezer:  &layout.Squeezer{Mapping: sq, Headroom: 0x1000},
		BoundedBy: &sq,
		BrkFailures: []layout.BrkFailure{
			{Seq: 28, Requested: 0x5603f7de1000, Result: 0x5603f7dc0000, BlockedBy: &sq},
		},
		VMAs:    vmas,
		ExecSeq: 2, EndSeq: 29, Ended: "exit",
	}
}

// healthyBash64 is an interactive bash: flexible layout, the heap far
// below the libraries, terabytes of headroom.
func healthyBash64() *layout.Report {
	const exe = "/usr/bin/bash"
	const lib = "/usr/lib/x86_64-linux-gnu/"
	vmas := []layout.Mapping{
		mp(0x55d0c6e9a000, 0x55d0c6ec9000, "r--p", exe, atExecve, 0),
		mp(0x55d0c6ec9000, 0x55d0c6fb8000, "r-xp", exe, atExecve, 0),
		mp(0x55d0c6fb8000, 0x55d0c6fed000, "r--p", exe, atExecve, 0),
		mp(0x55d0c6fed000, 0x55d0c6ff1000, "r--p", exe, atExecve, 0),
		mp(0x55d0c6ff1000, 0x55d0c6ffa000, "rw-p", exe, atExecve, 0),
		mp(0x55d0c6ffa000, 0x55d0c7005000, "rw-p", "", atExecve, 0),
		mp(0x55d0c7a8e000, 0x55d0c7c13000, "rw-p", "[heap]", heap, 0),
		mp(0x7f3b8e600000, 0x7f3b8e8e9000, "r--p", "/usr/lib/locale/locale-archive", down, 58),
		mp(0x7f3b8e8f0000, 0x7f3b8e8f3000, "rw-p", "", down, 30),
		mp(0x7f3b8e8f3000, 0x7f3b8e91b000, "r--p", lib+"libc.so.6", down, 21),
		mp(0x7f3b8e91b000, 0x7f3b8eaa3000, "r-xp", lib+"libc.so.6", down, 22),
		mp(0x7f3b8eaa3000, 0x7f3b8eaf2000, "r--p", lib+"libc.so.6", down, 23),
		mp(0x7f3b8eaf2000, 0x7f3b8eaf6000, "r--p", lib+"libc.so.6", down, 34),
		mp(0x7f3b8eaf6000, 0x7f3b8eaf8000, "rw-p", lib+"libc.so.6", down, 24),
		mp(0x7f3b8eaf8000, 0x7f3b8eb05000, "rw-p", "", down, 25),
		mp(0x7f3b8eb05000, 0x7f3b8eb13000, "r--p", lib+"libtinfo.so.6.5", down, 13),
		mp(0x7f3b8eb13000, 0x7f3b8eb26000, "r-xp", lib+"libtinfo.so.6.5", down, 14),
		mp(0x7f3b8eb26000, 0x7f3b8eb34000, "r--p", lib+"libtinfo.so.6.5", down, 15),
		mp(0x7f3b8eb34000, 0x7f3b8eb38000, "r--p", lib+"libtinfo.so.6.5", down, 33),
		mp(0x7f3b8eb38000, 0x7f3b8eb39000, "rw-p", lib+"libtinfo.so.6.5", down, 16),
		mp(0x7f3b8eb45000, 0x7f3b8eb4c000, "r--s", lib+"gconv/gconv-modules.cache", down, 61),
		mp(0x7f3b8eb4c000, 0x7f3b8eb4e000, "rw-p", "", down, 9),
		mp(0x7f3b8eb4e000, 0x7f3b8eb52000, "r--p", "[vvar]", atExecve, 0),
		mp(0x7f3b8eb52000, 0x7f3b8eb54000, "r-xp", "[vdso]", atExecve, 0),
		mp(0x7f3b8eb54000, 0x7f3b8eb55000, "r--p", lib+"ld-linux-x86-64.so.2", atExecve, 0),
		mp(0x7f3b8eb55000, 0x7f3b8eb7a000, "r-xp", lib+"ld-linux-x86-64.so.2", atExecve, 0),
		mp(0x7f3b8eb7a000, 0x7f3b8eb84000, "r--p", lib+"ld-linux-x86-64.so.2", atExecve, 0),
		mp(0x7f3b8eb84000, 0x7f3b8eb86000, "r--p", lib+"ld-linux-x86-64.so.2", atExecve, 0),
		mp(0x7f3b8eb86000, 0x7f3b8eb88000, "rw-p", lib+"ld-linux-x86-64.so.2", atExecve, 0),
		mp(0x7ffe1c9e4000, 0x7ffe1ca05000, "rw-p", "[stack]", atExecve, 0),
	}
	bound := vmas[7]
	return &layout.Report{
		PID: 4321, Comm: "bash", Exe: exe, ABI: events.ABI64,
		PPID: 4310, ParentComm: "sshd", ParentABI: events.ABI64,
		Personality: 0, PersonalitySource: "inherited",
		Layout: "flexible", LayoutReason: "default: top-down below the stack",
		MmapBase: 0x7f3b8eb88000, StartBrk: 0x55d0c7a8e000, Brk: 0x55d0c7c13000,
		BrkHeadroom: bound.Start - 0x55d0c7c13000,
		BoundedBy:   &bound,
		VMAs:        vmas,
		ExecSeq:     1, EndSeq: 240, Ended: "exit",
	}
}

// flexible32 is a 32-bit program with the default flexible layout: the
// mmap area grows down from just below the stack gap, gigabytes above
// the heap.
func flexible32() *layout.Report {
	const exe, libc, ld = "/home/ana/hello32", "/usr/lib32/libc.so.6", "/usr/lib32/ld-linux.so.2"
	vmas := []layout.Mapping{
		mp(0x5659d000, 0x5659e000, "r--p", exe, atExecve, 0),
		mp(0x5659e000, 0x5659f000, "r-xp", exe, atExecve, 0),
		mp(0x5659f000, 0x565a0000, "r--p", exe, atExecve, 0),
		mp(0x565a0000, 0x565a1000, "r--p", exe, atExecve, 0),
		mp(0x565a1000, 0x565a2000, "rw-p", exe, atExecve, 0),
		mp(0x57e1c000, 0x57e3d000, "rw-p", "[heap]", heap, 0),
		mp(0xf7d6a000, 0xf7d8d000, "r--p", libc, down, 12),
		mp(0xf7d8d000, 0xf7f0e000, "r-xp", libc, down, 13),
		mp(0xf7f0e000, 0xf7f93000, "r--p", libc, down, 14),
		mp(0xf7f93000, 0xf7f95000, "r--p", libc, down, 17),
		mp(0xf7f95000, 0xf7f96000, "rw-p", libc, down, 15),
		mp(0xf7f96000, 0xf7fa0000, "rw-p", "", down, 16),
		mp(0xf7fbe000, 0xf7fc0000, "rw-p", "", down, 8),
		mp(0xf7fc0000, 0xf7fc4000, "r--p", "[vvar]", atExecve, 0),
		mp(0xf7fc4000, 0xf7fc6000, "r-xp", "[vdso]", atExecve, 0),
		mp(0xf7fc6000, 0xf7fc7000, "r--p", ld, atExecve, 0),
		mp(0xf7fc7000, 0xf7fea000, "r-xp", ld, atExecve, 0),
		mp(0xf7fea000, 0xf7ff9000, "r--p", ld, atExecve, 0),
		mp(0xf7ff9000, 0xf7ffb000, "r--p", ld, atExecve, 0),
		mp(0xf7ffb000, 0xf7ffc000, "rw-p", ld, atExecve, 0),
		mp(0xffd5c000, 0xffd7d000, "rw-p", "[stack]", atExecve, 0),
	}
	bound := vmas[6]
	return &layout.Report{
		PID: 6020, Comm: "hello32", Exe: exe, ABI: events.ABI32,
		PPID: 6001, ParentComm: "bash", ParentABI: events.ABI64,
		Personality: 0, PersonalitySource: "inherited",
		Layout: "flexible", LayoutReason: "default: top-down below the stack",
		MmapBase: 0xf7ffc000, StartBrk: 0x57e1c000, Brk: 0x57e3d000,
		BrkHeadroom: bound.Start - 0x57e3d000,
		BoundedBy:   &bound,
		VMAs:        vmas,
		ExecSeq:     2, EndSeq: 30, Ended: "exit",
	}
}

// legacyMerged32 is a real run of the incident fixture
// (cmd/mmtrace/testdata/fixtures/legacy_squeeze.c under setarch i386 -L):
// 1 MiB anonymous blocks filled the space bottom-up, joining the bss of
// libc and of the program into large anonymous VMAs, until one landed
// right at the break. Being anonymous with the heap's protection, it
// merged with the heap: the kernel (vma_is_initial_heap) and so the
// report name the whole VMA [heap], which reaches past the break.
func legacyMerged32() *layout.Report {
	const exe, libc, ld = "/root/legacy_squeeze32", "/usr/lib32/libc.so.6", "/usr/lib32/ld-linux.so.2"
	vmas := []layout.Mapping{
		mp(0x5561d000, 0x5561e000, "r--p", ld, atExecve, 0),
		mp(0x5561e000, 0x55641000, "r-xp", ld, atExecve, 0),
		mp(0x55641000, 0x5564f000, "r--p", ld, atExecve, 0),
		mp(0x5564f000, 0x55651000, "r--p", ld, atExecve, 0),
		mp(0x55651000, 0x55652000, "rw-p", ld, atExecve, 0),
		mp(0x55652000, 0x55656000, "r--p", "[vvar]", atExecve, 0),
		mp(0x55656000, 0x55658000, "r--p", "[vvar_vclock]", atExecve, 0),
		mp(0x55658000, 0x5565a000, "r-xp", "[vdso]", atExecve, 0),
		mp(0x5565a000, 0x5565c000, "rw-p", "", up, 60),
		mp(0x55667000, 0x55689000, "r--p", libc, up, 62),
		mp(0x55689000, 0x55802000, "r-xp", libc, layout.PlacementFixed, 63),
		mp(0x55802000, 0x55884000, "r--p", libc, layout.PlacementFixed, 64),
		mp(0x55884000, 0x55885000, "rw-p", libc, layout.PlacementFixed, 65),
		// libc's 38 KiB bss with 13 blocks merged onto it.
		mp(0x55885000, 0x5658f000, "rw-p", "", layout.PlacementFixed, 66),
		mp(0x5663a000, 0x5663b000, "r--p", exe, atExecve, 0),
		mp(0x5663b000, 0x5663c000, "r-xp", exe, atExecve, 0),
		mp(0x5663c000, 0x5663d000, "r--p", exe, atExecve, 0),
		mp(0x5663d000, 0x5663e000, "r--p", exe, atExecve, 0),
		mp(0x5663e000, 0x5663f000, "rw-p", exe, atExecve, 0),
		// The program's 1 MiB bss with 30 blocks merged onto it.
		mp(0x5663f000, 0x5853f000, "rw-p", "", atExecve, 0),
		// The 64 KiB heap and the 1 MiB squeezer, one VMA.
		mp(0x58567000, 0x58677000, "rw-p", "[heap]", heap, 0),
		mp(0xfff81000, 0xfffa2000, "rw-p", "[stack]", atExecve, 0),
	}
	sq := mp(0x58577000, 0x58677000, "rw-p", "", up, 116)
	return &layout.Report{
		PID: 9047, Comm: "legacy_squeeze3", Exe: exe, ABI: events.ABI32,
		PPID: 9039, ParentComm: "sshd", ParentABI: events.ABI32,
		Personality: 0x0200008, PersonalitySource: "personality(0x200008) at seq 43 before exec",
		Layout: "legacy", LayoutReason: "ADDR_COMPAT_LAYOUT personality (0x200008)",
		MmapBase: 0x5561d000, StartBrk: 0x58567000, Brk: 0x58577000, BrkHeadroom: 0,
		Squeezer:  &layout.Squeezer{Mapping: sq, Headroom: 0},
		BoundedBy: &sq,
		BrkFailures: []layout.BrkFailure{
			{Seq: 117, Requested: 0x58977000, Result: 0x58577000, BlockedBy: &sq},
		},
		VMAs:    vmas,
		ExecSeq: 45, EndSeq: 118, Ended: "exit",
	}
}
