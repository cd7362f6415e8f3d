package render

import (
	"cmp"
	prio "container/heap"
	"fmt"
	"io"
	"math/bits"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/mmtrace/mmtrace/internal/layout"
)

// Picture writes the address-space picture of one image: high addresses at
// the top (kernel space, stack, mmap area, heap, bss/data/text), one row
// per mapping or group of mappings of one file, unmapped gaps drawn taller
// the larger they are (log scale), the squeezer and the mappings that
// blocked brk marked. It fits o.Width columns.
func Picture(w io.Writer, r *layout.Report, o Options) {
	if r == nil {
		return
	}
	r = r.WithVMAs()
	for _, l := range pictureLines(r, o) {
		io.WriteString(w, l)
		io.WriteString(w, "\n")
	}
}

type rowType uint8

const (
	rowMap    rowType = iota // one mapping or a group of them
	rowGap                   // unmapped space
	rowKernel                // kernel space above the task size
	rowBase                  // the mmap base, a line between rows
)

type row struct {
	typ      rowType
	lo, hi   uint64
	kind     kind
	label    string
	prot     string
	long     string // the full path, shown instead of label when it fits (rowBase: the short label)
	count    int    // mappings in the row
	pinned   bool   // never merged with neighbours: heap, stack, marked mappings
	notes    []segment
	headroom bool       // the gap directly above the heap
	files    []fileSize // a merged row: the files in it, largest first
	rest     uint64     // a merged row: bytes of the names beyond maxNames, not in files
}

// maxPictureLines bounds the picture; beyond it small gaps are hidden and
// then runs of ordinary mappings are merged.
const maxPictureLines = 30

// Picture geometry, in columns.
const (
	pictureSizeW = 8  // the size column
	pictureBarW  = 40 // the widest bar
	pictureBarIn = 24 // narrowest bar that still keeps the full address range
	pictureNoteW = 24 // notes beside the bar get at least this much before the range is cut to the start address
)

// pictureGeometry is how the columns of the picture share the width.
type pictureGeometry struct {
	full     bool // the address column shows start-end, not just start
	rangeW   int
	barW     int
	noteRoom int // columns for the notes after the prot column
}

// fixedCols is everything on a mapping's line but the bar and the notes:
// "range size │" + "│ prot ".
func fixedCols(rangeW int) int { return rangeW + 1 + pictureSizeW + 2 + 2 + 5 }

func newPictureGeometry(width, digits, noteW int) pictureGeometry {
	g := pictureGeometry{full: true, rangeW: 2*digits + 1}
	if width-fixedCols(g.rangeW) < pictureBarIn+pictureNoteW {
		// Too narrow for both addresses: the start alone still reads like
		// the classic "anatomy of a program in memory" figure, where every
		// boundary carries its address.
		g.full, g.rangeW = false, digits
	}
	avail := width - fixedCols(g.rangeW)
	floor := min(30, max(18, avail-22))
	g.barW = max(floor, min(pictureBarW, avail-noteW))
	g.noteRoom = max(10, avail-g.barW)
	return g
}

func pictureLines(r *layout.Report, o Options) []string {
	rows := pictureRows(r, o)
	noteW := 0
	for _, rw := range rows {
		noteW = max(noteW, notesWidth(rw.notes))
	}
	pic := newPicture(r, o, noteW)
	pic.writeTitle(r)
	pic.writeBorder("┌", "┐", "")
	for i := len(rows) - 1; i >= 0; i-- {
		rw := &rows[i]
		switch rw.typ {
		case rowKernel:
			pic.writeKernel(rw)
		case rowBase:
			pic.writeBase(rw)
		case rowGap:
			pic.writeGap(rw)
		default:
			pic.writeMapping(rw)
		}
	}
	pic.writeBorder("└", "┘", pic.hexAt(0))
	pic.writeLegend()
	return pic.out
}

// picture is one text picture being drawn, top down: its columns and the
// lines so far.
type picture struct {
	pictureGeometry
	digits int // hex digits of an address
	width  int
	color  bool
	out    []string

	blankRange, blankSize, blankProt string
}

func newPicture(r *layout.Report, o Options, noteW int) *picture {
	digits := hexDigits(r.ABI, taskSize(r.ABI, r.VMAs))
	width := o.width()
	g := newPictureGeometry(width, digits, noteW)
	return &picture{pictureGeometry: g, digits: digits, width: width, color: o.Color,
		blankRange: strings.Repeat(" ", g.rangeW),
		blankSize:  strings.Repeat(" ", pictureSizeW),
		blankProt:  strings.Repeat(" ", 5),
	}
}

func (pic *picture) emit(l *styled) { pic.out = append(pic.out, l.render(pic.width, pic.color)) }

// hexAt writes an address with the picture's number of digits.
func (pic *picture) hexAt(v uint64) string {
	s := strconv.FormatUint(v, 16)
	if len(s) < pic.digits {
		s = strings.Repeat("0", pic.digits-len(s)) + s
	}
	return s
}

