package layout

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestTreeMatchesSlice drives the tree and the sorted slice it replaced
// with the same random changes, over enough regions for a tree three
// levels deep, and wants the same regions in the same order after each
// batch, and the same answers to every lookup.
func TestTreeMatchesSlice(t *testing.T) {
	files := []pathID{0, internPath("/lib/a.so"), internPath("/lib/b.so"), internPath("[vdso]")}
	for seed := range uint64(4) {
		rng := rand.New(rand.NewPCG(seed, 18))
		var tr space
		var ref sliceSpace
		const pages = 1 << 16
		addr := func() uint64 { return 0x10000000 + uint64(rng.IntN(pages))*pageSize }
		for op := range 60000 {
			start := addr()
			end := start + uint64(1+rng.IntN(1+rng.IntN(4)))*pageSize
			if rng.IntN(50) == 0 {
				end += uint64(rng.IntN(2048)) * pageSize // now and then a wide change
			}
			switch k := rng.IntN(10); {
			case k < 5:
				r := region{start: start, end: end, seq: uint64(rng.IntN(3)), flags: uint8(rng.IntN(4)),
					path: files[rng.IntN(len(files))], place: placeKind(rng.IntN(3))}
				if r.path.fileBacked() {
					r.off = uint64(rng.IntN(4)) * pageSize
				}
				tr.insert(r)
				ref.insert(r)
			case k < 7:
				tr.remove(start, end)
				ref.remove(start, end)
			case k < 9:
				prot := uint8(rng.IntN(8))
				tr.protect(start, end, prot)
				ref.protect(start, end, prot)
			default:
				if g, w := tr.mappedEnd(start, end), ref.mappedEnd(start, end); g != w {
					t.Fatalf("seed %d op %d: mappedEnd(%#x, %#x) = %#x, want %#x", seed, op, start, end, g, w)
				}
			}
			got, ok := tr.search(start)
			if i := ref.search(start); ok != (i < len(ref.r)) || ok && got != ref.r[i] {
				t.Fatalf("seed %d op %d: search(%#x) = %+v %v, want index %d of %d", seed, op, start, got, ok, i, len(ref.r))
			}
			if op%500 == 0 || op == 59999 {
				var all []region
				for _, r := range tr.r {
					all = append(all, r)
				}
				if !slices.Equal(all, ref.r) || tr.len() != len(ref.r) {
					t.Fatalf("seed %d op %d: tree has %d regions (len %d), slice %d; first difference at %d",
						seed, op, len(all), tr.len(), len(ref.r), firstDiff(all, ref.r))
				}
				if err := tr.root.check(); err != nil {
					t.Fatalf("seed %d op %d: %v", seed, op, err)
				}
				c := tr.clone()
				c.remove(0, ^uint64(0)>>1)
				if n := 0; func() bool { tr.from(0, func(region) bool { n++; return true }); return n != len(ref.r) }() {
					t.Fatalf("seed %d op %d: a clone's change reached the original", seed, op)
				}
			}
		}
		t.Logf("seed %d: %d regions at the end", seed, len(ref.r))
	}
}

// check verifies what lookups rely on: a leaf's packed ends are its
// regions' ends and its marks the ends that close its blocks, and an inner node's maxima its children's last ends.
func (nd *node) check() error {
	if nd.in == nil {
		for i := range nd.n {
			if nd.ends[i] != nd.items[i].end {
				return fmt.Errorf("leaf end %d is %#x, its region ends at %#x", i, nd.ends[i], nd.items[i].end)
			}
		}
		for k := 0; k < markBlocks && 8*k+7 < nd.n; k++ {
			if nd.marks[k] != nd.ends[8*k+7] {
				return fmt.Errorf("leaf mark %d is %#x, end %d is %#x", k, nd.marks[k], 8*k+7, nd.ends[8*k+7])
			}
		}
		return nil
	}
	for i := range nd.n {
		if m, e := nd.in.max[i], nd.in.kids[i].lastEnd(); m != e {
			return fmt.Errorf("max %d is %#x, the child ends at %#x", i, m, e)
		}
		if err := nd.in.kids[i].check(); err != nil {
			return err
		}
	}
	return nil
}

