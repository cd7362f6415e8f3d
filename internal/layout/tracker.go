package layout

import (
	"math/bits"
	"slices"
	"sort"

	"github.com/mmtrace/mmtrace/internal/events"
)

// DefaultSqueezeThreshold is the headroom below which a new mapping
// squeezes the brk area, when Options.SqueezeThreshold is 0.
const DefaultSqueezeThreshold = 64 << 20

// Kernel ABI values (include/uapi/asm-generic/mman*.h, linux/mman.h,
// linux/personality.h, linux/mm.h). Fixed by the syscall ABI.
const (
	mapShared         = 0x01
	mapSharedValidate = 0x03
	mapTypeMask       = 0x0f
	mapFixed          = 0x10
	mapAnonymous      = 0x20
	mapGrowsDown      = 0x100
	mapFixedNoReplace = 0x100000

	mremapMayMove   = 1
	mremapFixed     = 2
	mremapDontUnmap = 4

	vmRead      = 0x1
	vmWrite     = 0x2
	vmExec      = 0x4
	vmMayShare  = 0x80
	vmGrowsDown = 0x100

	addrCompatLayout = 0x0200000
	readImpliesExec  = 0x0400000
	personaQuery     = 0xffffffff

	stackGuardGap = 256 * pageSize // default stack_guard_gap
	errnoENOMEM   = 12
	maxErrno      = 4095

	rlimInfinity = ^uint64(0)

	// Top of user space when an image does not say (seeded from /proc).
	taskSize64 = 1<<47 - pageSize
	taskSize32 = 0xffffe000

	sharedAnonPath = "/dev/zero (deleted)" // how /proc names MAP_SHARED|MAP_ANONYMOUS memory
)

// Options tune a Tracker.
type Options struct {
	SqueezeThreshold uint64 // bytes; 0 means DefaultSqueezeThreshold
	LegacyVALayout   bool   // the host's vm.legacy_va_layout sysctl was 1 (for layout_reason)
	// PersonaCallsUnseen: personality(2) calls are not traced (the lock
	// path), so a personality at exec may have been set just before it.
	PersonaCallsUnseen bool
	// StreamVMAs: the reports of ended images keep the image and leave
	// VMAs nil, for a consumer that reads the layout once, in order
	// (Report.EachVMA), and need not hold it all (21 MB at 262k
	// mappings). Live snapshots always fill VMAs: the image goes on.
	StreamVMAs bool
}

// personaUnseen is the personality source when calls are not traced.
const personaUnseen = "inherited, or set by personality(2) before exec (--lock-path does not see that call)"

// Tracker holds the model of every live traced process image.
type Tracker struct {
	opts    Options
	images  map[uint32]*image
	persona map[uint32]personaCall // last personality(2) call per PID, consumed at exec
	scratch []region               // reused by mremap
}

type personaCall struct {
	persona uint32
	seq     uint64
}

// NewTracker returns an empty Tracker.
func NewTracker(opts Options) *Tracker {
	if opts.SqueezeThreshold == 0 {
		opts.SqueezeThreshold = DefaultSqueezeThreshold
	}
	return &Tracker{
		opts:    opts,
		images:  make(map[uint32]*image),
		persona: make(map[uint32]personaCall),
	}
}

// Apply feeds one event to the model and says what it did.
func (t *Tracker) Apply(ev *events.Event) Change {
	if ev == nil {
		return Change{}
	}
	switch ev.Kind {
	case events.KindExec:
		return t.exec(ev)
	case events.KindFork:
		return t.fork(ev)
	case events.KindLost:
		return t.lost(ev)
	case events.KindPersonality:
		if uint32(ev.Addr) != personaQuery && !failed(ev.Ret) {
			t.persona[ev.PID] = personaCall{persona: uint32(ev.Addr), seq: ev.Seq}
		}
	}

	im := t.images[ev.PID]
	if im == nil {
		if ev.Kind == events.KindExit {
			delete(t.persona, ev.PID)
		}
		return Change{}
	}
	ch := Change{Tracked: true, Comm: im.rep.Comm, Headroom: im.headroom}
	if ev.Kind == events.KindVMA {
		t.vma(im, ev, &ch)
		return ch
	}
	if im.vmasDue > 0 {
		// The snapshot was cut short: its remaining VMAs never came.
		im.uncertain = true
		t.finishSnapshot(im, &ch)
	}

	switch ev.Kind {
	case events.KindMmap:
		im.own = true
		t.mmap(im, ev, &ch)
	case events.KindMunmap:
		im.own = true
		if ev.Ret == 0 {
			im.remove(ev.Addr, ev.Addr+pageAlign(ev.Len))
			t.settle(im, &ch, 0, 0)
		}
	case events.KindMprotect:
		im.own = true
		t.mprotect(im, ev)
		t.settle(im, &ch, 0, 0)
	case events.KindMremap:
		im.own = true
		t.mremap(im, ev, &ch)
	case events.KindBrk:
		im.own = true
		t.brk(im, ev, &ch)
	case events.KindPersonality:
		if uint32(ev.Addr) != personaQuery && !failed(ev.Ret) {
			im.persona = uint32(ev.Addr)
		}
	case events.KindExit:
		delete(t.images, ev.PID)
		delete(t.persona, ev.PID)
		if r := im.end("exit", ev.Seq, t.opts.StreamVMAs); r != nil {
			ch.Ended = []*Report{r}
		}
	}
	return ch
}

