package layout

import "slices"

const pageSize = 4096

// Flag bits of a region: the parts of vm_flags that /proc/PID/maps shows or
// that decide merging and brk's guard gap.
const (
	flagRead      uint8 = 1 << iota // VM_READ
	flagWrite                       // VM_WRITE
	flagExec                        // VM_EXEC
	flagShared                      // VM_MAYSHARE: /proc prints 's'
	flagGrowsDown                   // VM_GROWSDOWN: brk keeps the stack guard gap below it

	protFlags = flagRead | flagWrite | flagExec
)

// protNames maps flags&0xf to /proc/PID/maps notation.
var protNames = [16]string{
	"---p", "r--p", "-w-p", "rw-p", "--xp", "r-xp", "-wxp", "rwxp",
	"---s", "r--s", "-w-s", "rw-s", "--xs", "r-xs", "-wxs", "rwxs",
}

func protString(flags uint8) string { return protNames[flags&0xf] }

// placeKind is Placement as a byte, to keep regions small.
type placeKind uint8

const (
	placeNone placeKind = iota
	placeExec
	placeFixed
	placeFixedNoReplace
	placeHint
	placeHintIgnored
	placeBottomUp
	placeTopDown
	placeMremap
	placeBrk
	placeProc
)

var placeNames = [...]Placement{
	placeNone: PlacementNone, placeExec: PlacementExec, placeFixed: PlacementFixed,
	placeFixedNoReplace: PlacementFixedNoReplace, placeHint: PlacementHint,
	placeHintIgnored: PlacementHintIgnored, placeBottomUp: PlacementBottomUp,
	placeTopDown: PlacementTopDown, placeMremap: PlacementMremap, placeBrk: PlacementBrk,
	placeProc: PlacementProc,
}

func (p placeKind) Placement() Placement {
	if int(p) < len(placeNames) {
		return placeNames[p]
	}
	return PlacementNone
}

// region is one modelled range. Regions are finer than the kernel's VMAs:
// two neighbours with the same attributes but different origins (event,
// placement) stay apart so that the squeezer can be named exactly.
type region struct {
	start, end uint64
	off        uint64 // file offset of start in bytes; 0 when not file backed
	seq        uint64 // event that created the range
	path       string // "" for anonymous memory; never "[heap]"/"[stack]" (labels are computed)
	flags      uint8
	place      placeKind
}

// fileBacked says whether /proc shows an offset for a mapping with this
// path: files (also "/dev/zero (deleted)" for shared anonymous memory), not
// anonymous memory or special mappings like "[vdso]".
func fileBacked(path string) bool { return path != "" && path[0] != '[' }

// offsetAt is the file offset of addr inside r.
func (r *region) offsetAt(addr uint64) uint64 {
	if !fileBacked(r.path) {
		return 0
	}
	return r.off + (addr - r.start)
}

func (r *region) mapping() Mapping {
	return Mapping{
		Start: r.start, End: r.end, Prot: protString(r.flags), Offset: r.off,
		Path: r.path, Placement: r.place.Placement(), Seq: r.seq,
	}
}

// sameOrigin says whether b continues a: adjacent, same attributes, and
// from the same event, so the two can be held as one region.
func sameOrigin(a, b *region) bool {
	return a.end == b.start && a.flags == b.flags && a.path == b.path &&
		a.place == b.place && a.seq == b.seq &&
		(!fileBacked(a.path) || a.off+(a.end-a.start) == b.off)
}

// space is an address space: non-overlapping regions sorted by start.
type space struct {
	r []region
}

// search returns the index of the first region that ends above addr.
func (s *space) search(addr uint64) int {
	lo, hi := 0, len(s.r)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s.r[m].end > addr {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo
}

// splitAt makes addr a region boundary when it falls inside a region.
func (s *space) splitAt(addr uint64) {
	i := s.search(addr)
	if i == len(s.r) || s.r[i].start >= addr {
		return
	}
	right := s.r[i]
	right.start = addr
	right.off = s.r[i].offsetAt(addr)
	s.r = slices.Insert(s.r, i+1, right)
	s.r[i].end = addr
}

// remove unmaps [start, end).
func (s *space) remove(start, end uint64) {
	if start < end {
		s.replace(start, end, nil)
	}
}

// insert maps r, replacing whatever was in its range (MAP_FIXED semantics).
func (s *space) insert(r region) {
	if r.start < r.end {
		i := s.replace(r.start, r.end, &r)
		s.coalesce(i-1, i+1)
	}
}

// replace clears [start, end) and puts r (when not nil) there, returning
// r's index. It moves the tail of the slice at most once, as this is the
// hot path: a region cut in two makes room for r, and r takes the slot of
// the first region it covers entirely.
func (s *space) replace(start, end uint64, r *region) int {
	i := s.search(start)
	if i < len(s.r) && s.r[i].start < start {
		if s.r[i].end > end { // a hole in the middle of one region
			right := s.r[i]
			right.start, right.off = end, s.r[i].offsetAt(end)
			s.r[i].end = start
			if r == nil {
				s.r = slices.Insert(s.r, i+1, right)
			} else {
				s.r = slices.Insert(s.r, i+1, *r, right)
			}
			return i + 1
		}
		s.r[i].end = start
		i++
	}
	j := i
	for j < len(s.r) && s.r[j].end <= end {
		j++
	}
	if j < len(s.r) && s.r[j].start < end {
		s.r[j].off = s.r[j].offsetAt(end)
		s.r[j].start = end
	}
	// Regions i..j-1 lay inside [start, end).
	if r == nil {
		s.r = slices.Delete(s.r, i, j)
		return i
	}
	if j == i {
		s.r = slices.Insert(s.r, i, *r)
		return i
	}
	s.r[i] = *r
	s.r = slices.Delete(s.r, i+1, j)
	return i
}

// protect sets the protection bits of the mapped parts of [start, end).
func (s *space) protect(start, end uint64, prot uint8) {
	if start >= end {
		return
	}
	s.splitAt(start)
	s.splitAt(end)
	i := s.search(start)
	j := i
	for ; j < len(s.r) && s.r[j].start < end; j++ {
		s.r[j].flags = s.r[j].flags&^protFlags | prot&protFlags
	}
	s.coalesce(i-1, j)
}

// mappedEnd returns the end of the run of contiguous mapped pages that
// starts at start, capped at end; start itself when start is not mapped.
func (s *space) mappedEnd(start, end uint64) uint64 {
	at := start
	for i := s.search(start); i < len(s.r) && s.r[i].start <= at && at < end; i++ {
		at = s.r[i].end
	}
	return min(at, end)
}

// coalesce joins same-origin neighbours among regions lo..hi (inclusive,
// clipped to the slice), undoing splits that a later change made moot.
func (s *space) coalesce(lo, hi int) {
	lo = max(lo, 0)
	hi = min(hi, len(s.r)-1)
	if lo >= hi {
		return
	}
	w := lo
	for k := lo + 1; k <= hi; k++ {
		if sameOrigin(&s.r[w], &s.r[k]) {
			s.r[w].end = s.r[k].end
			continue
		}
		w++
		s.r[w] = s.r[k]
	}
	if w < hi {
		s.r = slices.Delete(s.r, w+1, hi+1)
	}
}