// writeTitle writes the title and, when the layout may miss mappings,
// says so.
func (pic *picture) writeTitle(r *layout.Report) {
	for _, t := range wrap(pictureTitle(r), pic.width, "", "  ") {
		var title styled
		title.add(t, sgrBold)
		pic.emit(&title)
	}
	if u := uncertainPhrase(r); u != "" {
		for _, t := range wrap(u, pic.width, "", "  ") {
			var l styled
			l.add(t, sgrYellow)
			pic.emit(&l)
		}
	}
}

// writeBorder closes the bar at the top or the bottom, with addr in the
// address column.
func (pic *picture) writeBorder(left, right, addr string) {
	var border styled
	border.add(fit(addr, pic.rangeW)+" "+pic.blankSize+" "+left+strings.Repeat("─", pic.barW)+right, sgrNone)
	pic.emit(&border)
}

// writeKernel writes kernel space, from its start address up.
func (pic *picture) writeKernel(rw *row) {
	var l styled
	addr := pic.hexAt(rw.lo)
	if pic.full {
		addr += "-" // from here up
	}
	l.add(fit(addr, pic.rangeW)+" "+pic.blankSize+" │", sgrNone)
	l.add(centre(rw.label, pic.barW, '░'), kindBarSGR[kindKernel])
	l.add("│", sgrNone)
	pic.emit(&l)
}

// writeBase writes the mmap base, a line across the bar.
func (pic *picture) writeBase(rw *row) {
	var l styled
	l.add(fit(pic.hexAt(rw.lo), pic.rangeW)+" "+pic.blankSize+" ├", sgrNone)
	label := rw.label
	if len([]rune(label))+2 > pic.barW {
		label = rw.long
	}
	l.add(centre(label, pic.barW, '╌'), sgrBold)
	l.add("┤", sgrNone)
	pic.emit(&l)
}

// writeGap writes unmapped space, taller when larger, its size and
// notes level with its middle.
func (pic *picture) writeGap(rw *row) {
	notes := wrapNotes(rw.notes, pic.noteRoom+5)
	h := gapLines(rw.hi - rw.lo)
	mid := (h - 1) / 2
	h = max(h, mid+len(notes))
	for k := 0; k < h; k++ {
		var l styled
		size, inner := pic.blankSize, strings.Repeat(" ", pic.barW)
		if k == mid {
			size = padLeft(Size(rw.hi-rw.lo), pictureSizeW)
			inner = centre(rw.label, pic.barW, ' ')
		}
		l.add(pic.blankRange+" "+size+" ┊", sgrNone)
		l.add(inner, sgrDim)
		l.add("┊", sgrNone)
		if n := k - mid; n >= 0 && n < len(notes) {
			l.add(" ", sgrNone)
			l.segs = append(l.segs, notes[n]...)
		}
		pic.emit(&l)
	}
}

// writeMapping writes a row of mappings: its range, size, name and
// protection, and its notes, on as many lines as they need.
func (pic *picture) writeMapping(rw *row) {
	addr := pic.hexAt(rw.lo)
	if pic.full {
		addr += "-" + pic.hexAt(rw.hi)
	}
	label := rw.label
	if rw.long != "" && len([]rune(rw.long))+1 <= pic.barW {
		label = rw.long
	}
	notes := wrapNotes(rw.notes, pic.noteRoom)
	for k := 0; k < max(1, len(notes)); k++ {
		var l styled
		if k == 0 {
			l.add(addr+" "+padLeft(Size(rw.hi-rw.lo), pictureSizeW)+" │", sgrNone)
			l.add(fit(" "+label, pic.barW), kindBarSGR[rw.kind])
			l.add("│ "+fit(rw.prot, 5), sgrNone)
		} else {
			// The notes go on: the mapping's row grows a line.
			l.add(pic.blankRange+" "+pic.blankSize+" │", sgrNone)
			l.add(strings.Repeat(" ", pic.barW), kindBarSGR[rw.kind])
			l.add("│ "+pic.blankProt, sgrNone)
		}
		if k < len(notes) {
			l.segs = append(l.segs, notes[k]...)
		}
		pic.emit(&l)
	}
}

// writeLegend explains the bar's two kinds of edge under it.
func (pic *picture) writeLegend() {
	indent := pic.blankRange + " " + pic.blankSize + "  "
	legendLines := []string{indent + "│ mapped  ┊ unmapped, taller when larger (log scale)"}
	if len([]rune(legendLines[0])) > pic.width {
		legendLines = wrap(legendLines[0], pic.width, indent, indent+"  ")
	}
	for _, t := range legendLines {
		var legend styled
		legend.add(t, sgrDim)
		pic.emit(&legend)
	}
}

