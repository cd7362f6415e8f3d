// Package events turns raw ring-buffer records from the kernel programs into
// typed Go events. It is the only package that knows the records' byte
// layout, all of it in wire.go; it does not import the bpf2go bindings
// (only its tests do, to pin wire.go to them), so it, layout and render
// build on any architecture without cilium/ebpf.
package events

import "fmt"

// Kind says what an event describes.
type Kind uint8

// Event kinds: the values of enum event_kind in bpf/mmtrace.bpf.c
// (wire_test.go checks them against the generated bindings).
const (
	KindInvalid     Kind = 0
	KindExec        Kind = 1  // sched_process_exec: a new image, mm fields
	KindVMA         Kind = 2  // one VMA of the new image, snapshot at exec
	KindMmap        Kind = 3  // mmap, mmap2, old mmap
	KindMunmap      Kind = 4  // munmap
	KindMremap      Kind = 5  // mremap
	KindMprotect    Kind = 6  // mprotect
	KindBrk         Kind = 7  // brk
	KindPersonality Kind = 8  // personality
	KindExecve      Kind = 9  // execve/execveat syscall entry (or its failure)
	KindFork        Kind = 10 // a traced process forked a new process
	KindExit        Kind = 11 // the last thread of a traced process exited
	KindLost        Kind = 12 // records dropped because the ring buffer was full
	KindUnmodeled   Kind = 13 // a call that changes mappings in a way mmtrace does not model (UnmodeledCall)
)

