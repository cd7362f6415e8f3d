package layout

// A B+ tree of regions ordered by end (the same order as by start, as
// regions do not overlap), specialised for the one question the model asks
// most, the kernel's find_vma: the first region ending above an address.
//
// It is ours rather than github.com/google/btree's BTreeG because the model
// edits regions where it finds them: a split, a trim or a merge is one
// descent to a leaf and an edit there, then a walk back up the path, where a
// generic ordered set needs a lookup, a delete and an insert, each a descent
// with the comparison called through a function value. CPU time per event
// of BenchmarkChurnAtScale (munmap + MAP_FIXED at random among n regions,
// on the 2-core test machine) at 1k/16k/64k/262k regions: BTreeG (degree
// 16) 800/1130/2330/1870 ns, this tree 200/330/600/430 ns, the sorted slice
// before them 470/5700 ns and ~700 us at 262k.

// fan is the most regions in a leaf and children in an inner node. 32
// regions of 40 bytes are 1280 bytes: a leaf edit moves at most that.
const fan = 64

// node is a leaf (regions in items, inline, so that reaching a leaf costs
// one cache miss and not two) or an inner node (in set). The arrays have
// room for two more than fan, so an edit may overfill a node before fix
// splits it. Inner nodes are a 20th of the nodes: their unused items cost
// little.
type node struct {
	n int
	// marks[k] is ends[8k+7], the last end of the k-th block of 8, for
	// the blocks that are full: a lookup in a leaf reads this line, then
	// the one line of ends its block is in, then the region. Each is a
	// cache miss in a tree too big for the cache; a binary search over
	// the ends alone waited for four or five lines, one after another.
	marks [markBlocks]uint64
	// ends are the leaf's items' ends, packed, a block of 8 to a cache
	// line (ends starts 64 bytes in, and nodes are 64-byte aligned: a
	// node is 3240 bytes, in Go's 3456-byte size class, a multiple of 64).
	ends  [fan + 2]uint64
	in    *inner
	items [fan + 2]region
}

// markBlocks is how many blocks of 8 ends have a mark: as many as fit
// beside n in the node's first cache line. Ends past them (blocks 7 and
// 8, the last 10 of 66) are searched without one.
const markBlocks = 7

// remark updates the marks of the blocks at or after ends[i].
func (nd *node) remark(i int) {
	for k := i / 8; k < markBlocks && 8*k+7 < nd.n; k++ {
		nd.marks[k] = nd.ends[8*k+7]
	}
}

type inner struct {
	max  [fan + 2]uint64 // the largest end under each child
	kids [fan + 2]*node  // children in address order
}

func newLeaf() *node  { return &node{} }
func newInner() *node { return &node{in: new(inner)} }

// lastEnd is the largest end under nd (0 when empty).
func (nd *node) lastEnd() uint64 {
	switch {
	case nd.n == 0:
		return 0
	case nd.in == nil:
		return nd.items[nd.n-1].end
	}
	return nd.in.max[nd.n-1]
}

// insertAt puts rs at index i of leaf nd.
func (nd *node) insertAt(i int, rs ...region) {
	copy(nd.items[i+len(rs):nd.n+len(rs)], nd.items[i:nd.n])
	copy(nd.ends[i+len(rs):nd.n+len(rs)], nd.ends[i:nd.n])
	copy(nd.items[i:], rs)
	for k := range rs {
		nd.ends[i+k] = rs[k].end
	}
	nd.n += len(rs)
	nd.remark(i)
}

// deleteRange removes items (or kids) i..j-1 of nd.
func (nd *node) deleteRange(i, j int) {
	if in := nd.in; in == nil {
		copy(nd.items[i:], nd.items[j:nd.n])
		copy(nd.ends[i:], nd.ends[j:nd.n])
	} else {
		copy(in.kids[i:], in.kids[j:nd.n])
		copy(in.max[i:], in.max[j:nd.n])
		clear(in.kids[nd.n-(j-i) : nd.n])
	}
	nd.n -= j - i
	if nd.in == nil {
		nd.remark(i)
	}
}