// uncertainPhrase says, under the title, that the picture may miss mappings.
func uncertainPhrase(r *layout.Report) string {
	switch {
	case !r.Uncertain:
		return ""
	case r.LostEvents > 0:
		return "verdict uncertain: " + plural(int(min(r.LostEvents, 1<<62)), "event") + " lost, mappings may be missing"
	}
	return "verdict uncertain: the layout at exec was seen only in part, mappings may be missing"
}

func pictureTitle(r *layout.Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s pid %d", nameOf(r), r.PID)
	if r.Exe != "" && baseName(r.Exe) != r.Comm {
		fmt.Fprintf(&b, " (%s)", r.Exe)
	}
	fmt.Fprintf(&b, " · %s · %s", r.ABI, layoutPhrase(r))
	return b.String()
}

// layoutPhrase says the layout and which way the mmap area grows.
func layoutPhrase(r *layout.Report) string {
	switch r.Layout {
	case "flexible":
		return "flexible layout, mmap area grows down from " + hex(r.MmapBase)
	case "legacy":
		return "legacy layout, mmap area grows up from " + hex(r.MmapBase)
	case "":
		return "layout unknown"
	}
	return r.Layout + " layout, mmap base " + hex(r.MmapBase)
}

func nameOf(r *layout.Report) string {
	switch {
	case r.Comm != "":
		return r.Comm
	case r.Exe != "":
		return baseName(r.Exe)
	}
	return "?"
}

func notesWidth(notes []segment) int {
	n := 0
	for _, s := range notes {
		n += len([]rune(s.text))
	}
	return n
}

// wrapNotes lays notes out in lines of at most n runes. Each note is a
// phrase ("◀ SQUEEZER (hint, seq 27)", ", blocked brk") kept whole on a
// line when it fits, its leading separator left at the end of the line
// before; a phrase longer than a line is broken between words.
func wrapNotes(notes []segment, n int) [][]segment {
	var lines [][]segment
	var cur []segment
	used := 0
	put := func(text, sgr string) {
		if k := len(cur) - 1; k >= 0 && cur[k].sgr == sgr {
			cur[k].text += text
		} else {
			cur = append(cur, segment{text, sgr})
		}
		used += len([]rune(text))
	}
	newline := func() {
		if len(cur) > 0 {
			lines = append(lines, trimSegments(cur))
		}
		cur, used = nil, 0
	}
	place := func(sep, text, sgr string) {
		w := len([]rune(text))
		switch {
		case used == 0:
			put(text, sgr)
		case used+len(sep)+1+w <= n:
			put(sep+" "+text, sgr)
		default:
			put(sep, sgr)
			newline()
			put(text, sgr)
		}
	}
	for _, s := range notes {
		text, sep := s.text, ""
		if strings.HasPrefix(text, ", ") || strings.HasPrefix(text, "; ") {
			sep, text = text[:1], text[2:]
		}
		text = strings.TrimSpace(text)
		if text == "" {
			continue
		}
		if len([]rune(text)) <= n || used > 0 && used+len(sep)+1+len([]rune(text)) <= n {
			place(sep, text, s.sgr)
			continue
		}
		for i, word := range strings.Fields(text) {
			if i > 0 {
				sep = ""
			}
			place(sep, word, s.sgr)
		}
	}
	newline()
	return lines
}

// trimSegments drops the blanks that end a line of notes.
func trimSegments(segs []segment) []segment {
	if k := len(segs) - 1; k >= 0 {
		segs[k].text = strings.TrimRight(segs[k].text, " ")
	}
	return segs
}

// gapLines is the height of a gap: one line below 1 GiB, two below
// 1 TiB, three above (log scale: a line per factor of 1024).
func gapLines(size uint64) int {
	if size == 0 {
		return 1
	}
	l := bits.Len64(size) - 1
	return 1 + max(0, min((l-20)/10, 2))
}

// centre puts s in the middle of n runes filled with fill.
func centre(s string, n int, fill rune) string {
	if s != "" {
		s = " " + s + " "
	}
	c := len([]rune(s))
	if c >= n {
		return fit(s, n)
	}
	left := (n - c) / 2
	return strings.Repeat(string(fill), left) + s + strings.Repeat(string(fill), n-c-left)
}

// pictureRows builds the rows of the picture in ascending address order.
func pictureRows(r *layout.Report, o Options) []row {
	var work int
	return countedRows(r, o, &work)
}

// countedRows is pictureRows adding its steps to *work: rows and mappings
// visited, heap comparisons, names merged. A report may hold hundreds of
// thousands of mappings, so the count must grow linearly with them (a
// test holds it to that; a timed one would flake).
func countedRows(r *layout.Report, o Options, work *int) []row {
	rows := mappingRows(r, work)
	rows = withEmptyHeap(rows, r)
	full := withGaps(rows, r, work)
	markHeadroom(full, r, o)
	full = insertMmapBase(full, r)
	return shrinkRows(full, work)
}

