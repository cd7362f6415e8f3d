package layout

import (
	"fmt"
	"slices"

	"github.com/mmtrace/mmtrace/internal/events"
)

// image is the model of one process image: from exec (or fork, or /proc)
// to the next exec or exit.
type image struct {
	space
	rep Report // static facts; the dynamic ones are filled by report

	startBrk, brk, startStack uint64
	mmapBase                  uint64
	taskSize                  uint64
	legacy                    bool
	persona                   uint32 // current personality, for READ_IMPLIES_EXEC

	vmasDue  uint32 // snapshot VMAs still to come
	forked   bool   // a copy made at fork
	own      bool   // did a memory event of its own
	headroom uint64
	bound    region // the region bounding the heap; zero (end 0) when the base or the top does

	squeezer  *Squeezer
	failures  []BrkFailure
	lost      uint64
	uncertain bool
}

func newImageFromExec(ev *events.Event, opts Options) *image {
	x := ev.Exec
	im := &image{
		startBrk: x.StartBrk, brk: x.Brk, startStack: x.StartStack,
		taskSize: x.TaskSize, persona: x.Personality,
	}
	im.rep = Report{
		PID: ev.PID, Comm: x.Comm, Exe: x.Filename, Argv: x.Argv, ArgvTruncated: x.ArgvTruncated, ABI: ev.ABI,
		PPID: x.PPID, ParentComm: x.ParentComm, ParentABI: x.ParentABI,
		Personality: x.Personality, PersonalitySource: "inherited",
		ExecSeq: ev.Seq,
	}
	if opts.PersonaCallsUnseen && x.Personality != 0 {
		im.rep.PersonalitySource = personaUnseen
	}
	if im.taskSize == 0 {
		im.taskSize = TaskSize(ev.ABI)
	}
	base, legacyBase := x.MmapBase, x.MmapLegacyBase
	if ev.ABI == events.ABI32 && x.MmapCompatBase != 0 && x.MmapCompatLegacyBase != 0 {
		base, legacyBase = x.MmapCompatBase, x.MmapCompatLegacyBase
	}
	im.mmapBase = base
	known := base != 0 || legacyBase != 0
	if known {
		im.legacy = base == legacyBase
	} else {
		im.legacy = x.Personality&addrCompatLayout != 0 || opts.LegacyVALayout
	}
	im.rep.Layout, im.rep.LayoutReason = layoutReason(im.legacy, known, x.Personality, x.RlimStackCur)
	if !known {
		im.rep.LayoutReason += " (mmap bases unknown)"
	}
	im.rep.MmapBase = base
	return im
}

// layoutReason names the layout and says why the kernel picked it
// (arch_pick_mmap_layout, mmap_is_legacy).
// basesKnown: the kernel gave the image's mmap bases, so legacy was read
// from them, not guessed from the sysctl as mmtrace read it at start.
func layoutReason(legacy, basesKnown bool, persona uint32, rlimStack uint64) (string, string) {
	if !legacy {
		reason := "default: top-down below the stack"
		if rlimStack == rlimInfinity {
			reason += "; RLIMIT_STACK unlimited: base lowered"
		}
		return "flexible", reason
	}
	switch {
	case persona&addrCompatLayout != 0:
		return "legacy", fmt.Sprintf("ADDR_COMPAT_LAYOUT personality (0x%x)", persona)
	case !basesKnown:
		return "legacy", "vm.legacy_va_layout=1 when mmtrace started"
	}
	// x86's mmap_is_legacy() (5.10 on): the personality bit, or the
	// sysctl as it was at this exec. RLIMIT_STACK no longer makes a
	// layout legacy (it lowers the flexible base instead).
	return "legacy", "vm.legacy_va_layout=1 at exec (the personality has no ADDR_COMPAT_LAYOUT)"
}

func personaSource(pc personaCall) string {
	return fmt.Sprintf("personality(0x%x) at seq %d before exec", pc.persona, pc.seq)
}

// TaskSize is the top of user space for an image of the ABI on x86_64
// (4-level paging), where the kernel gave none.
func TaskSize(abi events.ABI) uint64 {
	if abi == events.ABI32 {
		return taskSize32
	}
	return taskSize64
}