// Note adds a note to a live image's report, marking it uncertain if the
// note says something could not be seen.
func (t *Tracker) Note(pid uint32, note string, uncertain bool) {
	im := t.images[pid]
	if im == nil {
		return
	}
	if !slices.Contains(im.rep.Notes, note) {
		im.rep.Notes = append(slices.Clip(im.rep.Notes), note)
	}
	if uncertain {
		im.uncertain = true
	}
}

// Snapshot returns the current state of a live image, or nil.
func (t *Tracker) Snapshot(pid uint32) *Report {
	im := t.images[pid]
	if im == nil {
		return nil
	}
	return im.report("live", 0, false)
}

// Finish ends every live image (mmtrace is stopping) and returns their
// reports sorted by PID.
func (t *Tracker) Finish() []*Report {
	out := make([]*Report, 0, len(t.images))
	for pid, im := range t.images {
		out = append(out, im.report("stopped", 0, t.opts.StreamVMAs))
		delete(t.images, pid)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PID < out[j].PID })
	return out
}

func (t *Tracker) exec(ev *events.Event) Change {
	x := ev.Exec
	if x == nil {
		return Change{}
	}
	ch := Change{Tracked: true, Comm: x.Comm}
	if old := t.images[ev.PID]; old != nil {
		if r := old.end("exec", ev.Seq, t.opts.StreamVMAs); r != nil {
			ch.Ended = []*Report{r}
		}
	}
	im := newImageFromExec(ev, t.opts)
	if pc, ok := t.persona[ev.PID]; ok {
		im.rep.PersonalitySource = personaSource(pc)
		delete(t.persona, ev.PID)
	}
	t.images[ev.PID] = im
	switch {
	case !x.VMAsKnown:
		im.uncertain = true
		im.rep.Notes = append(im.rep.Notes, "the mappings made at exec are unknown (the kernel cannot walk VMAs and /proc was gone)")
	case x.VMAsFromProc:
		im.rep.Notes = append(im.rep.Notes, "mappings at exec read from /proc/PID/maps just after the exec (this kernel has no VMA iterator); later changes from events")
	}
	im.vmasDue = x.VMACount
	if im.vmasDue == 0 {
		t.finishSnapshot(im, &ch)
	}
	ch.Headroom = im.headroom
	return ch
}

func (t *Tracker) vma(im *image, ev *events.Event, ch *Change) {
	if im.vmasDue == 0 {
		return // not part of a snapshot in progress
	}
	v := &ev.VMA
	r := region{start: v.Start, end: v.End, place: placeExec}
	if v.Path != "[heap]" && v.Path != "[stack]" { // labels are recomputed as /proc does
		r.path = internPath(v.Path)
	}
	if r.path.fileBacked() {
		r.off = v.PgOff * pageSize
	}
	r.flags = vmFlags(v.Flags)
	im.insert(r)
	im.vmasDue--
	if v.Total == 0 {
		im.uncertain = true
	}
	if im.vmasDue == 0 || (v.Total != 0 && v.Index+1 >= v.Total) {
		if v.Total != 0 && v.Index+1 >= v.Total && im.vmasDue != 0 {
			im.uncertain = true // fewer VMAs than the exec announced
		}
		t.finishSnapshot(im, ch)
	}
}

// finishSnapshot completes the exec layout and judges it: the ELF loader
// itself may have left the heap squeezed.
func (t *Tracker) finishSnapshot(im *image, ch *Change) {
	im.vmasDue = 0
	ch.SnapshotReady = true
	im.headroom, im.bound = im.measure()
	ch.Headroom = im.headroom
	t.judge(im, ch, 0, ^uint64(0))
}