// mappingRows folds the report's mappings, in address order, into rows:
// a run of mappings that read as one thing (a library's segments, a
// stretch of anonymous memory) is one row, unless marked.
func mappingRows(r *layout.Report, work *int) []row {
	// Reports come sorted: copy only to sort (the rows only read vmas).
	vmas := r.VMAs
	if !slices.IsSortedFunc(vmas, func(a, b layout.Mapping) int { return cmp.Compare(a.Start, b.Start) }) {
		vmas = append([]layout.Mapping(nil), r.VMAs...)
		sort.SliceStable(vmas, func(i, j int) bool { return vmas[i].Start < vmas[j].Start })
	}
	vmas = splitHeap(vmas, r)

	// The executable's own size bounds what is believable as its bss.
	var exeSize uint64
	for i := range vmas {
		if r.Exe != "" && vmas[i].Path == r.Exe {
			exeSize += vmas[i].End - vmas[i].Start
		}
	}

	mk := newMarker(r)

	// Sized as it grows: many mappings fold into few rows.
	var rows []row
	for i := 0; i < len(vmas); {
		*work++
		m := vmas[i]
		rw := firstRow(&m, r.Exe, mk, rows, exeSize)
		i++
		bssFolded := false
		for !rw.pinned && i < len(vmas) && !mk.marked(&vmas[i]) {
			*work++
			n := &vmas[i]
			if n.Start < rw.hi || !rw.continues(&m, n, &vmas[i-1], r.Exe, &bssFolded) {
				break
			}
			rw.hi = n.End
			rw.count++
			i++
		}
		if rw.count > 1 {
			rw.prot = "×" + strconv.Itoa(rw.count)
		}
		rows = append(rows, rw)
	}
	return rows
}

// firstRow is the row that mapping m starts; rows are those below it.
func firstRow(m *layout.Mapping, exe string, mk *marker, rows []row, exeSize uint64) row {
	k := kindOf(m, exe)
	notes := mk.marks(m)
	rw := row{typ: rowMap, lo: m.Start, hi: m.End, kind: k, label: mapLabel(m, k, exe),
		prot: m.Prot, count: 1, notes: notes}
	rw.pinned = len(notes) > 0 || k == kindHeap || k == kindStack
	if rw.pinned && k == kindFile {
		rw.long = m.Path
	}
	if k == kindAnon && len(rows) > 0 {
		// The kernel maps the executable's bss right after its data.
		// Anonymous memory mapped right above it joins the same VMA,
		// so a bss larger than the program is mostly something else.
		if p := rows[len(rows)-1]; p.hi == m.Start && p.kind == kindData && strings.HasPrefix(p.label, "data") {
			if m.End-m.Start <= max(1<<20, exeSize) {
				rw.kind, rw.label = kindData, "bss"
				rw.pinned = true
			} else {
				rw.label = "bss + anonymous"
			}
		}
	}
	return rw
}

// continues says whether mapping n, just above prev, belongs in rw, the
// unpinned row that mapping m started (so rw.kind is m's kind), and
// adds to rw's label what n brings to it.
func (rw *row) continues(m, n, prev *layout.Mapping, exe string, bssFolded *bool) bool {
	nk := kindOf(n, exe)
	gap := n.Start - rw.hi
	switch rw.kind {
	case kindText, kindData:
		return gap == 0 && nk == rw.kind && mapLabel(n, nk, exe) == rw.label
	case kindFile:
		switch {
		case nk == kindFile && n.Path == m.Path && gap <= 1<<20:
			return true
		case nk == kindAnon && gap == 0 && !*bssFolded && strings.HasPrefix(prev.Prot, "rw") &&
			n.End-n.Start <= rw.hi-rw.lo:
			// A library's bss; anonymous memory merged onto it
			// would outweigh the library and gets its own row.
			*bssFolded = true
			rw.label += " +bss"
			return true
		}
	case kindAnon:
		return nk == kindAnon && gap == 0
	case kindSpecial:
		if nk != kindSpecial || gap != 0 {
			return false
		}
		if !strings.Contains(rw.label, n.Path) {
			rw.label += " " + n.Path
		}
		return true
	}
	return false
}

// withEmptyHeap adds, to an image that never grew its heap and so has no
// [heap] mapping, a row that shows where the heap starts.
func withEmptyHeap(rows []row, r *layout.Report) []row {
	hasHeap := false
	for _, rw := range rows {
		hasHeap = hasHeap || rw.kind == kindHeap
	}
	if hasHeap || r.StartBrk == 0 {
		return rows
	}
	h := row{typ: rowMap, lo: r.StartBrk, hi: max(r.Brk, r.StartBrk), kind: kindHeap, label: "[heap] (empty) ↑", pinned: true}
	at := sort.Search(len(rows), func(i int) bool { return rows[i].lo >= h.lo })
	return append(rows[:at], append([]row{h}, rows[at:]...)...)
}

