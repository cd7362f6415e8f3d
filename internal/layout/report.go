package layout

import "github.com/mmtrace/mmtrace/internal/events"

// Placement says how a mapping got its address (the README's JSON section).
type Placement string

const (
	PlacementNone           Placement = ""
	PlacementExec           Placement = "exec"            // mapped by the ELF loader inside execve
	PlacementFixed          Placement = "fixed"           // MAP_FIXED
	PlacementFixedNoReplace Placement = "fixed-noreplace" // MAP_FIXED_NOREPLACE
	PlacementHint           Placement = "hint"            // the address hint was honoured
	PlacementHintIgnored    Placement = "hint-ignored"    // a hint was given, the kernel placed it elsewhere
	PlacementBottomUp       Placement = "bottom-up"       // legacy allocator, searching up from the mmap base
	PlacementTopDown        Placement = "top-down"        // flexible allocator, searching down from the mmap base
	PlacementMremap         Placement = "mremap"          // grown in place or moved by mremap
	PlacementBrk            Placement = "brk"             // the heap itself
	PlacementProc           Placement = "proc"            // already there when read from /proc (--pid)
)

// Mapping is one range of the modelled address space, in /proc/PID/maps terms.
type Mapping struct {
	Start, End uint64
	Prot       string // /proc/PID/maps notation, e.g. "r-xp"
	Offset     uint64 // file offset in bytes
	Path       string // file, "[heap]", "[stack]", "[vdso]", ... or "" for anonymous
	Placement  Placement
	Seq        uint64 // event that created this mapping (0 if from exec snapshot or /proc)
}

// BrkFailure is a brk call that did not move the break where it asked: the
// kernel then returns the old break (brk never returns an error code).
type BrkFailure struct {
	Seq       uint64
	Requested uint64
	Result    uint64
	BlockedBy *Mapping // the mapping in the way, nil when none was
	Cause     BrkCause
}

// BrkCause says why a brk failed, as the kernel's brk() decides it.
type BrkCause string

const (
	BrkBlocked     BrkCause = "blocked"              // a mapping (and its guard gap) in the way: BlockedBy
	BrkLimit       BrkCause = "limit"                // room, but a limit refused it (RLIMIT_DATA, overcommit)
	BrkBelowStart  BrkCause = "below-start"          // asked below start_brk: the kernel never moves the break there
	BrkBeyondSpace BrkCause = "beyond-address-space" // past TASK_SIZE: no mapping can be the cause
)

// Reason is Cause, or for a failure made without one, what BlockedBy says.
func (f *BrkFailure) Reason() BrkCause {
	switch {
	case f.Cause != "":
		return f.Cause
	case f.BlockedBy != nil:
		return BrkBlocked
	}
	return BrkLimit
}

// Why says in words why the brk failed, without the blocking mapping.
func (f *BrkFailure) Why() string {
	switch f.Reason() {
	case BrkBelowStart:
		return "below the heap's start: the kernel never moves the break under start_brk"
	case BrkBeyondSpace:
		return "beyond the address space, past TASK_SIZE: no mapping can be the cause"
	case BrkBlocked:
		return "blocked"
	}
	return "no mapping in the way: a limit such as RLIMIT_DATA or overcommit"
}

// Squeezer is the first mapping that left the brk area with less headroom
// than the squeeze threshold.
type Squeezer struct {
	Mapping
	Headroom uint64 // headroom right after it was created
}

// Report is the verdict on one process image, produced when the image ends
// (exit, next exec, or mmtrace stopping). Its fields follow the JSON
// "report" line of the README's JSON section.
type Report struct {
	PID  uint32
	Comm string
	Exe  string
	// Argv is the command line the exec gave the image (empty when not
	// known: --pid, a fork copy, a recording that predates it).
	Argv          []string
	ArgvTruncated bool
	ABI           events.ABI
	PPID          uint32
	ParentComm    string
	ParentABI     events.ABI

	Personality       uint32
	PersonalitySource string // "inherited" or "personality(0x...) at seq N before exec"

	Layout       string // "flexible" or "legacy"
	LayoutReason string

	MmapBase    uint64 // the base that applies to the image's ABI
	StartBrk    uint64
	Brk         uint64
	BrkHeadroom uint64
	// BrkUsable is the part of BrkHeadroom brk can take: the kernel keeps
	// a page between the break and the next mapping, and the stack's
	// guard gap below a stack (brk's check in mm/mmap.c). BrkUsableWhy
	// says which applied ("" when the whole headroom is usable).
	BrkUsable    uint64
	BrkUsableWhy string

	Squeezer    *Squeezer
	BoundedBy   *Mapping // the mapping that bounds the heap now (nil: the mmap base / stack gap does)
	BrkFailures []BrkFailure
	// VMAs is the layout just before the image ended, sorted by address.
	// It is nil in a report made with Options.StreamVMAs, which keeps the
	// ended image instead: EachVMA and WithVMAs read both kinds.
	VMAs  []Mapping
	ended *image

	// Notes say where facts came from when not from the kernel at the
	// moment they happened (/proc reads), and what could not be known.
	Notes []string

	LostEvents uint64 // records dropped while this image was live
	Uncertain  bool   // true when LostEvents > 0 or the exec snapshot was incomplete
	FromProc   bool   // the image was first seen through /proc (--pid), not at exec
	Forked     bool   // the image is a fork copy of its parent's (ExecSeq is then the fork's seq)

	ExecSeq uint64 // event that started the image (0 for --pid)
	EndSeq  uint64 // event that ended it (0 when mmtrace stopped)
	Ended   string // "exit", "exec" or "stopped"
}

// Change is what one event did to the traced images, for rendering the
// per-event line. Tracker.Apply returns it.
type Change struct {
	Tracked bool   // the event belongs to a traced image (or ended one)
	Comm    string // comm of the image the event applied to

	Placement       Placement   // mmap and mremap: how the new range got its address
	Headroom        uint64      // brk headroom of the image after the event
	HeadroomChanged bool        // headroom moved materially (changed power-of-two bucket, or crossed the threshold)
	NewSqueezer     *Squeezer   // this event made the image's squeezer
	BrkFailure      *BrkFailure // this event was a failed brk

	// SnapshotReady is set on the event that completes a new image's exec
	// snapshot (its last VMA record, or the exec itself when it carries no
	// VMAs): the image's first layout can now be shown with Tracker.Snapshot.
	SnapshotReady bool

	Ended []*Report // images this event ended (exit; an exec ends the previous image)
}

// EachVMA calls f with each mapping of the layout, in address order,
// while f returns true. The *Mapping is valid only during the call. A
// streamed report walks its image's tree with the tree's own cursor: one
// reader at a time (the pipeline renders on one goroutine).
func (r *Report) EachVMA(f func(*Mapping) bool) {
	if r.ended != nil {
		r.ended.eachVMA(f)
		return
	}
	for i := range r.VMAs {
		if !f(&r.VMAs[i]) {
			return
		}
	}
}

// WithVMAs returns r with VMAs filled in: r itself when they are, else a
// copy holding them.
func (r *Report) WithVMAs() *Report {
	if r == nil || r.ended == nil {
		return r
	}
	c := *r
	c.VMAs, c.ended = r.ended.vmas(), nil
	return &c
}