// forkCopy is the child's image right after fork: the parent's layout.
func (im *image) forkCopy(ev *events.Event) *image {
	c := *im
	c.space = im.clone()
	c.failures = nil
	c.forked, c.own = true, false
	c.vmasDue = 0
	c.rep.PID = ev.Child
	c.rep.PPID = ev.PID
	c.rep.ParentComm = im.rep.Comm
	c.rep.ParentABI = im.rep.ABI
	c.rep.ExecSeq = ev.Seq
	c.rep.Forked = true
	if ev.Comm != "" {
		c.rep.Comm = ev.Comm
	}
	if im.squeezer != nil {
		sq := *im.squeezer
		c.squeezer = &sq
	}
	return &c
}

// end closes the image; nil when it is a fork copy that never did anything
// of its own (not worth a report).
func (im *image) end(how string, seq uint64, stream bool) *Report {
	if im.forked && !im.own {
		return nil
	}
	return im.report(how, seq, stream)
}

// protToFlags converts mmap/mprotect prot bits, applying READ_IMPLIES_EXEC.
func (im *image) protToFlags(prot uint32) uint8 {
	f := uint8(prot) & protFlags
	if f&flagRead != 0 && im.persona&readImpliesExec != 0 {
		f |= flagExec
	}
	return f
}

// heapFlags are the brk area's flags (VM_DATA_DEFAULT_FLAGS: exec too under
// READ_IMPLIES_EXEC).
func (im *image) heapFlags() uint8 {
	if im.persona&readImpliesExec != 0 {
		return flagRead | flagWrite | flagExec
	}
	return flagRead | flagWrite
}

// vmUnmappedAreaTopDown is VM_UNMAPPED_AREA_TOPDOWN in a search's flags.
const vmUnmappedAreaTopDown = 1

// placementOf says how a successful mmap got its address. When the kernel
// reported its search for free space (mmap:vm_unmapped_area), that says
// which allocator ran; older recordings fall back to the image's layout.
func (im *image) placementOf(ev *events.Event, addr uint64) placeKind {
	hint := ev.Addr
	switch {
	case ev.Flags&mapFixed != 0:
		return placeFixed
	case ev.Flags&mapFixedNoReplace != 0 && addr == hint:
		return placeFixedNoReplace
	case ev.Searches > 0 && hint != 0:
		return placeHintIgnored // a free hint is taken without a search
	case ev.Searches > 0 && ev.SearchFlags&vmUnmappedAreaTopDown != 0:
		return placeTopDown
	case ev.Searches > 0:
		return placeBottomUp
	case hint != 0 && addr == pageAlign(hint):
		return placeHint
	case hint != 0:
		return placeHintIgnored
	case im.legacy:
		return placeBottomUp
	}
	return placeTopDown
}

// measure returns the headroom above the break and the region bounding it
// (zero when the mmap base or the top of user space does).
func (im *image) measure() (uint64, region) {
	top := pageAlign(im.brk)
	limit := im.taskSize
	bound, ok := im.search(top)
	if ok {
		// A region reaching below top (the kernel merged the heap with
		// memory above it, or MAP_FIXED landed on the break) leaves no room.
		limit = max(bound.start, top)
	}
	if im.mmapBase > top && im.mmapBase < limit {
		limit, bound = im.mmapBase, region{}
	}
	if limit < top {
		return 0, bound
	}
	return limit - top, bound
}

// brkBlocker finds the mapping that made a brk from oldTop to newTop fail,
// as the kernel checks it: the next VMA and its guard gap must leave a page.
func (im *image) brkBlocker(oldTop, newTop uint64) (region, bool) {
	r, ok := im.search(oldTop) // the kernel's vma_find from the old break
	if !ok {
		return r, false
	}
	gapStart := r.start
	if im.isStack(&r) {
		gapStart = 0
		if r.start > stackGuardGap {
			gapStart = r.start - stackGuardGap
		}
	}
	return r, newTop+pageSize > gapStart
}

// isStack: r grows down, or holds the initial stack (as the kernel's
// vm_start_gap sees it, a guard gap below it).
func (im *image) isStack(r *region) bool {
	return r.flags&flagGrowsDown != 0 || (r.start <= im.startStack && im.startStack < r.end)
}

// named returns r as a Mapping, named "[stack]" when it is the initial
// stack, as /proc and the report's vmas name it.
func (im *image) named(r *region) Mapping {
	m := r.mapping()
	if m.Path == "" && m.Start <= im.startStack && m.End >= im.startStack {
		m.Path = "[stack]"
	}
	return m
}