// withGaps puts the gaps between rows, below the lowest and above the
// highest mapping, and kernel space on top.
func withGaps(rows []row, r *layout.Report, work *int) []row {
	top := taskSize(r.ABI, r.VMAs)
	full := make([]row, 0, 2*len(rows)+2)
	prev := uint64(0)
	for _, rw := range rows {
		*work++
		if rw.lo > prev {
			full = append(full, row{typ: rowGap, lo: prev, hi: rw.lo, label: "free"})
		}
		full = append(full, rw)
		prev = max(prev, rw.hi)
	}
	if top > prev {
		full = append(full, row{typ: rowGap, lo: prev, hi: top, label: "free"})
	}
	return append(full, row{typ: rowKernel, lo: top, label: "kernel space"})
}

// splitHeap cuts the [heap] VMA at the heap's own bounds, start_brk and
// the page of the break. The kernel names a whole VMA [heap] when it
// merged the heap with anonymous memory beside it (vma_is_initial_heap):
// the bss below when brk is not randomised, or a mapping that starts
// right at the break, often the squeezer. The picture shows each part as
// what it is, so the squeezer sits visibly on top of the heap.
func splitHeap(vmas []layout.Mapping, r *layout.Report) []layout.Mapping {
	if r.StartBrk == 0 {
		return vmas
	}
	lo, hi := r.StartBrk&^4095, pageUp(max(r.Brk, r.StartBrk))
	whole := func(m *layout.Mapping) bool {
		return m.Path != "[heap]" || (m.Start >= lo && m.End <= hi) || m.End <= lo || m.Start >= hi
	}
	first := slices.IndexFunc(vmas, func(m layout.Mapping) bool { return !whole(&m) })
	if first < 0 {
		return vmas // nothing to cut: no copy of what may be 100k mappings
	}
	out := make([]layout.Mapping, 0, len(vmas)+2)
	out = append(out, vmas[:first]...)
	for _, m := range vmas[first:] {
		if whole(&m) {
			out = append(out, m)
			continue
		}
		if m.Start < lo {
			below := m
			below.End, below.Path, below.Placement, below.Seq = lo, "", layout.PlacementNone, 0
			out = append(out, below)
		}
		heap := m
		heap.Start, heap.End = max(m.Start, lo), min(m.End, hi)
		if heap.End > heap.Start {
			out = append(out, heap)
		}
		if m.End > hi {
			above := m
			above.Start, above.Path, above.Placement, above.Seq = hi, "", layout.PlacementNone, 0
			if sq := r.Squeezer; sq != nil && sq.Start == hi && sq.Path == "" {
				above.Placement, above.Seq = sq.Placement, sq.Seq
			}
			out = append(out, above)
		}
	}
	return out
}

// marker finds the marks of each mapping; the blockers of failed brk
// calls are sorted once, so that a mapping's count is a binary search and
// not a walk over every failure.
type marker struct {
	r        *layout.Report
	blockers []uint64 // start of the mapping each failed brk was blocked by
}

func newMarker(r *layout.Report) *marker {
	mk := &marker{r: r}
	for i := range r.BrkFailures {
		if b := r.BrkFailures[i].BlockedBy; b != nil {
			mk.blockers = append(mk.blockers, b.Start)
		}
	}
	slices.Sort(mk.blockers)
	return mk
}

// blocked is the number of failed brk calls blocked by a mapping starting
// in [lo, hi).
func (mk *marker) blocked(lo, hi uint64) int {
	i, _ := slices.BinarySearch(mk.blockers, lo)
	j, _ := slices.BinarySearch(mk.blockers, hi)
	return j - i
}

// marked says whether m has marks, without building them.
func (mk *marker) marked(m *layout.Mapping) bool {
	r := mk.r
	contains := func(x *layout.Mapping) bool { return x != nil && x.Start >= m.Start && x.Start < m.End }
	return r.Squeezer != nil && contains(&r.Squeezer.Mapping) || mk.blocked(m.Start, m.End) > 0 ||
		contains(r.BoundedBy) || m.Path == "[heap]"
}

// marks are the notes shown beside a mapping: squeezer, blocker of
// failed brk calls, the mapping that bounds the heap now, the heap's brk.
func (mk *marker) marks(m *layout.Mapping) []segment {
	r := mk.r
	var out []segment
	contains := func(x *layout.Mapping) bool { return x != nil && x.Start >= m.Start && x.Start < m.End }
	if r.Squeezer != nil && contains(&r.Squeezer.Mapping) {
		out = append(out, segment{"◀ SQUEEZER (" + string(r.Squeezer.Placement) + ", seq " + strconv.FormatUint(r.Squeezer.Seq, 10) + ")", sgrBadRed})
	}
	blocked := mk.blocked(m.Start, m.End)
	if blocked > 0 {
		t := "◀ blocked brk"
		if len(out) > 0 {
			t = ", blocked brk"
		}
		if blocked > 1 {
			t += " ×" + strconv.Itoa(blocked)
		}
		out = append(out, segment{t, sgrRed})
	}
	if len(out) == 0 && contains(r.BoundedBy) {
		out = append(out, segment{"◀ bounds the heap", sgrYellow})
	}
	if m.Path == "[heap]" {
		t := "brk " + hex(r.Brk)
		if len(out) > 0 {
			t = ", " + t
		}
		out = append(out, segment{t, sgrNone})
	}
	return out
}

