package layout

import "sync"

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
// placement) stay apart so that the squeezer can be named exactly. A region
// holds no pointer (its path is interned), so the tree moves it with plain
// copies and the garbage collector never scans it.
type region struct {
	start, end uint64
	off        uint64 // file offset of start in bytes; 0 when not file backed
	seq        uint64 // event that created the range
	path       pathID // anonymous for anonymous memory; never "[heap]"/"[stack]" (labels are computed)
	flags      uint8
	place      placeKind
}

// pathID is an interned path: 0 is anonymous memory (""), and bit 0 says
// whether the path is file backed, so that test needs no lookup.
type pathID uint32

// paths interns every path the model has seen, for the life of the
// process: mappings name few distinct files (libraries, data files), and a
// region then holds 4 bytes instead of a string.
var paths struct {
	sync.RWMutex
	ids   map[string]pathID
	names []string
}

// internPath returns the id of p.
func internPath(p string) pathID {
	if p == "" {
		return 0
	}
	paths.RLock()
	id, ok := paths.ids[p]
	paths.RUnlock()
	if ok {
		return id
	}
	paths.Lock()
	defer paths.Unlock()
	if id, ok := paths.ids[p]; ok {
		return id
	}
	if paths.ids == nil {
		paths.ids = make(map[string]pathID)
	}
	paths.names = append(paths.names, p)
	id = pathID(len(paths.names)) << 1
	if fileBacked(p) {
		id |= 1
	}
	paths.ids[p] = id
	return id
}

// String returns the path.
func (id pathID) String() string {
	if id == 0 {
		return ""
	}
	paths.RLock()
	defer paths.RUnlock()
	return paths.names[id>>1-1]
}

// fileBacked says whether /proc shows an offset for a mapping with this
// path: files (also "/dev/zero (deleted)" for shared anonymous memory), not
// anonymous memory or special mappings like "[vdso]".
func fileBacked(path string) bool { return path != "" && path[0] != '[' }

func (id pathID) fileBacked() bool { return id&1 != 0 }

// offsetAt is the file offset of addr inside r.
func (r *region) offsetAt(addr uint64) uint64 {
	if !r.path.fileBacked() {
		return 0
	}
	return r.off + (addr - r.start)
}

func (r *region) mapping() Mapping {
	return Mapping{
		Start: r.start, End: r.end, Prot: protString(r.flags), Offset: r.off,
		Path: r.path.String(), Placement: r.place.Placement(), Seq: r.seq,
	}
}

// sameOrigin says whether b continues a: adjacent, same attributes, and
// from the same event, so the two can be held as one region.
func sameOrigin(a, b *region) bool {
	return a.end == b.start && a.flags == b.flags && a.path == b.path &&
		a.place == b.place && a.seq == b.seq &&
		(!a.path.fileBacked() || a.off+(a.end-a.start) == b.off)
}

// space is an address space: non-overlapping regions in a B+ tree (see
// tree.go), so that every change costs O(log n) plus the regions it covers,
// as in the kernel's maple tree.
type space struct {
	root   *node
	count  int
	window []region // scratch for protect

	// cur is the cursor of the last seek, look the one of the last
	// search (the heap's bound, every event: kept apart so that it does
	// not pull cur away from where the changes are). Each is a valid path
	// while shape, bumped by every split, merge and removal of a node, is
	// what it was when the path was laid.
	cur, look cursor
	shape     uint64
}

// clone returns a deep copy of s.
func (s *space) clone() space {
	if s.root == nil {
		return space{}
	}
	return space{root: s.root.clone(), count: s.count}
}

// len is the number of regions.
func (s *space) len() int { return s.count }

// search returns the first region that ends above addr (false: none).
func (s *space) search(addr uint64) (region, bool) {
	c := s.seekWith(&s.look, addr)
	if !c.ok() {
		return region{}, false
	}
	return *c.at(), true
}

// r yields the regions in address order with their rank, so that
// `for i, r := range s.r` reads as it did when regions were a slice. The
// loop body must not look anything up in s (it walks s's one cursor).
func (s *space) r(yield func(int, region) bool) {
	i := 0
	for c := s.seek(0); c.ok(); c.next() {
		if !yield(i, *c.at()) {
			return
		}
		i++
	}
}

// from calls f for each region ending above addr, in address order, while
// f returns true. f must not change s nor look anything up in it.
func (s *space) from(addr uint64, f func(region) bool) {
	for c := s.seek(addr); c.ok() && f(*c.at()); c.next() {
	}
}