func (t *Tracker) fork(ev *events.Event) Change {
	parent := t.images[ev.PID]
	if parent == nil || ev.Child == 0 || ev.Child == ev.PID {
		return Change{Tracked: parent != nil}
	}
	ch := Change{Tracked: true, Comm: parent.rep.Comm, Headroom: parent.headroom}
	t.images[ev.Child] = parent.forkCopy(ev)
	if pc, ok := t.persona[ev.PID]; ok {
		t.persona[ev.Child] = pc
	}
	return ch
}

func (t *Tracker) lost(ev *events.Event) Change {
	if ev.PID != 0 {
		im := t.images[ev.PID]
		if im == nil {
			return Change{}
		}
		im.lost += ev.Lost
		im.uncertain = true
		return Change{Tracked: true, Comm: im.rep.Comm, Headroom: im.headroom}
	}
	for _, im := range t.images {
		im.lost += ev.Lost
		im.uncertain = true
	}
	return Change{Tracked: len(t.images) > 0}
}

func (t *Tracker) mmap(im *image, ev *events.Event, ch *Change) {
	if failed(ev.Ret) {
		return
	}
	addr := uint64(ev.Ret)
	length := pageAlign(ev.Len)
	if length == 0 || addr+length < addr {
		return
	}
	r := region{start: addr, end: addr + length, seq: ev.Seq, flags: im.protToFlags(ev.Prot)}
	if ev.Flags&mapGrowsDown != 0 {
		r.flags |= flagGrowsDown
	}
	typ := ev.Flags & mapTypeMask
	shared := typ == mapShared || typ == mapSharedValidate
	switch {
	case ev.Flags&mapAnonymous != 0 || ev.Path == "/dev/zero":
		// mmap of /dev/zero is anonymous memory, private or shared
		// (shmem_zero_setup), so /proc names it as the MAP_ANONYMOUS kind.
		if shared {
			r.path = internPath(sharedAnonPath)
		}
	default:
		r.path = internPath(ev.Path)
		if r.path.fileBacked() {
			r.off = ev.Offset
		}
	}
	if shared {
		r.flags |= flagShared
	}
	r.place = im.placementOf(ev, addr)
	im.insert(r)
	ch.Placement = r.place.Placement()
	t.settle(im, ch, r.start, r.end)
}

func (t *Tracker) mprotect(im *image, ev *events.Event) {
	start := ev.Addr
	end := start + pageAlign(ev.Len)
	switch ev.Ret {
	case 0:
	case -errnoENOMEM:
		// The kernel changes VMAs in order and stops at the first hole.
		end = im.mappedEnd(start, end)
	default:
		return
	}
	im.protect(start, end, im.protToFlags(ev.Prot))
}

func (t *Tracker) mremap(im *image, ev *events.Event, ch *Change) {
	if failed(ev.Ret) {
		return
	}
	oldAddr, newAddr := ev.Addr, uint64(ev.Ret)
	oldLen, newLen := pageAlign(ev.Len), pageAlign(ev.NewLen)
	if newLen == 0 {
		return
	}

	if newAddr == oldAddr {
		switch {
		case newLen < oldLen:
			im.remove(oldAddr+newLen, oldAddr+oldLen)
			t.settle(im, ch, 0, 0)
		case newLen > oldLen:
			grown, ok := im.search(oldAddr + oldLen - 1)
			if oldLen == 0 || !ok || grown.start > oldAddr+oldLen-1 {
				return // the range was never seen: nothing to grow
			}
			at := oldAddr + oldLen
			grown.off = grown.offsetAt(at)
			grown.start, grown.end = at, oldAddr+newLen
			grown.place, grown.seq = placeMremap, ev.Seq
			im.insert(grown)
			ch.Placement = PlacementMremap
			t.settle(im, ch, grown.start, grown.end)
		}
		return
	}

	// Moved (or, with old_len 0, a second mapping of the same shared pages).
	if oldLen == 0 {
		dup, ok := im.search(oldAddr)
		if !ok || dup.start > oldAddr {
			return
		}
		dup.off = dup.offsetAt(oldAddr)
		dup.start, dup.end = newAddr, newAddr+newLen
		dup.place, dup.seq = placeMremap, ev.Seq
		im.insert(dup)
		ch.Placement = PlacementMremap
		t.settle(im, ch, dup.start, dup.end)
		return
	}
	if newLen < oldLen {
		im.remove(oldAddr+newLen, oldAddr+oldLen)
		oldLen = newLen
	}
	oldEnd := oldAddr + oldLen
	t.scratch = t.scratch[:0]
	im.from(oldAddr, func(p region) bool {
		if p.start >= oldEnd {
			return false
		}
		if p.start < oldAddr {
			p.off = p.offsetAt(oldAddr)
			p.start = oldAddr
		}
		p.end = min(p.end, oldEnd)
		t.scratch = append(t.scratch, p)
		return true
	})
	if ev.Flags&mremapDontUnmap == 0 {
		im.remove(oldAddr, oldEnd)
	}
	im.remove(newAddr, newAddr+newLen)
	delta := newAddr - oldAddr // wraps for downward moves; sums stay right mod 2^64
	for _, p := range t.scratch {
		p.start += delta
		p.end += delta
		p.place, p.seq = placeMremap, ev.Seq
		im.insert(p)
	}
	if newLen > oldLen && len(t.scratch) > 0 {
		last := t.scratch[len(t.scratch)-1]
		if last.end == oldEnd {
			tail := last
			tail.off = last.offsetAt(oldEnd)
			tail.start, tail.end = newAddr+oldLen, newAddr+newLen
			tail.place, tail.seq = placeMremap, ev.Seq
			im.insert(tail)
		}
	}
	ch.Placement = PlacementMremap
	t.settle(im, ch, newAddr, newAddr+newLen)
}