func mapLabel(m *layout.Mapping, k kind, exe string) string {
	switch k {
	case kindText:
		return "text " + baseName(exe)
	case kindData:
		switch {
		case strings.HasPrefix(m.Prot, "rw"):
			return "data " + baseName(exe)
		case strings.HasPrefix(m.Prot, "r-"):
			return "rodata " + baseName(exe)
		}
		return baseName(exe)
	case kindHeap:
		return "[heap] ↑"
	case kindStack:
		return "[stack] ↓"
	case kindSpecial:
		return m.Path
	case kindAnon:
		return "anonymous"
	}
	return baseName(m.Path)
}

// markHeadroom labels the gap above the heap with the headroom, or notes
// on the heap row that there is none.
func markHeadroom(rows []row, r *layout.Report, o Options) {
	sgr := sgrGreen
	if r.BrkHeadroom < o.threshold() {
		sgr = sgrBadRed
	}
	note := segment{"headroom " + Size(r.BrkHeadroom), sgr}
	for i := range rows {
		if rows[i].kind != kindHeap || rows[i].typ != rowMap {
			continue
		}
		// The gap above the heap row is the headroom only when it starts at
		// the break: a mapping merged onto the heap (as /proc shows it)
		// leaves none, whatever is free above.
		if i+1 < len(rows) && rows[i+1].typ == rowGap && rows[i+1].lo == pageUp(r.Brk) {
			rows[i+1].headroom = true
			rows[i+1].label = "headroom ↑"
			rows[i+1].notes = append(rows[i+1].notes, note)
		} else {
			note.text = "; " + note.text
			rows[i].notes = append(rows[i].notes, note)
		}
		return
	}
}

// insertMmapBase adds the line of the mmap base, splitting the gap it
// falls in.
func insertMmapBase(rows []row, r *layout.Report) []row {
	base := r.MmapBase
	if base == 0 {
		return rows
	}
	label, short := "mmap base", "mmap base"
	switch r.Layout {
	case "flexible":
		label, short = "mmap base ↓ top-down", "mmap base ↓"
	case "legacy":
		label, short = "mmap base ↑ bottom-up", "mmap base ↑"
	}
	mark := row{typ: rowBase, lo: base, hi: base, label: label, long: short}
	for j := range rows {
		rw := rows[j]
		if rw.typ == rowKernel || rw.lo >= base {
			return insertRow(rows, j, mark)
		}
		if base >= rw.hi {
			continue
		}
		if rw.typ != rowGap {
			return insertRow(rows, j+1, mark)
		}
		low, high := rw, rw
		low.hi, high.lo = base, base
		high.headroom, high.notes, high.label = false, nil, "free"
		rows[j] = low
		return insertRow(insertRow(rows, j+1, mark), j+2, high)
	}
	return append(rows, mark)
}

func insertRow(rows []row, at int, rw row) []row {
	rows = append(rows, row{})
	copy(rows[at+1:], rows[at:])
	rows[at] = rw
	return rows
}

func rowsHeight(rows []row, work *int) int {
	n := 0
	*work += len(rows)
	for _, rw := range rows {
		if rw.typ == rowGap {
			n += gapLines(rw.hi - rw.lo)
		} else {
			n++
		}
	}
	return n
}

// shrinkRows keeps the picture near maxPictureLines: first it hides ever
// larger gaps between ordinary mappings, then merges runs of libraries and
// anonymous mappings into one row each. The heap, its headroom, the stack
// and marked mappings always keep their own rows. Its work (added to
// *work) is linear in the rows.
func shrinkRows(rows []row, work *int) []row {
	for _, minGap := range []uint64{64 << 10, 1 << 20, 16 << 20, 256 << 20} {
		if rowsHeight(rows, work) <= maxPictureLines {
			return rows
		}
		kept := make([]row, 0, len(rows))
		for i, rw := range rows {
			*work++
			if rw.typ == rowGap && !rw.headroom && i > 0 && i < len(rows)-1 &&
				rw.hi-rw.lo < minGap && rows[i-1].typ == rowMap && rows[i+1].typ == rowMap {
				continue
			}
			kept = append(kept, rw)
		}
		rows = kept
	}
	// Merge the smallest neighbouring pair of ordinary rows until the
	// picture fits, so that big libraries keep their own rows longest.
	// Files join files and anonymous memory joins anonymous memory first:
	// a row named after a library must not be mostly anonymous memory.
	rows, height := prefold(rows, rowsHeight(rows, work), work)
	return mergeSmallest(rows, height, work)
}

