package render

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/mmtrace/mmtrace/internal/layout"
)

// SVG collects the layouts of each traced image over time and draws them
// as one picture per image: layout changes across (in event order), the
// address up with the empty space between occupied regions compressed to
// a log scale, mappings coloured by kind, the heap's break as a line, the
// squeezer outlined and failed brk calls marked.
type SVG struct {
	o      Options
	images []*svgImage
	byKey  map[svgKey]*svgImage
}

type svgKey struct {
	pid  uint32
	exec uint64
}

type svgImage struct {
	rep   layout.Report // the latest observation's scalar facts
	times []uint64      // time of each step (one step per Observe)

	spans []svgSpan
	open  map[spanKey]int // spans still present, by identity

	brk      []brkPoint
	squeezer *layout.Squeezer
	sqStep   int
	failures []svgFailure
	failSeen map[uint64]bool

	truncated int // step from which new mappings were no longer recorded (0: none)
}

// maxSVGSpans bounds the mappings drawn per image, so that a process that
// maps and unmaps in a loop for hours cannot make an unopenable file.
const maxSVGSpans = 20000

type spanKey struct {
	start, end uint64
	prot, path string
}

// svgSpan is one mapping present from step from up to (not including) to.
type svgSpan struct {
	m        layout.Mapping
	from, to int
	seen     int // last step it was present in
}

type brkPoint struct {
	step     int
	startBrk uint64
	brk      uint64
}

type svgFailure struct {
	step int
	f    layout.BrkFailure
}

// NewSVG returns an empty timeline.
func NewSVG(o Options) *SVG {
	return &SVG{o: o, byKey: map[svgKey]*svgImage{}}
}

// Observe records the layout r of one image at time t (CLOCK_MONOTONIC
// nanoseconds). t = 0 means "at the latest time seen for that image", for
// a final report. Call it whenever the layout changed.
func (s *SVG) Observe(t uint64, r *layout.Report) {
	if r == nil {
		return
	}
	r = r.WithVMAs()
	k := svgKey{r.PID, r.ExecSeq}
	im := s.byKey[k]
	if im == nil {
		im = &svgImage{open: map[spanKey]int{}, failSeen: map[uint64]bool{}}
		s.byKey[k] = im
		s.images = append(s.images, im)
	}
	if n := len(im.times); n > 0 && t < im.times[n-1] {
		t = im.times[n-1]
	}
	step := len(im.times)
	im.times = append(im.times, t)
	im.rep = *r
	im.rep.VMAs, im.rep.BrkFailures = nil, nil

	vmas := append([]layout.Mapping(nil), r.VMAs...)
	sort.SliceStable(vmas, func(i, j int) bool { return vmas[i].Start < vmas[j].Start })
	// As in the text picture: a squeezer merged onto the heap is drawn as
	// itself, not as heap.
	vmas = splitHeap(vmas, r)
	for i := range vmas {
		m := vmas[i]
		if m.End <= m.Start {
			continue
		}
		key := spanKey{m.Start, m.End, m.Prot, m.Path}
		if j, ok := im.open[key]; ok {
			im.spans[j].seen = step
			continue
		}
		if len(im.spans) >= maxSVGSpans {
			if im.truncated == 0 {
				im.truncated = max(step, 1)
			}
			continue
		}
		im.open[key] = len(im.spans)
		im.spans = append(im.spans, svgSpan{m: m, from: step, to: -1, seen: step})
	}
	for key, j := range im.open {
		if im.spans[j].seen != step {
			im.spans[j].to = step
			delete(im.open, key)
		}
	}
	if n := len(im.brk); n == 0 || im.brk[n-1].brk != r.Brk || im.brk[n-1].startBrk != r.StartBrk {
		im.brk = append(im.brk, brkPoint{step, r.StartBrk, r.Brk})
	}
	if im.squeezer == nil && r.Squeezer != nil {
		sq := *r.Squeezer
		im.squeezer, im.sqStep = &sq, step
	}
	for _, f := range r.BrkFailures {
		if !im.failSeen[f.Seq] {
			im.failSeen[f.Seq] = true
			if f.BlockedBy != nil {
				b := *f.BlockedBy
				f.BlockedBy = &b
			}
			im.failures = append(im.failures, svgFailure{step, f})
		}
	}
}

