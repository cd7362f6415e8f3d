package render

import (
	"bytes"
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