func firstDiff(a, b []region) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// sliceSpace is the model as it was before the tree: a sorted slice,
// O(n) per change. It is the oracle the tree must agree with.
type sliceSpace struct {
	r []region
}

// search returns the index of the first region that ends above addr.
func (s *sliceSpace) search(addr uint64) int {
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
func (s *sliceSpace) splitAt(addr uint64) {
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
func (s *sliceSpace) remove(start, end uint64) {
	if start < end {
		s.replace(start, end, nil)
	}
}

// insert maps r, replacing whatever was in its range (MAP_FIXED semantics).
func (s *sliceSpace) insert(r region) {
	if r.start < r.end {
		i := s.replace(r.start, r.end, &r)
		s.coalesce(i-1, i+1)
	}
}

// replace clears [start, end) and puts r (when not nil) there, returning
// r's index. It moves the tail of the slice at most once, as this is the
// hot path: a region cut in two makes room for r, and r takes the slot of
// the first region it covers entirely.
func (s *sliceSpace) replace(start, end uint64, r *region) int {
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
func (s *sliceSpace) protect(start, end uint64, prot uint8) {
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
func (s *sliceSpace) mappedEnd(start, end uint64) uint64 {
	at := start
	for i := s.search(start); i < len(s.r) && s.r[i].start <= at && at < end; i++ {
		at = s.r[i].end
	}
	return min(at, end)
}

// coalesce joins same-origin neighbours among regions lo..hi (inclusive,
// clipped to the slice), undoing splits that a later change made moot.
func (s *sliceSpace) coalesce(lo, hi int) {
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

// TestTreeFillsSequential: a mapping made into many VMAs by mprotect up
// its pages, below a few regions (libraries above it), leaves the leaves
// at least two thirds full, not half: a 262k-VMA process then needs a
// third fewer nodes to allocate, fault in and miss in the cache. Random
// inserts still fill them to more than half.
func TestTreeFillsSequential(t *testing.T) {
	fill := func(s *space) float64 {
		leaves := 0
		var walk func(nd *node)
		walk = func(nd *node) {
			if nd.in == nil {
				leaves++
				return
			}
			for _, k := range nd.in.kids[:nd.n] {
				walk(k)
			}
		}
		walk(s.root)
		return float64(s.len()) / float64(leaves) / fan
	}
	const n = 1 << 14
	base := uint64(0x100000000)
	var seq space
	seq.insert(region{start: base, end: base + n*pageSize, flags: flagRead | flagWrite, seq: 1})
	for k := range uint64(21) {
		at := base + (n+2*k)*pageSize
		seq.insert(region{start: at, end: at + pageSize, flags: flagRead, seq: 2 + k})
	}
	for i := uint64(1); i < n; i += 2 {
		seq.protect(base+i*pageSize, base+(i+1)*pageSize, flagRead)
	}
	if err := seq.root.check(); err != nil {
		t.Fatal(err)
	}
	if f := fill(&seq); seq.len() != n+21 || f < 2.0/3 {
		t.Errorf("sequential: %d regions, leaves %.0f%% full, want %d and at least 67%%", seq.len(), 100*f, n+21)
	}
	var rnd space
	rng := uint64(1)
	for k := range uint64(n) {
		rng = rng*6364136223846793005 + 1442695040888963407
		at := base + (rng>>34)*2*pageSize
		rnd.insert(region{start: at, end: at + pageSize, seq: k + 1})
	}
	if f := fill(&rnd); f < 0.55 {
		t.Errorf("random: leaves %.0f%% full, want more than 55%%", 100*f)
	}
}
