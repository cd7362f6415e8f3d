package render

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mmtrace/mmtrace/internal/layout"
)

// mapRows returns the mapping rows of r's picture, low to high.
func mapRows(r *layout.Report) []row {
	var out []row
	for _, rw := range pictureRows(r, Options{Width: 100}) {
		if rw.typ == rowMap {
			out = append(out, rw)
		}
	}
	return out
}

// TestHeapSplitAtBreak: when the squeezer merged onto the heap, /proc
// (and the report) show one [heap] VMA reaching past the break; the
// picture cuts it there, heap below and squeezer above, with no gap
// between them called headroom.
func TestHeapSplitAtBreak(t *testing.T) {
	r := legacyMerged32()
	rows := mapRows(r)
	var heapAt = -1
	for i, rw := range rows {
		if rw.kind == kindHeap {
			heapAt = i
		}
	}
	if heapAt < 0 || heapAt+1 >= len(rows) {
		t.Fatalf("no heap row with a row above it: %+v", rows)
	}
	h, sq := rows[heapAt], rows[heapAt+1]
	if h.lo != r.StartBrk || h.hi != r.Brk {
		t.Errorf("heap row %#x-%#x, want %#x-%#x", h.lo, h.hi, r.StartBrk, r.Brk)
	}
	if sq.lo != r.Squeezer.Start || sq.hi != r.Squeezer.End || sq.kind != kindAnon {
		t.Errorf("row above the heap %#x-%#x %s, want the squeezer %#x-%#x anonymous", sq.lo, sq.hi, sq.kind, r.Squeezer.Start, r.Squeezer.End)
	}
	if !strings.Contains(notesText(sq.notes), "SQUEEZER") || strings.Contains(notesText(h.notes), "SQUEEZER") {
		t.Errorf("squeezer mark on the wrong row: heap %q, above %q", notesText(h.notes), notesText(sq.notes))
	}
	if !strings.Contains(notesText(h.notes), "headroom 0 B") {
		t.Errorf("heap row notes %q lack the zero headroom", notesText(h.notes))
	}
	var buf bytes.Buffer
	Picture(&buf, r, Options{Width: 100})
	if strings.Contains(buf.String(), "headroom ↑") {
		t.Errorf("a gap is labelled headroom, but the squeezer sits on the break:\n%s", buf.String())
	}
}

// TestHeapSplitFromBss: without brk randomisation the heap starts right
// at the end of the bss and the kernel merges them; the picture still
// shows the bss and the heap apart.
func TestHeapSplitFromBss(t *testing.T) {
	r := flexible32()
	var vmas []layout.Mapping
	for _, m := range r.VMAs {
		if m.Path != "[heap]" {
			vmas = append(vmas, m)
		}
	}
	// bss 0x565a2000-0x565a4000, heap from there to 0x565c5000, one VMA.
	r.StartBrk, r.Brk = 0x565a4000, 0x565c5000
	vmas = append(vmas, mp(0x565a2000, 0x565c5000, "rw-p", "[heap]", heap, 0))
	r.VMAs = layout.MergeAdjacent(vmas)
	rows := mapRows(r)
	var labels []string
	for _, rw := range rows {
		if rw.lo >= 0x565a1000 && rw.hi <= 0x565c5000 {
			labels = append(labels, rw.label)
		}
	}
	if want := []string{"data hello32", "bss", "[heap] ↑"}; strings.Join(labels, "|") != strings.Join(want, "|") {
		t.Errorf("rows from data to the break %q, want %q", labels, want)
	}
}

func notesText(notes []segment) string {
	var b strings.Builder
	for _, n := range notes {
		b.WriteString(n.text)
	}
	return b.String()
}

// TestAnonymousNotHidden: no row named after files may be mostly
// anonymous memory, neither when anonymous memory merged onto a
// library's bss nor when the picture is shrunk by merging rows.
func TestAnonymousNotHidden(t *testing.T) {
	crowded := hintSqueeze64()
	for i := uint64(0); i < 60; i++ {
		a := 0x7f0000000000 + i*0x3000000
		crowded.VMAs = append(crowded.VMAs,
			mp(a, a+0x20000, "r--p", "/usr/lib/libx.so", layout.PlacementTopDown, 100+i),
			mp(a+0x20000, a+0x21000, "rw-p", "/usr/lib/libx.so", layout.PlacementTopDown, 100+i),
			// bss with 16 MiB of anonymous memory merged onto it
			mp(a+0x21000, a+0x1021000, "rw-p", "", layout.PlacementTopDown, 200+i))
	}
	for name, r := range map[string]*layout.Report{"legacy-merged": legacyMerged32(), "crowded": crowded} {
		for _, rw := range mapRows(r) {
			if strings.Contains(rw.label, "anonymous") {
				continue
			}
			var anon, mapped uint64
			for _, m := range r.VMAs {
				if m.Start >= rw.lo && m.End <= rw.hi {
					mapped += m.End - m.Start
					if m.Path == "" {
						anon += m.End - m.Start
					}
				}
			}
			if anon*2 > mapped {
				t.Errorf("%s: row %#x-%#x %q is %s anonymous of %s mapped", name, rw.lo, rw.hi, rw.label, Size(anon), Size(mapped))
			}
		}
	}
	// The program's own bss, with blocks merged onto it, says so.
	var buf bytes.Buffer
	Picture(&buf, legacyMerged32(), Options{Width: 100})
	if !strings.Contains(buf.String(), "31.0 MiB │ bss + anonymous") {
		t.Errorf("the bss with 30 MiB of blocks merged onto it is not called anonymous:\n%s", buf.String())
	}
}