// insertKid puts kid at index i of inner node nd.
func (nd *node) insertKid(i int, kid *node) {
	in := nd.in
	copy(in.kids[i+1:nd.n+1], in.kids[i:nd.n])
	copy(in.max[i+1:nd.n+1], in.max[i:nd.n])
	in.kids[i], in.max[i] = kid, kid.lastEnd()
	nd.n++
}

// splitAt moves nd's items (or kids) from h on to a new node and returns
// it.
func (nd *node) splitAt(h int) *node {
	var r *node
	if in := nd.in; in == nil {
		r = newLeaf()
		copy(r.items[:], nd.items[h:nd.n])
		copy(r.ends[:], nd.ends[h:nd.n])
	} else {
		r = newInner()
		copy(r.in.kids[:], in.kids[h:nd.n])
		copy(r.in.max[:], in.max[h:nd.n])
		clear(in.kids[h:nd.n])
	}
	r.n = nd.n - h
	nd.n = h
	if r.in == nil {
		r.remark(0)
	}
	return r
}

// absorb appends the contents of r (a sibling at the same level) to nd.
func (nd *node) absorb(r *node) {
	at := nd.n
	if nd.in == nil {
		copy(nd.items[nd.n:], r.items[:r.n])
		copy(nd.ends[nd.n:], r.ends[:r.n])
	} else {
		copy(nd.in.kids[nd.n:], r.in.kids[:r.n])
		copy(nd.in.max[nd.n:], r.in.max[:r.n])
	}
	nd.n += r.n
	if nd.in == nil {
		nd.remark(at)
	}
}

func (nd *node) clone() *node {
	c := *nd
	if nd.in != nil {
		in := *nd.in
		for i := range nd.n {
			in.kids[i] = nd.in.kids[i].clone()
		}
		c.in = &in
	}
	return &c
}

// maxDepth bounds the tree's height: fan/4 (the fewest children an inner
// node keeps after merges, but for the root) to the 16th power is more
// regions than an address space can hold.
const maxDepth = 16

// cursor is a path from the root to an index in a leaf. A split, merge or
// removal of a node invalidates it (space.shape counts them).
type cursor struct {
	depth int
	shape uint64 // the space's shape when the path was laid
	path  [maxDepth]struct {
		nd *node
		i  int
	}
}

func (c *cursor) leaf() (*node, int) {
	p := &c.path[c.depth-1]
	return p.nd, p.i
}

// ok says whether the cursor is at a region.
func (c *cursor) ok() bool {
	nd, i := c.leaf()
	return i < nd.n
}

// setEnd changes the end of the region under the cursor; fix must follow.
func (c *cursor) setEnd(end uint64) {
	nd, i := c.leaf()
	nd.items[i].end, nd.ends[i] = end, end
	if i%8 == 7 && i/8 < markBlocks {
		nd.marks[i/8] = end
	}
}

// at is the region under the cursor (when ok). Its end is changed only
// through setEnd.
func (c *cursor) at() *region {
	nd, i := c.leaf()
	return &nd.items[i]
}

// next moves to the following region; false at the end.
func (c *cursor) next() bool {
	d := c.depth - 1
	c.path[d].i++
	if c.path[d].i < c.path[d].nd.n {
		return true
	}
	for d > 0 {
		d--
		c.path[d].i++
		if c.path[d].i < c.path[d].nd.n {
			for d+1 < c.depth {
				nd := c.path[d].nd.in.kids[c.path[d].i]
				d++
				c.path[d].nd, c.path[d].i = nd, 0
			}
			return true
		}
	}
	c.path[c.depth-1].i = c.path[c.depth-1].nd.n // stay past the end
	return false
}

// seek returns the space's cursor at the first region ending above addr,
// or past the last region of the last leaf when there is none. There is
// one cursor per space, reused (it is a few hundred bytes: copying and
// zeroing one per lookup cost more than the lookup in a small tree), so a
// seek ends the use of the previous one.
func (s *space) seek(addr uint64) *cursor { return s.seekWith(&s.cur, addr) }

