package layout

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/mmtrace/mmtrace/internal/events"
)

// The reference model: one entry per page of a small window, changed the
// way the kernel changes VMAs, with no notion of ranges at all. It also
// plays the kernel: it decides each call's result, as a real run would.

const (
	refBase  = 0x20000000
	refPages = 64
)

type refPage struct {
	mapped bool
	flags  uint8 // flagRead|flagWrite|flagExec|flagShared
	path   string
	off    uint64 // file offset of this page; 0 when not file backed
}

type refSpace struct {
	pg  [refPages]refPage
	brk uint64
}

func pageIndex(addr uint64) int { return int((addr - refBase) / pageSize) }
func pageAddr(i int) uint64     { return refBase + uint64(i)*pageSize }

func (s *refSpace) free(lo, hi int) bool {
	for i := lo; i < hi; i++ {
		if s.pg[i].mapped {
			return false
		}
	}
	return true
}

// findFree picks a random free run of n pages, or -1.
func (s *refSpace) findFree(rng *rand.Rand, n int) int {
	var starts []int
	for i := 0; i+n <= refPages; i++ {
		if s.free(i, i+n) {
			starts = append(starts, i)
		}
	}
	if len(starts) == 0 {
		return -1
	}
	return starts[rng.IntN(len(starts))]
}

func (s *refSpace) unmap(lo, hi int) {
	for i := max(lo, 0); i < min(hi, refPages); i++ {
		s.pg[i] = refPage{}
	}
}

// sameVMA says whether pages i and i+1 could be one VMA.
func (s *refSpace) sameVMA(i int) bool {
	a, b := s.pg[i], s.pg[i+1]
	return a.mapped && b.mapped && a.flags == b.flags && a.path == b.path &&
		(!fileBacked(a.path) || a.off+pageSize == b.off)
}

func (s *refSpace) mappings() []Mapping {
	var out []Mapping
	for i, p := range s.pg {
		if p.mapped {
			out = append(out, Mapping{Start: pageAddr(i), End: pageAddr(i + 1), Prot: protString(p.flags), Path: p.path, Offset: p.off})
		}
	}
	return MergeAdjacent(out)
}

// lowestMappedFrom is the first mapped page at or above page i, or -1.
func (s *refSpace) lowestMappedFrom(i int) int {
	for ; i < refPages; i++ {
		if s.pg[i].mapped {
			return i
		}
	}
	return -1
}