// insertAt puts r at the cursor's place and restores the tree.
func (s *space) insertAt(c *cursor, rs ...region) {
	nd, i := c.leaf()
	nd.insertAt(i, rs...)
	s.count += len(rs)
	s.fix(c)
}

// splitAt makes addr a region boundary when it falls inside a region.
func (s *space) splitAt(addr uint64) {
	c := s.seek(addr)
	if !c.ok() || c.at().start >= addr {
		return
	}
	x := c.at()
	right := *x
	right.start, right.off = addr, x.offsetAt(addr)
	c.setEnd(addr)
	c.path[c.depth-1].i++
	s.insertAt(c, right)
}

// remove unmaps [start, end).
func (s *space) remove(start, end uint64) {
	if start < end {
		s.clear(start, end)
	}
}

// clear cuts [start, end) out of the regions that overlap it.
func (s *space) clear(start, end uint64) {
	for {
		c := s.seek(start)
		if !c.ok() || c.at().start >= end {
			return
		}
		x := c.at()
		switch {
		case x.start < start && x.end > end: // a hole in the middle of one region
			right := *x
			right.start, right.off = end, x.offsetAt(end)
			c.setEnd(start)
			c.path[c.depth-1].i++
			s.insertAt(c, right)
			return
		case x.start < start: // keep the part below start
			c.setEnd(start)
			s.fix(c)
		case x.end > end: // keep the part above end (its end, the key, stays)
			x.off = x.offsetAt(end)
			x.start = end
			return
		default: // drop the regions of this leaf that lie inside
			nd, i := c.leaf()
			j := i + 1
			for j < nd.n && nd.ends[j] <= end {
				j++
			}
			nd.deleteRange(i, j)
			s.count -= j - i
			s.fix(c)
		}
	}
}

// insert maps r, replacing whatever was in its range (MAP_FIXED semantics),
// and joins it with same-origin neighbours.
func (s *space) insert(r region) {
	if r.start >= r.end {
		return
	}
	s.clear(r.start, r.end)
	// Now the first region ending at or above r.start either ends at
	// r.start (the neighbour below) or starts at or above r.end.
	c := s.seek(max(r.start, 1) - 1)
	nd, i := c.leaf()
	if i < nd.n && nd.ends[i] == r.start {
		if p := &nd.items[i]; sameOrigin(p, &r) {
			c.setEnd(r.end)
			r = *p
			s.fix(c)
			s.joinNext(r)
			return
		}
		c.path[c.depth-1].i++
	}
	s.insertAt(c, r)
	s.joinNext(r)
}

// joinNext merges the region after r (in the tree) into r when it
// continues it.
func (s *space) joinNext(r region) {
	c := s.seek(r.end)
	if !c.ok() || !sameOrigin(&r, c.at()) {
		return
	}
	n := c.at()
	n.start, n.off = r.start, r.off // n's end, the key, stays
	c = s.seek(r.start)             // r itself
	nd, i := c.leaf()
	nd.deleteRange(i, i+1)
	s.count--
	s.fix(c)
}

// protect sets the protection bits of the mapped parts of [start, end).
func (s *space) protect(start, end uint64, prot uint8) {
	if start >= end {
		return
	}
	s.splitAt(start)
	s.splitAt(end)
	for c := s.seek(start); c.ok() && c.at().start < end; c.next() {
		x := c.at()
		x.flags = x.flags&^protFlags | prot&protFlags
	}
	// Join same-origin neighbours in the window from the region that ends
	// at start to the one that starts at end, undoing splits that this
	// change made moot.
	w := s.window[:0]
	s.from(max(start, 1)-1, func(x region) bool {
		w = append(w, x)
		return x.start < end
	})
	s.window = w
	var run region
	joined := false
	for k, x := range w {
		switch {
		case k > 0 && sameOrigin(&run, &x):
			run.end = x.end
			joined = true
			continue
		case joined:
			s.clear(run.start, run.end)
			s.put(run)
			joined = false
		}
		run = x
	}
	if joined {
		s.clear(run.start, run.end)
		s.put(run)
	}
}

// put inserts r into a hole, as it is.
func (s *space) put(r region) {
	c := s.seek(r.start)
	s.insertAt(c, r)
}

// mappedEnd returns the end of the run of contiguous mapped pages that
// starts at start, capped at end; start itself when start is not mapped.
func (s *space) mappedEnd(start, end uint64) uint64 {
	at := start
	s.from(start, func(x region) bool {
		if x.start > at || at >= end {
			return false
		}
		at = x.end
		return true
	})
	return min(at, end)
}