// seekWith is seek with cursor c, starting from the leaf c is at. One
// event looks up the same place several times (clear, insert, join, the
// next event's clear): the last leaf, while no node was split, merged or
// removed, answers for the addresses it spans.
func (s *space) seekWith(c *cursor, addr uint64) *cursor {
	if c.depth > 0 && c.shape == s.shape {
		if nd, _ := c.leaf(); nd.n > 0 && addr < nd.ends[nd.n-1] && addr >= c.below() {
			c.path[c.depth-1].i = nd.find(addr)
			return c
		}
	}
	if s.root == nil {
		s.root = newLeaf()
	}
	c.depth = 0
	nd := s.root
	for nd.in != nil {
		lo, hi := 0, nd.n-1 // the last child when no max is above addr
		for lo < hi {
			m := int(uint(lo+hi) >> 1)
			if nd.in.max[m] > addr {
				hi = m
			} else {
				lo = m + 1
			}
		}
		c.path[c.depth].nd, c.path[c.depth].i = nd, lo
		c.depth++
		nd = nd.in.kids[lo]
	}
	c.path[c.depth].nd, c.path[c.depth].i = nd, nd.find(addr)
	c.depth++
	c.shape = s.shape
	return c
}

// find returns the index of the first region of leaf nd ending above addr.
func (nd *node) find(addr uint64) int {
	// The block: the first whose mark (its last end) is above addr.
	b := 0
	for b < markBlocks && 8*b+7 < nd.n && nd.marks[b] <= addr {
		b++
	}
	lo, hi := 8*b, nd.n
	if b < markBlocks && 8*b+7 < nd.n {
		hi = 8*b + 8 // its mark is above addr: the answer is in the block
	}
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if nd.ends[m] > addr {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo
}

// below is the largest end before the cursor's leaf (0 for the first
// leaf): the maximum of the subtree just left of the path.
func (c *cursor) below() uint64 {
	for d := c.depth - 2; d >= 0; d-- {
		if p := c.path[d]; p.i > 0 {
			return p.nd.in.max[p.i-1]
		}
	}
	return 0
}

// splitPoint is where to split overfull nd, edited at index i (a leaf's
// new item, an inner node's split child): in half for an edit in the
// lower half, else just after the edit, keeping fan/4 (the fewest a node
// keeps) on the right. A process makes its mappings one after another, and
// mprotect walks up a mapping, each time inserting at the same place
// before the few regions above it: split there, the next inserts fill the
// right node while the left stays full, and the tree fills to two thirds
// or more instead of a half: fewer nodes to allocate, fault in, scan and
// miss in the cache.
func splitPoint(nd *node, i int) int {
	return min(max(i+2, nd.n/2), nd.n-fan/4)
}

// fix restores the tree after an edit of the leaf under c: the maxima on
// the path, overfull nodes split, empty ones removed, small ones merged
// with a sibling, the root grown or shrunk. It invalidates c.
func (s *space) fix(c *cursor) {
	for d := c.depth - 1; d > 0; d-- {
		nd := c.path[d].nd
		p, i := c.path[d-1].nd, c.path[d-1].i
		switch {
		case nd.n > fan:
			p.insertKid(i+1, nd.splitAt(splitPoint(nd, c.path[d].i)))
			s.shape++
		case nd.n == 0:
			p.deleteRange(i, i+1)
			s.shape++
			continue
		case nd.n < fan/4:
			if i+1 < p.n && nd.n+p.in.kids[i+1].n <= fan {
				nd.absorb(p.in.kids[i+1])
				p.deleteRange(i+1, i+2)
				s.shape++
			} else if i > 0 && p.in.kids[i-1].n+nd.n <= fan {
				p.in.kids[i-1].absorb(nd)
				p.in.max[i-1] = p.in.kids[i-1].lastEnd()
				p.deleteRange(i, i+1)
				s.shape++
				continue
			}
		}
		p.in.max[i] = nd.lastEnd()
	}
	root := s.root
	if root.n > fan || root.in != nil && root.n <= 1 {
		s.shape++
	}
	switch {
	case root.n > fan:
		r := newInner()
		r.insertKid(0, root)
		r.insertKid(1, root.splitAt(splitPoint(root, c.path[0].i)))
		r.in.max[0] = root.lastEnd()
		s.root = r
	case root.in != nil && root.n == 0:
		s.root = newLeaf()
	}
	for s.root.in != nil && s.root.n == 1 {
		s.root = s.root.in.kids[0]
	}
}