// foldExact is the most mergeable rows that mergeSmallest, O(n log n),
// takes as they are; foldKeep is how many of the largest keep their rows
// when prefold has to cut more down first.
const (
	foldExact = 256
	foldKeep  = 64
)

// prefold brings a picture of more than foldExact mergeable rows down in
// one linear pass: the largest rows (whole power-of-two size classes, from
// the top, at most foldKeep of them) keep theirs, and each run of smaller
// neighbours becomes one row. mergeSmallest then works on a few hundred
// rows at most, whatever the process mapped: all it can merge is a kept
// row with a run or another kept row. It returns the rows and their height.
func prefold(rows []row, height int, work *int) ([]row, int) {
	var classes [65]int // mergeable rows by bits.Len64 of their size
	n := 0
	for _, rw := range rows {
		*work++
		if mergeable(rw) {
			classes[bits.Len64(rw.hi-rw.lo)]++
			n++
		}
	}
	if n <= foldExact || height <= maxPictureLines {
		return rows, height
	}
	cut, kept := len(classes), 0
	for cut > 0 && kept+classes[cut-1] <= foldKeep {
		cut--
		kept += classes[cut]
	}
	small := func(rw row) bool { return mergeable(rw) && bits.Len64(rw.hi-rw.lo) < cut }
	out := rows[:0] // in place: a write never overtakes the read
	for i := 0; i < len(rows); {
		*work++
		j := i + 1
		if small(rows[i]) {
			for j < len(rows) && small(rows[j]) {
				*work++
				j++
			}
		}
		if j-i == 1 {
			out = append(out, rows[i])
		} else {
			out = append(out, mergedRow(rows[i:j], work))
			height -= j - i - 1
		}
		i = j
	}
	return out, height
}

// pairHeap holds candidate merges, smallest first, then leftmost first.
type pairHeap struct {
	pairs []rowPair
	work  *int // comparisons are counted
}

// rowPair is rows i and j (next to each other) as they were at versions
// vi and vj; a merge since then makes it stale.
type rowPair struct {
	size   uint64
	i, j   int
	vi, vj int
}

func (h *pairHeap) Len() int { return len(h.pairs) }
func (h *pairHeap) Less(a, b int) bool {
	*h.work++
	p := h.pairs
	return p[a].size < p[b].size || p[a].size == p[b].size && p[a].i < p[b].i
}
func (h *pairHeap) Swap(a, b int) { h.pairs[a], h.pairs[b] = h.pairs[b], h.pairs[a] }
func (h *pairHeap) Push(x any)    { h.pairs = append(h.pairs, x.(rowPair)) }
func (h *pairHeap) Pop() any {
	old := h.pairs
	x := old[len(old)-1]
	h.pairs = old[:len(old)-1]
	return x
}

// mergeSmallest merges, while the picture is higher than maxPictureLines,
// the neighbouring pair of mergeable rows that spans the fewest bytes,
// taking pairs of the same kind first, the leftmost on a tie. Rows are a
// linked list and candidate pairs wait in heaps (stale ones are skipped
// when they come up), so it costs O(n log n) for n rows, not O(n²); prefold
// keeps n small.
func mergeSmallest(rows []row, height int, work *int) []row {
	if height <= maxPictureLines {
		return rows
	}
	n := len(rows)
	next, prev, ver := make([]int, n), make([]int, n), make([]int, n)
	for i := range rows {
		next[i], prev[i] = i+1, i-1
	}
	next[n-1] = -1
	same, all := pairHeap{work: work}, pairHeap{work: work}
	push := func(i int) { // the pair of row i and the one after it
		*work++
		j := next[i]
		if i < 0 || j < 0 || !mergeable(rows[i]) || !mergeable(rows[j]) {
			return
		}
		p := rowPair{size: rows[j].hi - rows[i].lo, i: i, j: j, vi: ver[i], vj: ver[j]}
		if rows[i].kind == rows[j].kind {
			prio.Push(&same, p)
		}
		prio.Push(&all, p)
	}
	for i := 0; i+1 < n; i++ {
		push(i)
	}
	fresh := func(p rowPair) bool { return next[p.i] == p.j && ver[p.i] == p.vi && ver[p.j] == p.vj }
	pop := func(h *pairHeap) (rowPair, bool) {
		for h.Len() > 0 {
			if p := prio.Pop(h).(rowPair); fresh(p) {
				return p, true
			}
		}
		return rowPair{}, false
	}
	for ; height > maxPictureLines; height-- {
		p, ok := pop(&same)
		if !ok {
			if p, ok = pop(&all); !ok {
				break
			}
		}
		i, j := p.i, p.j
		rows[i] = mergedRow([]row{rows[i], rows[j]}, work)
		ver[i]++
		next[i] = next[j]
		if next[j] >= 0 {
			prev[next[j]] = i
		}
		next[j] = -1
		if prev[i] >= 0 {
			push(prev[i])
		}
		push(i)
	}
	kept := make([]row, 0, n)
	for i := 0; i >= 0; i = next[i] {
		*work++
		kept = append(kept, rows[i])
	}
	return kept
}