// TestUncertainShown: lost events and a partial exec snapshot are said in
// the report fields, the picture and the story.
func TestUncertainShown(t *testing.T) {
	r := legacySqueeze32()
	r.LostEvents, r.Uncertain = 3, true
	var buf bytes.Buffer
	tr := NewText(&buf, Options{Width: 100})
	tr.Report(r)
	if err := tr.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"lost events  3, verdict uncertain",
		"verdict uncertain: 3 events lost, mappings may be missing",
		"3 events were lost while it ran",
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, buf.String())
		}
	}
	r.LostEvents = 0
	buf.Reset()
	Picture(&buf, r, Options{Width: 100})
	if !strings.Contains(buf.String(), "verdict uncertain: the layout at exec was seen only in part") {
		t.Errorf("picture does not say the exec layout was partial:\n%s", buf.String())
	}
}

// crowdedReport is hintSqueeze64 with n more mappings below its heap:
// distinct files and anonymous memory of 1-16 pages, a page apart, so that
// every one is a row the picture has to fold.
func crowdedReport(n int) *layout.Report {
	r := hintSqueeze64()
	vmas := make([]layout.Mapping, 0, n+len(r.VMAs))
	at, rng := uint64(0x100000000), uint64(1)
	for i := range n {
		rng = rng*6364136223846793005 + 1442695040888963407
		size := (1 + rng>>60) * 4096
		path := ""
		if i%3 != 0 {
			path = "/usr/lib/lib" + strconv.Itoa(i) + ".so"
		}
		vmas = append(vmas, mp(at, at+size, "r--p", path, layout.PlacementTopDown, uint64(100+i)))
		at += size + 4096
	}
	r.VMAs = append(vmas, r.VMAs...)
	return r
}

// TestFoldLinear: building the picture's rows takes work in proportion to
// the mappings, so that a report of 100k mappings renders as fast per
// mapping as one of a thousand. The work is counted (rows visited, heap
// comparisons, names merged), not timed: an O(n log n) fold does 1.7
// times the work per mapping at 128k as at 1k, a quadratic one far more.
func TestFoldLinear(t *testing.T) {
	perRow := map[int]float64{}
	for _, n := range []int{1 << 10, 1 << 17} {
		r := crowdedReport(n)
		var work int
		rows := countedRows(r, Options{Width: 100}, &work)
		perRow[n] = float64(work) / float64(n)
		var w int
		if h := rowsHeight(rows, &w); h > maxPictureLines {
			t.Errorf("%d mappings: the picture is %d lines high, want at most %d", n, h, maxPictureLines)
		}
		for _, want := range []string{"SQUEEZER", "[heap]", "[stack]"} {
			found := false
			for _, rw := range rows {
				found = found || strings.Contains(rw.label+notesText(rw.notes), want)
			}
			if !found {
				t.Errorf("%d mappings: no row shows %q", n, want)
			}
		}
	}
	t.Logf("work per mapping: %.1f at 1k, %.1f at 128k", perRow[1<<10], perRow[1<<17])
	if perRow[1<<17] > 1.2*perRow[1<<10] || perRow[1<<17] > 30 {
		t.Errorf("folding is not linear: %.1f steps per mapping at 128k mappings, %.1f at 1k", perRow[1<<17], perRow[1<<10])
	}
}

// TestFoldKeepsLargest: with more rows than mergeSmallest takes as they
// are, the largest mappings still get rows of their own and a merged row
// is named after its largest files.
func TestFoldKeepsLargest(t *testing.T) {
	r := crowdedReport(4 * foldExact)
	big := mp(0x200000000, 0x240000000, "r--p", "/usr/lib/big.so", layout.PlacementTopDown, 99)
	i := slices.IndexFunc(r.VMAs, func(m layout.Mapping) bool { return m.Start > big.Start })
	r.VMAs = slices.Insert(r.VMAs, i, big)
	rows := mapRows(r)
	own := false
	for _, rw := range rows {
		own = own || rw.lo == big.Start && rw.hi == big.End && rw.label == "big.so"
	}
	if !own {
		t.Errorf("the 1 GiB mapping has no row of its own among %d rows", len(rows))
	}
	for _, rw := range rows {
		if len(rw.files) > maxNames {
			t.Errorf("row %#x-%#x keeps %d names, want at most %d", rw.lo, rw.hi, len(rw.files), maxNames)
		}
		var sum uint64
		for k, f := range rw.files {
			sum += f.size
			if k > 0 && f.size > rw.files[k-1].size {
				t.Errorf("row %#x-%#x: names not largest first: %v", rw.lo, rw.hi, rw.files)
				break
			}
		}
		if rw.files != nil && sum+rw.rest > rw.hi-rw.lo {
			t.Errorf("row %#x-%#x: its names add up to %d bytes, more than it spans", rw.lo, rw.hi, sum+rw.rest)
		}
	}
}