var kindNames = [...]string{
	KindInvalid: "invalid", KindExec: "exec", KindVMA: "vma", KindMmap: "mmap",
	KindMunmap: "munmap", KindMremap: "mremap", KindMprotect: "mprotect",
	KindBrk: "brk", KindPersonality: "personality", KindExecve: "execve",
	KindFork: "fork", KindExit: "exit", KindLost: "lost", KindUnmodeled: "unmodeled",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// ABI is the system call ABI of the task when the record was made.
type ABI uint8

// ABIs: the values of enum event_abi in bpf/mmtrace.bpf.c.
const (
	ABI64 ABI = 0 // x86_64
	ABI32 ABI = 1 // i386 (ia32 compat)
)

func (a ABI) String() string {
	if a == ABI32 {
		return "i386"
	}
	return "x86_64"
}

// Event is one decoded record. It is a flat value so that decoding needs
// no allocation; which fields are meaningful depends on Kind (see each
// field's comment). Exec events carry their image facts in Exec.
type Event struct {
	Seq  uint64 // position in the stream, assigned by the consumer from 1
	Time uint64 // CLOCK_MONOTONIC nanoseconds when the kernel made the record
	Kind Kind
	ABI  ABI
	PID  uint32 // thread group id
	TID  uint32 // thread id

	// Memory syscalls.
	//   mmap:        Addr=hint, Len, Prot, Flags, FD, Offset (bytes), Ret=address or -errno, Path if FD names a file
	//   munmap:      Addr, Len, Ret
	//   mprotect:    Addr, Len, Prot, Ret
	//   mremap:      Addr=old address, Len=old length, NewLen, Flags, NewAddr (MREMAP_FIXED target), Ret=new address or -errno
	//   brk:         Addr=requested break, Ret=resulting break (below Addr means it failed)
	//   personality: Addr=persona argument, Ret=previous persona
	//   execve:      Path=filename, Argv (ArgvTruncated), Ret=-errno on failure, 0 at entry
	//   unmodeled:   Addr, Len, NewLen = the call's first three arguments, Ret (see UnmodeledCall)
	Addr    uint64
	Len     uint64
	NewLen  uint64
	NewAddr uint64
	Offset  uint64
	Prot    uint32
	Flags   uint32
	FD      int32
	Ret     int64
	Syscall uint32 // the raw syscall number in the ABI above
	// ChangeSeq: the order in which memory calls' changes took effect
	// within the process, from 1 at exec or fork; 0 if unknown (older
	// kernels, recordings) or the call changed nothing. See Sequencer.
	ChangeSeq uint32
	// OrderUnknown: the call changed the layout but the kernel skipped
	// every program that would have numbered it (ChangeSeq 0).
	OrderUnknown bool

	// mmap and mremap: the kernel's last search for free space during the
	// call (mmap:vm_unmapped_area). Searches 0 means the address came
	// from the caller (fixed, or a hint that was free).
	Searches     uint32
	SearchFlags  uint32 // VM_UNMAPPED_AREA_TOPDOWN (1): searched down from SearchHigh
	SearchLow    uint64
	SearchHigh   uint64
	SearchResult uint64
	Path         string
	Argv         []string
	// ArgvTruncated: the command line had more than the record holds
	// (arguments or bytes), or part of it could not be read.
	ArgvTruncated bool

	// VMA snapshot (KindVMA): one mapping of the image just exec'd.
	VMA VMA

	// Fork: Child is the new process; Comm is the parent's. Exit: ExitCode.
	Child    uint32
	ExitCode int32
	Comm     string // task comm at the time of the record (fork, exit)

	// Lost: Lost records dropped for PID (0 = not attributable to one process).
	Lost uint64

	Exec *Exec // KindExec only
}

// VMA is one mapping as the kernel holds it.
type VMA struct {
	Start, End uint64
	Flags      uint64 // vm_flags (VM_READ 0x1, VM_WRITE 0x2, VM_EXEC 0x4, VM_SHARED 0x8, ...)
	PgOff      uint64 // offset into the file, in pages
	Path       string // file path, or a special name like "[vdso]"; "" for anonymous
	Index      uint32 // position in the snapshot
	Total      uint32 // VMAs in the snapshot (0 when the snapshot was cut short)
}

// Exec holds the facts of a new process image at sched_process_exec.
type Exec struct {
	Comm       string
	Filename   string
	OldPID     uint32 // the tid that called execve (differs from PID when a non-leader thread exec'd)
	PPID       uint32
	ParentComm string
	ParentABI  ABI

	Personality uint32
	TaskSize    uint64

	StartCode, EndCode uint64
	StartData, EndData uint64
	StartBrk, Brk      uint64
	StartStack         uint64

	MmapBase             uint64 // mm->mmap_base (64-bit syscalls)
	MmapLegacyBase       uint64
	MmapCompatBase       uint64 // mm->mmap_compat_base (32-bit syscalls); 0 if the kernel has none
	MmapCompatLegacyBase uint64

	RlimStackCur, RlimStackMax uint64

	VMACount  uint32 // VMAs that follow as KindVMA events
	VMAsKnown bool   // false when the kernel cannot walk VMAs at exec (no VMA iterator)
	// VMAsFromProc: the kernel could not walk the VMAs, so the consumer
	// read them from /proc/PID/maps when it saw the exec, a little later.
	VMAsFromProc bool

	// MntNS is the image's mount namespace (its inode number; 0 in
	// recordings that predate it). Root is the path of its root in that
	// namespace when it is chrooted, else "". File paths are as the
	// process sees them (as its /proc/PID/maps shows them).
	MntNS uint32
	Root  string

	// Argv is the new image's command line as the program receives it;
	// ArgvTruncated when it was longer than the record holds. Empty in
	// recordings that predate it.
	Argv          []string
	ArgvTruncated bool
}

// UnmodeledCall names a KindUnmodeled call: shmat, shmdt, prctl(PR_SET_VMA),
// prctl(PR_SET_MM), io_setup, io_destroy, remap_file_pages (i386
// shmat and shmdt arrive as ipc).
func UnmodeledCall(ev *Event) string {
	name := unmodeledNames[abiCall{ev.ABI, ev.Syscall}]
	switch name {
	case "":
		return fmt.Sprintf("syscall %d", ev.Syscall)
	case "prctl":
		switch ev.Addr {
		case 35:
			return "prctl(PR_SET_MM)"
		case 0x53564d41:
			return "prctl(PR_SET_VMA)"
		}
	case "ipc":
		switch ev.Addr & 0xffff {
		case 21:
			return "shmat"
		case 22:
			return "shmdt"
		}
	}
	return name
}

type abiCall struct {
	abi ABI
	nr  uint32
}

// unmodeledNames are the calls the kernel programs send as KindUnmodeled.
var unmodeledNames = map[abiCall]string{
	{ABI64, 30}: "shmat", {ABI64, 67}: "shmdt", {ABI64, 157}: "prctl", {ABI64, 206}: "io_setup",
	{ABI64, 207}: "io_destroy", {ABI64, 216}: "remap_file_pages",
	{ABI32, 117}: "ipc", {ABI32, 172}: "prctl", {ABI32, 245}: "io_setup", {ABI32, 246}: "io_destroy",
	{ABI32, 257}: "remap_file_pages", {ABI32, 397}: "shmat", {ABI32, 398}: "shmdt",
}