// step makes one random call, applies it to the reference and returns the
// event the kernel would have sent. wantFail is the expected brk failure
// blocker (-1: no failure, -2: failure with no blocker, else page index).
func (s *refSpace) step(rng *rand.Rand, g *gen) (ev *events.Event, wantFail int) {
	wantFail = -1
	pages := func(max int) int { return 1 + rng.IntN(max) }
	switch op := rng.IntN(10); {
	case op < 3: // mmap
		n := pages(6)
		prot := uint32(rng.IntN(8))
		var flags uint32 = 0x02
		path, off, pageOff := "", uint64(0), uint64(0)
		shared := rng.IntN(4) == 0
		if shared {
			flags = mapShared
			if rng.IntN(2) == 0 {
				flags = mapSharedValidate
			}
		}
		if rng.IntN(2) == 0 {
			flags |= mapAnonymous
			if shared {
				path = sharedAnonPath
			}
		} else {
			path = []string{"/a", "/b"}[rng.IntN(2)]
			pageOff = uint64(rng.IntN(8))
			off = pageOff * pageSize
		}
		hint := uint64(0)
		at := -1
		ret := int64(-errnoENOMEM)
		switch mode := rng.IntN(4); mode {
		case 0: // MAP_FIXED
			at = rng.IntN(refPages - n + 1)
			hint, flags = pageAddr(at), flags|mapFixed
		case 1: // MAP_FIXED_NOREPLACE
			h := rng.IntN(refPages - n + 1)
			hint, flags = pageAddr(h), flags|mapFixedNoReplace
			if s.free(h, h+n) {
				at = h
			} else {
				ret = -17
			}
		case 2: // a hint, honoured when free
			h := rng.IntN(refPages - n + 1)
			hint = pageAddr(h) + uint64(rng.IntN(pageSize))
			if hint+uint64(n)*pageSize <= pageAddr(refPages) && s.free(pageIndex(pageAlign(hint)), pageIndex(pageAlign(hint))+n) {
				at = pageIndex(pageAlign(hint))
			} else {
				at = s.findFree(rng, n)
			}
		default:
			at = s.findFree(rng, n)
		}
		if at >= 0 {
			ret = int64(pageAddr(at))
			for i := at; i < at+n; i++ {
				p := refPage{mapped: true, flags: uint8(prot), path: path}
				if shared {
					p.flags |= flagShared
				}
				if fileBacked(path) {
					p.off = off + uint64(i-at)*pageSize
				}
				s.pg[i] = p
			}
		}
		len := uint64(n)*pageSize - uint64(rng.IntN(pageSize)) // the kernel rounds up
		return g.mmap(hint, len, prot, flags, path, off, uint64(ret)), wantFail

	case op < 5: // munmap, possibly over holes
		lo := rng.IntN(refPages)
		n := pages(min(8, refPages-lo))
		s.unmap(lo, lo+n)
		return g.munmap(pageAddr(lo), uint64(n)*pageSize), wantFail

	case op < 7: // mprotect, stopping at the first hole
		lo := rng.IntN(refPages)
		n := pages(min(8, refPages-lo))
		prot := uint8(rng.IntN(8))
		ret := int64(0)
		for i := lo; i < lo+n; i++ {
			if !s.pg[i].mapped {
				ret = -errnoENOMEM
				break
			}
			s.pg[i].flags = s.pg[i].flags&^protFlags | prot
		}
		return g.mprotect(pageAddr(lo), uint64(n)*pageSize, uint32(prot), ret), wantFail

	case op < 9: // mremap of part of one VMA
		var mappedPages []int
		for i, p := range s.pg {
			if p.mapped {
				mappedPages = append(mappedPages, i)
			}
		}
		if len(mappedPages) == 0 {
			return g.brk(0, s.brk), wantFail
		}
		p := mappedPages[rng.IntN(len(mappedPages))]
		vmaEnd := p + 1
		for vmaEnd < refPages && s.sameVMA(vmaEnd-1) {
			vmaEnd++
		}
		end := p + 1 + rng.IntN(vmaEnd-p)
		oldN := end - p
		newN := pages(6)
		var flags uint32
		switch rng.IntN(4) {
		case 1:
			flags = mremapMayMove
		case 2:
			flags = mremapMayMove | mremapFixed
		case 3:
			flags, newN = mremapMayMove|mremapDontUnmap, oldN
			if rng.IntN(2) == 0 {
				flags |= mremapFixed
			}
		}
		oldAddr := pageAddr(p)
		ev := func(newAddr uint64, ret int64) *events.Event {
			return g.mremap(oldAddr, uint64(oldN)*pageSize, uint64(newN)*pageSize, flags, newAddr, ret)
		}
		// move copies the old range's pages to page at, growing or
		// shrinking it; the pages it left are handled by the caller.
		move := func(at int) {
			src := append([]refPage(nil), s.pg[p:p+min(oldN, newN)]...)
			if flags&mremapDontUnmap == 0 {
				s.unmap(p, p+oldN)
			} else if newN < oldN {
				s.unmap(p+newN, p+oldN)
			}
			s.unmap(at, at+newN)
			copy(s.pg[at:], src)
			for i := len(src); i < newN; i++ {
				q := src[len(src)-1]
				if fileBacked(q.path) {
					q.off += uint64(i-len(src)+1) * pageSize
				}
				s.pg[at+i] = q
			}
		}
		if flags&mremapFixed != 0 {
			at := rng.IntN(refPages - newN + 1)
			if at < p+oldN && p < at+newN {
				return ev(pageAddr(at), -22), wantFail // overlapping ranges: EINVAL
			}
			move(at)
			return ev(pageAddr(at), int64(pageAddr(at))), wantFail
		}
		if flags&mremapDontUnmap == 0 {
			if newN <= oldN {
				s.unmap(p+newN, p+oldN)
				return ev(0, int64(oldAddr)), wantFail
			}
			if end == vmaEnd && p+newN <= refPages && s.free(end, p+newN) {
				q := s.pg[end-1]
				for i := end; i < p+newN; i++ {
					if fileBacked(q.path) {
						q.off += pageSize
					}
					s.pg[i] = q
				}
				return ev(0, int64(oldAddr)), wantFail
			}
			if flags&mremapMayMove == 0 {
				return ev(0, -errnoENOMEM), wantFail
			}
		}
		at := s.findFree(rng, newN)
		if at < 0 {
			return ev(0, -errnoENOMEM), wantFail
		}
		move(at)
		return ev(0, int64(pageAddr(at))), wantFail

	default: // brk
		if rng.IntN(8) == 0 {
			return g.brk(0, s.brk), wantFail
		}
		req := refBase + uint64(rng.IntN(refPages*pageSize/2))
		oldTop, newTop := pageIndex(pageAlign(s.brk)), pageIndex(pageAlign(req))
		switch {
		case newTop <= oldTop:
			s.unmap(newTop, oldTop)
		default:
			if next := s.lowestMappedFrom(oldTop); next >= 0 && newTop+1 > next {
				return g.brk(req, s.brk), next // blocked
			}
			for i := oldTop; i < newTop; i++ {
				s.pg[i] = refPage{mapped: true, flags: flagRead | flagWrite}
			}
		}
		s.brk = req
		return g.brk(req, req), wantFail
	}
}