func (t *Tracker) brk(im *image, ev *events.Event, ch *Change) {
	if ev.Ret < 0 {
		return // brk never returns an error code; a negative value is garbage
	}
	result := uint64(ev.Ret)
	oldTop := pageAlign(max(im.brk, im.startBrk))
	newTop := pageAlign(max(result, im.startBrk))
	switch {
	case newTop > oldTop:
		im.insert(region{start: oldTop, end: newTop, seq: ev.Seq, place: placeBrk, flags: im.heapFlags()})
	case newTop < oldTop:
		im.remove(newTop, oldTop)
	}
	im.brk = result
	// A brk that worked returns the break asked for; one that failed
	// returns the old break, above or below what was asked.
	if ev.Addr != 0 && result != ev.Addr {
		f := BrkFailure{Seq: ev.Seq, Requested: ev.Addr, Result: result, Cause: BrkLimit}
		switch {
		case ev.Addr < im.startBrk:
			f.Cause = BrkBelowStart
		case ev.Addr > im.taskSize || pageAlign(ev.Addr) > im.taskSize:
			f.Cause = BrkBeyondSpace
		case ev.Addr > result:
			if b, ok := im.brkBlocker(pageAlign(result), pageAlign(ev.Addr)); ok {
				m := im.named(&b)
				f.BlockedBy = &m
				f.Cause = BrkBlocked
			}
		}
		im.failures = append(im.failures, f)
		ch.BrkFailure = &im.failures[len(im.failures)-1]
	}
	t.settle(im, ch, 0, 0)
}

// settle re-measures the headroom after a memory event and, if the event
// created [cs, ce), judges whether that made the squeezer.
func (t *Tracker) settle(im *image, ch *Change, cs, ce uint64) {
	before := im.headroom
	im.headroom, im.bound = im.measure()
	ch.Headroom = im.headroom
	thr := t.opts.SqueezeThreshold
	if bits.Len64(before) != bits.Len64(im.headroom) || (before < thr) != (im.headroom < thr) {
		ch.HeadroomChanged = true
	}
	if ce > cs {
		t.judge(im, ch, cs, ce)
	}
}

// judge makes the squeezer: the first mapping whose creation left the
// headroom below the threshold, being the one that bounds the heap.
func (t *Tracker) judge(im *image, ch *Change, cs, ce uint64) {
	b := &im.bound
	if im.squeezer != nil || im.headroom >= t.opts.SqueezeThreshold || b.end == 0 {
		return
	}
	if b.start < cs || b.start >= ce {
		return
	}
	im.squeezer = &Squeezer{Mapping: im.named(b), Headroom: im.headroom}
	ch.NewSqueezer = im.squeezer
}

// failed says whether a syscall return value is an error code.
func failed(ret int64) bool { return ret < 0 && ret >= -maxErrno }

func pageAlign(x uint64) uint64 { return (x + pageSize - 1) &^ (pageSize - 1) }

// vmFlags converts vm_flags to region flags.
func vmFlags(f uint64) uint8 {
	var out uint8
	if f&vmRead != 0 {
		out |= flagRead
	}
	if f&vmWrite != 0 {
		out |= flagWrite
	}
	if f&vmExec != 0 {
		out |= flagExec
	}
	if f&vmMayShare != 0 {
		out |= flagShared
	}
	if f&vmGrowsDown != 0 {
		out |= flagGrowsDown
	}
	return out
}