// report builds the verdict as of now. stream (for an image that has
// ended, which nothing changes after) keeps the image for EachVMA instead
// of filling VMAs.
func (im *image) report(how string, seq uint64, stream bool) *Report {
	r := im.rep
	r.StartBrk, r.Brk = im.startBrk, im.brk
	h, b := im.measure()
	r.BrkHeadroom = h
	r.BrkUsable = h
	if b.end != 0 {
		m := im.named(&b)
		r.BoundedBy = &m
		// brk's own check: the new break plus a page must stay below the
		// next mapping, and below its guard gap if it is a stack.
		keep, why := uint64(pageSize), "brk keeps a page below the next mapping"
		if im.isStack(&b) {
			keep, why = pageSize+stackGuardGap, "brk keeps a page and the stack's guard gap below the stack"
		}
		r.BrkUsable, r.BrkUsableWhy = 0, why
		if h > keep {
			r.BrkUsable = h - keep
		}
	}
	if im.squeezer != nil {
		sq := *im.squeezer
		r.Squeezer = &sq
	}
	r.BrkFailures = slices.Clone(im.failures)
	if stream {
		r.ended = im
	} else {
		r.VMAs = im.vmas()
	}
	r.LostEvents = im.lost
	r.Uncertain = im.uncertain || im.lost > 0
	r.Ended, r.EndSeq = how, seq
	return &r
}

// vmas renders the model as /proc/PID/maps would show it (see eachVMA)
// into a slice.
func (im *image) vmas() []Mapping {
	out := make([]Mapping, 0, im.len())
	im.eachVMA(func(m *Mapping) bool {
		// Field by field into the slot: a Mapping built aside and copied
		// in is a bulk write barrier per mapping while the collector runs
		// (and it does, for a report of 100k mappings).
		out = out[:len(out)+1]
		o := &out[len(out)-1]
		o.Start, o.End, o.Prot, o.Offset = m.Start, m.End, m.Prot, m.Offset
		o.Path, o.Placement, o.Seq = m.Path, m.Placement, m.Seq
		return true
	})
	return out
}

// eachVMA calls f with each mapping of the model as /proc/PID/maps would
// show it, in address order, while f returns true: regions joined where
// the kernel would hold one VMA, anonymous ones labelled "[heap]" and
// "[stack]" by the kernel's rules (vma_is_initial_heap/_stack), then
// neighbours that the labels made alike joined (MergeAdjacent). It builds
// one mapping at a time, so a report of 262k mappings is written without
// 21 MB of them in memory. The *Mapping is reused: f copies what it
// keeps, and must not look anything up in the model.
func (im *image) eachVMA(f func(*Mapping) bool) {
	var (
		joined, shown     Mapping // a VMA being joined; a labelled one being merged
		haveJoin, haveOut bool
		last              region
		lastPath          pathID
		lastName          string
	)
	// show labels a joined VMA and merges it onto the one before or
	// hands that one to f.
	show := func(m *Mapping) bool {
		if m.Path == "" {
			switch {
			case m.Start <= im.brk && m.End >= im.startBrk:
				m.Path = "[heap]"
			case m.Start <= im.startStack && m.End >= im.startStack:
				m.Path = "[stack]"
			}
		}
		if haveOut && continues(&shown, m) {
			shown.End = m.End
			return true
		}
		if haveOut && !f(&shown) {
			return false
		}
		shown, haveOut = *m, true
		return true
	}
	for _, r := range im.r {
		if haveJoin && last.end == r.start && last.flags == r.flags && last.path == r.path &&
			(!r.path.fileBacked() || last.off+(last.end-last.start) == r.off) {
			joined.End = r.end
			last = r
			continue
		}
		if haveJoin && !show(&joined) {
			return
		}
		// Neighbours mostly share a path: look it up once per run.
		if r.path != lastPath {
			lastPath, lastName = r.path, r.path.String()
		}
		joined = Mapping{Start: r.start, End: r.end, Prot: protString(r.flags), Offset: r.off,
			Path: lastName, Placement: r.place.Placement(), Seq: r.seq}
		haveJoin, last = true, r
	}
	if haveJoin && !show(&joined) {
		return
	}
	if haveOut {
		f(&shown)
	}
}