// headroom is the reference's brk headroom, with the mmap base far above.
func (s *refSpace) headroom(base uint64) uint64 {
	top := pageAlign(s.brk)
	if next := s.lowestMappedFrom(pageIndex(top)); next >= 0 {
		return pageAddr(next) - top
	}
	return base - top
}

func TestModelAgainstPageReference(t *testing.T) {
	for _, abi := range []events.ABI{events.ABI64, events.ABI32} {
		for seed := uint64(1); seed <= 6; seed++ {
			t.Run(fmt.Sprintf("%v/seed%d", abi, seed), func(t *testing.T) {
				checkAgainstReference(t, abi, seed, 3000)
			})
		}
	}
}

func checkAgainstReference(t *testing.T, abi events.ABI, seed uint64, steps int) {
	rng := rand.New(rand.NewPCG(seed, 0x6d6d7472))
	g := newGen(tPID)
	g.abi = abi
	tr := NewTracker(Options{})
	x := defaultExec()
	x.StartBrk, x.Brk, x.StartStack = refBase, refBase, 0x30000000
	x.MmapBase, x.MmapCompatBase, x.MmapCompatLegacyBase = 0x40000000, 0x40000000, 0x10000
	applyAll(tr, g.exec(x, nil)...)
	ref := &refSpace{brk: refBase}

	for i := range steps {
		ev, wantFail := ref.step(rng, g)
		ch := tr.Apply(ev)
		where := fmt.Sprintf("step %d (%v addr %#x len %#x newlen %#x flags %#x ret %#x)", i, ev.Kind, ev.Addr, ev.Len, ev.NewLen, ev.Flags, ev.Ret)
		switch f := ch.BrkFailure; {
		case wantFail == -1 && f != nil:
			t.Fatalf("%s: unexpected brk failure %+v", where, f)
		case wantFail == -2 && (f == nil || f.BlockedBy != nil):
			t.Fatalf("%s: brk failure %+v, want one with no blocker", where, f)
		case wantFail >= 0 && (f == nil || f.BlockedBy == nil || f.BlockedBy.Start > pageAddr(wantFail) || f.BlockedBy.End <= pageAddr(wantFail)):
			t.Fatalf("%s: brk failure %+v, want one blocked by the mapping at %#x", where, f, pageAddr(wantFail))
		}
		r := tr.Snapshot(tPID)
		got := r.VMAs
		for j := range got {
			if got[j].Path == "[heap]" {
				got[j].Path = "" // the reference does not label
			}
		}
		got = MergeAdjacent(got)
		want := ref.mappings()
		if fmt.Sprint(maps(got)) != fmt.Sprint(maps(want)) {
			equalLines(t, where, maps(got), maps(want))
			t.FailNow()
		}
		if h := ref.headroom(0x40000000); r.BrkHeadroom != h || r.Brk != ref.brk {
			t.Fatalf("%s: headroom %#x brk %#x, want %#x %#x", where, r.BrkHeadroom, r.Brk, h, ref.brk)
		}
	}
}

// FuzzApply feeds arbitrary event streams to the tracker: it must never
// panic, and its layout must stay sorted and without overlaps.
func FuzzApply(f *testing.F) {
	f.Add([]byte{1, 3, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0x20, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte("\x07\xff\xff\xff\xff\xff\xff\xff\xff\x05\x00\x10\x00\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		next := func() uint64 {
			var v uint64
			for i := 0; i < 8 && len(data) > 0; i++ {
				v = v<<8 | uint64(data[0])
				data = data[1:]
			}
			return v
		}
		tr := NewTracker(Options{})
		g := newGen(tPID)
		applyAll(tr, g.exec(defaultExec(), defaultVMAs())...)
		for len(data) > 0 {
			e := g.ev(events.Kind(data[0] % 13))
			data = data[1:]
			e.PID = uint32(tPID + next()%2)
			e.Addr, e.Len, e.NewLen = next(), next(), next()
			e.Flags, e.Prot = uint32(next()), uint32(next())
			e.Ret, e.Child, e.Lost = int64(next()), uint32(next()), next()
			if e.Kind == events.KindExec {
				x := defaultExec()
				x.VMACount = uint32(next() % 4)
				e.Exec = &x
			}
			if e.Kind == events.KindVMA {
				e.VMA = events.VMA{Start: next(), End: next(), Flags: next(), PgOff: next(), Total: uint32(next())}
			}
			tr.Apply(e)
			if r := tr.Snapshot(tPID); r != nil {
				for i, m := range r.VMAs {
					if m.Start >= m.End || (i > 0 && m.Start < r.VMAs[i-1].End) {
						t.Fatalf("bad layout at %d: %+v", i, r.VMAs)
					}
				}
			}
		}
		tr.Finish()
	})
}