func mergeable(rw row) bool {
	return rw.typ == rowMap && !rw.pinned && (rw.kind == kindFile || rw.kind == kindAnon)
}

// mergedRow joins neighbouring rows into one, naming what is in it
// largest first, anonymous memory included, and painted as the larger of
// files and anonymous memory.
func mergedRow(run []row, work *int) row {
	m := row{typ: rowMap, lo: run[0].lo, hi: run[len(run)-1].hi}
	m.files, m.rest = mergeNames(run, work)
	var fileBytes, anonBytes uint64
	for _, rw := range run {
		m.count += rw.count
		bytes := rw.rest
		for _, name := range rw.names() {
			bytes += name.size
		}
		if rw.kind == kindFile {
			fileBytes += bytes
		} else {
			anonBytes += bytes
		}
	}
	m.kind = kindAnon
	if fileBytes > anonBytes {
		m.kind = kindFile
	}
	m.label = filesLabel(m.files)
	m.prot = "×" + strconv.Itoa(m.count)
	return m
}

// maxNames is the most names a merged row keeps: its label is cut to the
// bar's width long before, and a row of 100k distinct files must not cost
// a sort of them all.
const maxNames = 64

// mergeNames sums the sizes of the names of run by name, biggest first
// (first seen first among equals), keeping the maxNames biggest; rest is
// the bytes of the others, and of those the rows of run had dropped.
func mergeNames(run []row, work *int) (files []fileSize, rest uint64) {
	var at map[string]int // index in files, once there are many
	for _, rw := range run {
		rest += rw.rest
		for _, name := range rw.names() {
			*work++
			i := -1
			if at != nil {
				if j, ok := at[name.text]; ok {
					i = j
				}
			} else {
				for j := range files {
					*work++
					if files[j].text == name.text {
						i = j
						break
					}
				}
			}
			if i >= 0 {
				files[i].size += name.size
				continue
			}
			files = append(files, name)
			if at == nil && len(files) > 32 {
				at = make(map[string]int, 2*len(files))
				for j, f := range files {
					at[f.text] = j
				}
			} else if at != nil {
				at[name.text] = len(files) - 1
			}
		}
	}
	files, dropped := topNames(files, work)
	slices.SortStableFunc(files, func(a, b fileSize) int { return cmp.Compare(b.size, a.size) })
	return files, rest + dropped
}

// topNames keeps the maxNames biggest of files (the first seen among
// equals), in their order, with a heap of maxNames: linear in the names.
// It returns them and the bytes of the others.
func topNames(files []fileSize, work *int) ([]fileSize, uint64) {
	if len(files) <= maxNames {
		return files, 0
	}
	// worse says whether name a ranks after name b.
	worse := func(a, b int) bool {
		return files[a].size < files[b].size || files[a].size == files[b].size && a > b
	}
	h := make([]int, 0, maxNames) // indices, the one ranking last on top
	for i := range files {
		*work++
		switch {
		case len(h) < maxNames:
			h = append(h, i)
			for c := len(h) - 1; c > 0 && worse(h[c], h[(c-1)/2]); c = (c - 1) / 2 {
				h[c], h[(c-1)/2] = h[(c-1)/2], h[c]
			}
		case worse(h[0], i):
			h[0] = i
			for c := 0; ; {
				w := c
				for _, k := range []int{2*c + 1, 2*c + 2} {
					if k < len(h) && worse(h[k], h[w]) {
						w = k
					}
				}
				if w == c {
					break
				}
				h[c], h[w] = h[w], h[c]
				c = w
			}
		}
	}
	slices.Sort(h)
	var total uint64
	for _, f := range files {
		total += f.size
	}
	kept := make([]fileSize, len(h))
	for k, i := range h {
		kept[k] = files[i]
		total -= files[i].size
	}
	return kept, total
}

func filesLabel(files []fileSize) string {
	n := 0
	for _, f := range files {
		n += len(f.text) + 2
	}
	b := make([]byte, 0, n)
	for i, f := range files {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, f.text...)
	}
	return string(b)
}

type fileSize struct {
	text string
	size uint64
}

// names are what a row holds with their sizes: its files, or its own
// label for anonymous memory.
func (rw row) names() []fileSize {
	if rw.files != nil {
		return rw.files
	}
	return []fileSize{{strings.TrimSuffix(rw.label, " +bss"), rw.hi - rw.lo}}
}