// Geometry of the drawing, in pixels.
const (
	svgWidth       = 1280
	svgMarginLeft  = 150
	svgMarginRight = 250
	svgPlotHeight  = 460
	svgPanelHead   = 58
	svgPanelFoot   = 46
	svgTop         = 96
)

// Kind colours (Tableau 10), the same order as kind.
var kindFill = [...]string{
	kindAnon: "#bab0ac", kindText: "#4e79a7", kindData: "#76b7b2", kindHeap: "#59a14f",
	kindFile: "#f28e2b", kindStack: "#b07aa1", kindSpecial: "#9c755f", kindKernel: "#eeeeee",
}

const (
	colSqueeze = "#d62728"
	colBrk     = "#1b5e20"
)

// WriteTo writes the SVG document.
func (s *SVG) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	bw := bufio.NewWriter(cw)
	panelH := svgPanelHead + svgPlotHeight + svgPanelFoot
	height := svgTop + max(1, len(s.images))*panelH + 20
	fmt.Fprintf(bw, `<?xml version="1.0" encoding="UTF-8"?>`+"\n")
	fmt.Fprintf(bw, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">`+"\n",
		svgWidth, height, svgWidth, height)
	bw.WriteString("<title>mmtrace: address space over time</title>\n")
	fmt.Fprintf(bw, `<rect x="0" y="0" width="%d" height="%d" fill="#ffffff"/>`+"\n", svgWidth, height)
	fmt.Fprintf(bw, `<text x="20" y="30" font-size="20" font-weight="bold">mmtrace: address space over time</text>`+"\n")
	fmt.Fprintf(bw, `<text x="20" y="50" fill="#555">Each panel is one process image. Time runs across (one column per layout change); addresses run up; empty space between occupied regions is compressed (log scale).</text>`+"\n")
	s.writeLegend(bw, 20, 72)
	if len(s.images) == 0 {
		fmt.Fprintf(bw, `<text x="20" y="%d" fill="#555">No traced process image was observed.</text>`+"\n", svgTop+30)
	}
	for i, im := range s.images {
		s.writePanel(bw, im, svgTop+i*panelH)
	}
	bw.WriteString("</svg>\n")
	err := bw.Flush()
	return cw.n, err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func (s *SVG) writeLegend(w *bufio.Writer, x, y int) {
	items := []struct {
		k    kind
		name string
	}{
		{kindText, "text"}, {kindData, "data, bss"}, {kindHeap, "heap"}, {kindAnon, "anonymous"},
		{kindFile, "file, library"}, {kindStack, "stack"}, {kindSpecial, "vdso, vvar"},
	}
	for _, it := range items {
		fmt.Fprintf(w, `<rect x="%d" y="%d" width="14" height="14" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
			x, y-11, kindFill[it.k], x+19, y, it.name)
		x += 26 + 7*len(it.name) + 14
	}
	fmt.Fprintf(w, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/><text x="%d" y="%d">brk</text>`+"\n",
		x, y-4, x+18, y-4, colBrk, x+23, y)
	x += 60
	fmt.Fprintf(w, `<rect x="%d" y="%d" width="14" height="14" fill="none" stroke="%s" stroke-width="2.5"/><text x="%d" y="%d">squeezer</text>`+"\n",
		x, y-11, colSqueeze, x+19, y)
	x += 90
	fmt.Fprintf(w, `<path d="%s" stroke="%s" stroke-width="2.5"/><text x="%d" y="%d">failed brk</text>`+"\n",
		crossPath(float64(x+7), float64(y-4), 5), colSqueeze, x+19, y)
	x += 100
	fmt.Fprintf(w, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#555" stroke-dasharray="5,3"/><text x="%d" y="%d">mmap base</text>`+"\n",
		x, y-4, x+18, y-4, x+23, y)
}

func crossPath(cx, cy, r float64) string {
	return fmt.Sprintf("M%.1f %.1fL%.1f %.1fM%.1f %.1fL%.1f %.1f", cx-r, cy-r, cx+r, cy+r, cx-r, cy+r, cx+r, cy-r)
}

// yScale maps addresses to heights: every interval between two
// boundaries gets a height that grows with the log of its size, occupied
// intervals more than empty ones, so that a 4 KiB mapping and a 100 TiB
// gap both stay visible.
type yScale struct {
	bounds []uint64  // sorted unique addresses
	pos    []float64 // pixel offset (from the bottom) of each bound
	empty  []bool    // interval i (bounds[i]..bounds[i+1]) is never occupied
	top    float64   // plot top in pixels
	height float64
}

// Neighbouring intervals of nothing but anonymous memory (anonOnly at
// their middle) share the height of one interval as large as all of
// them: a run of 1 MiB blocks is one band, as in the text picture, and
// leaves the height to the heap, the squeezer and the program.
func newYScale(addrs []uint64, occupied [][2]uint64, top, height float64, anonOnly func(uint64) bool) *yScale {
	sort.Slice(addrs, func(i, j int) bool { return addrs[i] < addrs[j] })
	var b []uint64
	for i, a := range addrs {
		if i == 0 || a != addrs[i-1] {
			b = append(b, a)
		}
	}
	y := &yScale{bounds: b, top: top, height: height}
	if len(b) < 2 {
		y.pos = make([]float64, len(b))
		return y
	}
	weights := make([]float64, len(b)-1)
	y.empty = make([]bool, len(b)-1)
	logOf := func(size uint64) float64 { return math.Log2(float64(max(size, 4096)) / 4096) }
	total := 0.0
	for i := 0; i < len(weights); i++ {
		size := b[i+1] - b[i]
		mid := b[i] + size/2
		switch {
		case !inUnion(occupied, mid):
			y.empty[i] = true
			weights[i] = 0.5 + logOf(size)/8
		case anonOnly != nil && anonOnly(mid):
			j := i + 1
			for j < len(weights) && anonOnly(b[j]+(b[j+1]-b[j])/2) {
				j++
			}
			run := b[j] - b[i]
			wgt := 1 + logOf(run)/3
			for k := i; k < j; k++ {
				weights[k] = wgt * float64(b[k+1]-b[k]) / float64(run)
			}
			i = j - 1
		default:
			weights[i] = 1 + logOf(size)/3
		}
	}
	for _, w := range weights {
		total += w
	}
	y.pos = make([]float64, len(b))
	for i, wgt := range weights {
		y.pos[i+1] = y.pos[i] + wgt/total*height
	}
	return y
}

// inUnion reports whether a lies in one of the sorted, merged ranges.
func inUnion(u [][2]uint64, a uint64) bool {
	i := sort.Search(len(u), func(i int) bool { return u[i][1] > a })
	return i < len(u) && u[i][0] <= a
}

// at is the y pixel of address a (clamped to the scale's range).
func (y *yScale) at(a uint64) float64 {
	b := y.bounds
	if len(b) == 0 {
		return y.top + y.height
	}
	if a <= b[0] {
		return y.top + y.height - y.pos[0]
	}
	if a >= b[len(b)-1] {
		return y.top + y.height - y.pos[len(b)-1]
	}
	i := sort.Search(len(b), func(i int) bool { return b[i] > a }) - 1
	frac := float64(a-b[i]) / float64(b[i+1]-b[i])
	return y.top + y.height - (y.pos[i] + frac*(y.pos[i+1]-y.pos[i]))
}

// panel is one image's drawing: where its plot stands on the page, and
// the scales that place layout steps (x) and addresses (y) in it.
type panel struct {
	w     *bufio.Writer
	im    *svgImage
	kinds []kind // of im.spans
	steps int
	y     *yScale

	plotX, plotW, plotTop, plotH float64
}

// xAt is the x pixel where layout step begins.
func (p *panel) xAt(step int) float64 {
	return p.plotX + p.plotW*float64(step)/float64(max(p.steps, 1))
}

func (s *SVG) writePanel(w *bufio.Writer, im *svgImage, top int) {
	r := &im.rep
	p := &panel{w: w, im: im, steps: len(im.times),
		plotX:   float64(svgMarginLeft),
		plotW:   float64(svgWidth - svgMarginLeft - svgMarginRight),
		plotTop: float64(top + svgPanelHead),
		plotH:   float64(svgPlotHeight),
	}

	// Heading.
	fmt.Fprintf(w, `<g class="image" data-pid="%d">`+"\n", r.PID)
	fmt.Fprintf(w, `<text x="20" y="%d" font-size="15" font-weight="bold">%s</text>`+"\n", top+20, esc(panelTitle(r)))
	fmt.Fprintf(w, `<text x="20" y="%d" fill="%s">%s</text>`+"\n", top+40, verdictColour(r, s.o), esc(panelVerdict(im, s.o)))

	p.kinds = im.kinds()
	p.y = p.scale()
	fmt.Fprintf(w, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#fafafa" stroke="#999"/>`+"\n", p.plotX, p.plotTop, p.plotW, p.plotH)
	p.writeEmpty()
	p.writeMappings()
	p.writeMmapBase()
	p.writeBrk()
	p.writeSqueezer()
	p.writeFailures()
	p.writeAddresses()
	p.writeNames()
	p.writeTimes()
	w.WriteString("</g>\n")
}

// scale is the y scale: every span edge, the heap, the mmap base.
func (p *panel) scale() *yScale {
	im, r := p.im, &p.im.rep
	var addrs []uint64
	var occ, anon, other [][2]uint64
	for i := range im.spans {
		m := &im.spans[i].m
		addrs = append(addrs, m.Start, m.End)
		occ = append(occ, [2]uint64{m.Start, m.End})
		if p.kinds[i] == kindAnon {
			anon = append(anon, [2]uint64{m.Start, m.End})
		} else {
			other = append(other, [2]uint64{m.Start, m.End})
		}
	}
	for _, b := range im.brk {
		if b.startBrk != 0 {
			addrs = append(addrs, b.startBrk, max(b.brk, b.startBrk))
			if b.brk > b.startBrk {
				occ = append(occ, [2]uint64{b.startBrk, b.brk})
				other = append(other, [2]uint64{b.startBrk, b.brk})
			}
		}
	}
	if sq := im.squeezer; sq != nil {
		other = append(other, [2]uint64{sq.Start, sq.End})
	}
	if r.MmapBase != 0 && len(addrs) > 0 {
		addrs = append(addrs, r.MmapBase)
	}
	occ, anon, other = mergeRanges(occ), mergeRanges(anon), mergeRanges(other)
	return newYScale(addrs, occ, p.plotTop, p.plotH, func(a uint64) bool { return inUnion(anon, a) && !inUnion(other, a) })
}

// writeEmpty draws the empty stretches: hatched bands with their size,
// so the compression shows.
func (p *panel) writeEmpty() {
	w, y, r := p.w, p.y, &p.im.rep
	for i := range y.empty {
		if !y.empty[i] {
			continue
		}
		y0, y1 := y.at(y.bounds[i+1]), y.at(y.bounds[i])
		if y1-y0 < 3 {
			continue
		}
		fmt.Fprintf(w, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#eeeeee"><title>%s unmapped</title></rect>`+"\n",
			p.plotX, y0, p.plotW, y1-y0, Size(y.bounds[i+1]-y.bounds[i]))
		if y1-y0 >= 12 {
			what := "unmapped"
			if y.bounds[i] == pageUp(r.Brk) && r.Brk != 0 {
				what = "unmapped: the heap's headroom"
			}
			fmt.Fprintf(w, `<text x="%.1f" y="%.1f" fill="#777" font-size="11">≈ %s %s</text>`+"\n",
				p.plotX+6, (y0+y1)/2+4, Size(y.bounds[i+1]-y.bounds[i]), what)
		}
	}
}

// writeMappings draws each mapping from the step it appeared to the one
// it went.
func (p *panel) writeMappings() {
	im := p.im
	for i := range im.spans {
		sp := &im.spans[i]
		to := sp.to
		if to < 0 {
			to = p.steps
		}
		k := p.kinds[i]
		y0, y1 := p.y.at(sp.m.End), p.y.at(sp.m.Start)
		h := math.Max(y1-y0, 1)
		fmt.Fprintf(p.w, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" stroke="#ffffff" stroke-width="0.4"><title>%s</title></rect>`+"\n",
			p.xAt(sp.from), y0, math.Max(p.xAt(to)-p.xAt(sp.from), 1), h, kindFill[k], esc(spanTitle(sp, im)))
	}
}

// writeMmapBase draws the mmap base and the way the mmap area grows.
func (p *panel) writeMmapBase() {
	r := &p.im.rep
	if r.MmapBase == 0 || len(p.y.bounds) == 0 {
		return
	}
	yb := p.y.at(r.MmapBase)
	dir := ""
	switch r.Layout {
	case "flexible":
		dir = " ↓"
	case "legacy":
		dir = " ↑"
	}
	fmt.Fprintf(p.w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#555" stroke-dasharray="5,3"/>`+"\n", p.plotX, yb, p.plotX+p.plotW, yb)
	fmt.Fprintf(p.w, `<text x="%.1f" y="%.1f" fill="#333" font-size="11" text-anchor="end">mmap base%s</text>`+"\n", p.plotX+p.plotW-4, math.Max(yb-3, p.plotTop+11), dir)
}

// writeBrk draws the break over time.
func (p *panel) writeBrk() {
	brk := p.im.brk
	if len(brk) == 0 || brk[0].startBrk == 0 {
		return
	}
	var d strings.Builder
	for i, b := range brk {
		end := p.steps
		if i+1 < len(brk) {
			end = brk[i+1].step
		}
		yb := p.y.at(b.brk)
		if i == 0 {
			fmt.Fprintf(&d, "M%.1f %.1f", p.xAt(b.step), yb)
		} else {
			fmt.Fprintf(&d, "L%.1f %.1f", p.xAt(b.step), yb)
		}
		fmt.Fprintf(&d, "L%.1f %.1f", p.xAt(end), yb)
	}
	fmt.Fprintf(p.w, `<path d="%s" fill="none" stroke="%s" stroke-width="2.5"><title>brk</title></path>`+"\n", d.String(), colBrk)
}

// writeSqueezer outlines the squeezer from the step it appeared, and
// names it.
func (p *panel) writeSqueezer() {
	sq := p.im.squeezer
	if sq == nil {
		return
	}
	y0, y1 := p.y.at(sq.End), p.y.at(sq.Start)
	x0 := p.xAt(p.im.sqStep)
	fmt.Fprintf(p.w, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="%s" stroke-width="3"><title>%s</title></rect>`+"\n",
		x0, y0, math.Max(p.plotX+p.plotW-x0, 2), math.Max(y1-y0, 2), colSqueeze, esc(squeezerTitle(sq)))
	// Name it inside the plot, level with it: left of the outline when
	// it appeared late, inside the outline otherwise.
	ly := math.Min(math.Max((y0+y1)/2+4, p.plotTop+12), p.plotTop+p.plotH-4)
	label := fmt.Sprintf("squeezer, seq %d ▶", sq.Seq)
	lx, anchor := x0-6, "end"
	if x0 < p.plotX+p.plotW/2 {
		label = fmt.Sprintf("squeezer, seq %d", sq.Seq)
		lx, anchor = x0+8, "start"
	}
	fmt.Fprintf(p.w, `<text x="%.1f" y="%.1f" fill="%s" font-weight="bold" text-anchor="%s" stroke="#ffffff" stroke-width="3" paint-order="stroke">%s</text>`+"\n",
		lx, ly, colSqueeze, anchor, esc(label))
}

// writeFailures marks failed brk calls: a cross at the break, a line up
// to what was asked.
func (p *panel) writeFailures() {
	for _, f := range p.im.failures {
		x := p.xAt(f.step)
		if f.step == 0 || p.steps == 1 {
			x = p.xAt(f.step) + 6
		}
		yr, yq := p.y.at(f.f.Result), p.y.at(f.f.Requested)
		fmt.Fprintf(p.w, `<g><title>%s</title><line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="1.5" stroke-dasharray="3,2"/><path d="%s" stroke="%s" stroke-width="3"/></g>`+"\n",
			esc(failureTitle(&f.f)), x, yr, x, yq, colSqueeze, crossPath(x, yr, 6), colSqueeze)
	}
}

// kinds classifies every span. The anonymous mapping right after the
// executable is its bss, unless it is larger than a bss can believably be
// (anonymous memory merged onto it, as in the text picture).
func (im *svgImage) kinds() []kind {
	exe := im.rep.Exe
	exeEnds := map[uint64]bool{}
	var exeLo, exeHi uint64
	for i := range im.spans {
		m := &im.spans[i].m
		if k := kindOf(m, exe); k == kindText || k == kindData {
			exeEnds[m.End] = true
			if exeHi == 0 || m.Start < exeLo {
				exeLo = m.Start
			}
			exeHi = max(exeHi, m.End)
		}
	}
	out := make([]kind, len(im.spans))
	for i := range im.spans {
		m := &im.spans[i].m
		k := kindOf(m, exe)
		if k == kindAnon && exeEnds[m.Start] && m.End-m.Start <= max(1<<20, exeHi-exeLo) {
			k = kindData
		}
		out[i] = k
	}
	return out
}

// writeAddresses labels addresses on the left: the edges of occupied
// stretches, then other edges where room remains.
func (p *panel) writeAddresses() {
	w, y, r := p.w, p.y, &p.im.rep
	digits := hexDigits(r.ABI, taskSize(r.ABI, nil))
	if len(y.bounds) > 0 {
		digits = max(digits, hexDigits(r.ABI, y.bounds[len(y.bounds)-1]))
	}
	var taken []float64
	free := func(py float64) bool {
		for _, t := range taken {
			if math.Abs(t-py) < 12 {
				return false
			}
		}
		return true
	}
	label := func(a uint64) {
		py := y.at(a)
		if !free(py) {
			return
		}
		taken = append(taken, py)
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="end" font-family="DejaVu Sans Mono, monospace" font-size="11" fill="#333">0x%0*x</text>`+"\n",
			p.plotX-6, py+4, digits, a)
		fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#999"/>`+"\n", p.plotX-3, py, p.plotX, py)
	}
	for i := range y.empty {
		if y.empty[i] {
			label(y.bounds[i])
			label(y.bounds[i+1])
		}
	}
	if len(y.bounds) > 0 {
		label(y.bounds[0])
		label(y.bounds[len(y.bounds)-1])
	}
}

// panelName is a name on the right of the plot.
type panelName struct {
	text   string
	py     float64
	weight uint64 // who gets the room when names would overlap
	colour string
}

// writeNames names the notable mappings on the right, most important
// first, where room remains.
func (p *panel) writeNames() {
	names := p.names()
	sort.SliceStable(names, func(i, j int) bool { return names[i].weight > names[j].weight })
	var right []float64
	for _, n := range names {
		py := n.py
		ok := true
		for _, t := range right {
			if math.Abs(t-py) < 13 {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		right = append(right, py)
		fmt.Fprintf(p.w, `<rect x="%.1f" y="%.1f" width="8" height="8" fill="%s"/><text x="%.1f" y="%.1f">%s</text>`+"\n",
			p.plotX+p.plotW+6, py-4, n.colour, p.plotX+p.plotW+18, py+4, esc(cutRunes(n.text, 30)))
	}
}

// names gathers the named mappings (the executable's as one), each at
// the middle of its extent's picture, weighted: heap and stack first,
// then the executable, then by size.
func (p *panel) names() []panelName {
	im, r := p.im, &p.im.rep
	type extent struct {
		lo, hi, size uint64
		k            kind
	}
	extents := map[string]*extent{}
	var order []string
	for i := range im.spans {
		m := &im.spans[i].m
		k := kindOf(m, r.Exe)
		if k == kindAnon {
			continue
		}
		text := mapLabel(m, k, r.Exe)
		if k == kindText || k == kindData {
			text, k = baseName(r.Exe), kindText
		}
		e := extents[text]
		if e == nil {
			e = &extent{lo: m.Start, hi: m.End, k: k}
			extents[text] = e
			order = append(order, text)
		}
		e.lo, e.hi, e.size = min(e.lo, m.Start), max(e.hi, m.End), e.size+(m.End-m.Start)
	}
	var names []panelName
	for _, text := range order {
		e := extents[text]
		wgt := e.size
		switch e.k {
		case kindHeap, kindStack:
			wgt = math.MaxUint64
		case kindText:
			wgt = math.MaxUint64 - 1
		}
		// Label at the middle of the extent's picture, not of its addresses.
		mid := (p.y.at(e.lo) + p.y.at(e.hi)) / 2
		names = append(names, panelName{text, mid, wgt, kindFill[e.k]})
	}
	return names
}

// writeTimes labels time along the bottom: time since the image's first
// observation.
func (p *panel) writeTimes() {
	w, im := p.w, p.im
	steps := p.steps
	bottom := p.plotTop + p.plotH
	ticks := min(steps, 6)
	last, lastLabel := -1, ""
	for i := 0; i < ticks; i++ {
		step := 0
		if ticks > 1 {
			step = i * (steps - 1) / (ticks - 1)
		}
		label := msSince(im.times[step] - im.times[0])
		if step == last || label == lastLabel {
			continue
		}
		last, lastLabel = step, label
		x := p.xAt(step) + (p.xAt(step+1)-p.xAt(step))/2
		fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#999"/>`+"\n", x, bottom, x, bottom+4)
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="11" fill="#333">%s</text>`+"\n",
			x, bottom+16, label)
	}
	fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="11" fill="#555">layout changes in event order (%d); labels: time since the image began</text>`+"\n",
		p.plotX+p.plotW/2, bottom+34, steps)
}

func msSince(ns uint64) string {
	switch {
	case ns < 1e6:
		return fmt.Sprintf("%.0f µs", float64(ns)/1e3)
	case ns < 1e9:
		return fmt.Sprintf("%.1f ms", float64(ns)/1e6)
	}
	return fmt.Sprintf("%.2f s", float64(ns)/1e9)
}

func panelTitle(r *layout.Report) string {
	s := fmt.Sprintf("pid %d %s", r.PID, nameOf(r))
	if r.Exe != "" {
		s += " (" + r.Exe + ")"
	}
	s += " · " + r.ABI.String() + " · " + layoutPhrase(r)
	return s
}

func panelVerdict(im *svgImage, o Options) string {
	r := &im.rep
	s := "heap " + hex(r.StartBrk) + "-" + hex(r.Brk) + ", headroom " + Size(r.BrkHeadroom)
	if sq := im.squeezer; sq != nil {
		s += fmt.Sprintf(" · squeezed by %s %s (%s, seq %d)", hex(sq.Start), shortPath(sq.Path), sq.Placement, sq.Seq)
	} else if r.BrkHeadroom < o.threshold() {
		s += " · below the squeeze threshold"
	} else {
		s += " · not squeezed"
	}
	switch n := len(im.failures); n {
	case 0:
	case 1:
		s += " · 1 failed brk"
	default:
		s += fmt.Sprintf(" · %d failed brk", n)
	}
	if r.Uncertain {
		s += " · uncertain (lost events)"
	}
	if im.truncated != 0 {
		s += fmt.Sprintf(" · new mappings not drawn after change %d (more than %d)", im.truncated, maxSVGSpans)
	}
	return s
}

func verdictColour(r *layout.Report, o Options) string {
	if r.Squeezer != nil || r.BrkHeadroom < o.threshold() {
		return colSqueeze
	}
	return "#2e7d32"
}

func spanTitle(sp *svgSpan, im *svgImage) string {
	m := &sp.m
	s := fmt.Sprintf("%s-%s %s %s (%s)", hex(m.Start), hex(m.End), m.Prot, shortPath(m.Path), Size(m.End-m.Start))
	if m.Placement != layout.PlacementNone {
		s += ", " + string(m.Placement)
	}
	if m.Seq != 0 {
		s += fmt.Sprintf(", seq %d", m.Seq)
	}
	return s
}

func squeezerTitle(sq *layout.Squeezer) string {
	return fmt.Sprintf("squeezer: %s-%s %s %s, %s at seq %d, left %s of headroom",
		hex(sq.Start), hex(sq.End), sq.Prot, shortPath(sq.Path), sq.Placement, sq.Seq, Size(sq.Headroom))
}

func failureTitle(f *layout.BrkFailure) string {
	s := fmt.Sprintf("failed brk at seq %d: asked %s, got %s", f.Seq, hex(f.Requested), hex(f.Result))
	if f.BlockedBy != nil {
		s += ", blocked by " + hex(f.BlockedBy.Start) + " " + shortPath(f.BlockedBy.Path)
	}
	return s
}

// pageUp rounds a up to the 4 KiB page: where the [heap] mapping ends.
func pageUp(a uint64) uint64 { return (a + 4095) &^ 4095 }

func mergeRanges(r [][2]uint64) [][2]uint64 {
	sort.Slice(r, func(i, j int) bool { return r[i][0] < r[j][0] })
	var out [][2]uint64
	for _, x := range r {
		if n := len(out); n > 0 && x[0] <= out[n-1][1] {
			out[n-1][1] = max(out[n-1][1], x[1])
			continue
		}
		out = append(out, x)
	}
	return out
}

// esc makes s safe as XML character data or an attribute value; bytes
// that XML cannot hold (control characters, invalid UTF-8) become U+FFFD.
func esc(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == '&':
			b.WriteString("&amp;")
		case r == '<':
			b.WriteString("&lt;")
		case r == '>':
			b.WriteString("&gt;")
		case r == '"':
			b.WriteString("&quot;")
		case r == '\'':
			b.WriteString("&apos;")
		case r == utf8.RuneError && size == 1, r < 0x20 && r != '\t' && r != '\n', r == 0xfffe, r == 0xffff:
			b.WriteRune('\ufffd')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
