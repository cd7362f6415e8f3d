package render

import (
	"bytes"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/mmtrace/mmtrace/internal/layout"
)

// Tests that pin the SVG timeline's geometry and labels, with expected
// values computed by hand from the scale yScale's comment describes:
// every interval between two boundaries gets a weight, empty ones
// 0.5 + log2(size/4 KiB)/8, occupied ones 1 + log2(size/4 KiB)/3 (sizes
// under a page count as a page), a run of anonymous-only intervals shares
// the weight of one interval as large as the run, in proportion to size;
// the plot height is shared out by weight, addresses running up.

func pinNear(a, b float64) bool { return math.Abs(a-b) < 1e-6 }

func TestPinYScaleWeights(t *testing.T) {
	// 4 KiB occupied (weight 1), 1 MiB empty (0.5 + 8/8 = 1.5), 4 KiB
	// occupied (1): 3.5 in all over 460 px.
	addrs := []uint64{0x103000, 0x1000, 0x2000, 0x102000, 0x2000} // unsorted, one twice
	occ := [][2]uint64{{0x1000, 0x2000}, {0x102000, 0x103000}}
	y := newYScale(addrs, occ, 100, 460, nil)
	wantPos := []float64{0, 460 * 1 / 3.5, 460 * 2.5 / 3.5, 460}
	if len(y.bounds) != 4 || len(y.pos) != 4 {
		t.Fatalf("bounds %x pos %v", y.bounds, y.pos)
	}
	for i, p := range wantPos {
		if !pinNear(y.pos[i], p) {
			t.Errorf("pos[%d] = %v, want %v", i, y.pos[i], p)
		}
	}
	if want := []bool{false, true, false}; len(y.empty) != 3 || y.empty[0] != want[0] || y.empty[1] != want[1] || y.empty[2] != want[2] {
		t.Errorf("empty %v, want %v", y.empty, want)
	}
	// Addresses run up: the lowest bound is at the plot's bottom (100 +
	// 460), the highest at its top (100); in between, linear in the address.
	for _, c := range []struct {
		a    uint64
		want float64
	}{
		{0, 560}, {0x1000, 560}, {0x1800, 560 - 460*0.5/3.5}, {0x2000, 560 - 460*1/3.5},
		{0x82000, 560 - 460*1.75/3.5}, {0x103000, 100}, {0xffffffff, 100},
	} {
		if got := y.at(c.a); !pinNear(got, c.want) {
			t.Errorf("at(%#x) = %v, want %v", c.a, got, c.want)
		}
	}
}

func TestPinYScaleAnonymousRun(t *testing.T) {
	// Two anonymous intervals of 4 and 8 KiB form one run of 12 KiB:
	// weight 1 + log2(3)/3 = 1.5283, shared 1:2; then a 4 KiB occupied
	// interval that is not anonymous (weight 1).
	addrs := []uint64{0x1000, 0x2000, 0x4000, 0x5000}
	occ := [][2]uint64{{0x1000, 0x5000}}
	anon := func(a uint64) bool { return a < 0x4000 }
	y := newYScale(addrs, occ, 0, 460, anon)
	w := 1 + math.Log2(3)/3
	total := w + 1
	wantPos := []float64{0, 460 * (w / 3) / total, 460 * w / total, 460}
	for i, p := range wantPos {
		if !pinNear(y.pos[i], p) {
			t.Errorf("pos[%d] = %v, want %v", i, y.pos[i], p)
		}
	}
	// A run at the top: the last intervals.
	y = newYScale([]uint64{0x1000, 0x2000, 0x3000, 0x5000}, [][2]uint64{{0x1000, 0x5000}}, 0, 300,
		func(a uint64) bool { return a >= 0x2000 })
	w = 1 + math.Log2(3)/3 // 12 KiB run, shared 1:2
	total = 1 + w
	wantPos = []float64{0, 300 * 1 / total, 300 * (1 + w/3) / total, 300}
	for i, p := range wantPos {
		if !pinNear(y.pos[i], p) {
			t.Errorf("top run: pos[%d] = %v, want %v", i, y.pos[i], p)
		}
	}
}

func TestPinYScaleSmallAndDegenerate(t *testing.T) {
	// 100 bytes counts as a page: two occupied intervals of weight 1.
	y := newYScale([]uint64{0x1000, 0x1064, 0x2064}, [][2]uint64{{0x1000, 0x2064}}, 0, 460, nil)
	if !pinNear(y.pos[1], 230) {
		t.Errorf("a 100-byte interval: pos %v, want [0 230 460]", y.pos)
	}
	// An empty interval of 4 KiB weighs 0.5, an occupied one 1.
	y = newYScale([]uint64{0, 0x1000, 0x2000}, [][2]uint64{{0x1000, 0x2000}}, 0, 300, nil)
	if !pinNear(y.pos[1], 100) || !y.empty[0] || y.empty[1] {
		t.Errorf("empty page: pos %v empty %v, want [0 100 300]", y.pos, y.empty)
	}
	// One address: everything at the bottom.
	y = newYScale([]uint64{0x5000}, nil, 10, 100, nil)
	if got := y.at(0x9000); got != 110 {
		t.Errorf("one bound: at = %v, want 110", got)
	}
	y = newYScale(nil, nil, 10, 100, nil)
	if got := y.at(0x9000); got != 110 {
		t.Errorf("no bound: at = %v, want 110", got)
	}
}

func TestPinRanges(t *testing.T) {
	got := mergeRanges([][2]uint64{{30, 40}, {10, 20}, {20, 25}, {15, 18}, {50, 60}, {41, 45}})
	want := [][2]uint64{{10, 25}, {30, 40}, {41, 45}, {50, 60}}
	if len(got) != len(want) {
		t.Fatalf("merged %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("merged %v, want %v", got, want)
		}
	}
	u := [][2]uint64{{10, 20}, {30, 40}}
	for a, in := range map[uint64]bool{5: false, 9: false, 10: true, 19: true, 20: false, 29: false, 30: true, 39: true, 40: false, 99: false} {
		if inUnion(u, a) != in {
			t.Errorf("inUnion(%d) = %v", a, !in)
		}
	}
}

func TestPinSmallHelpers(t *testing.T) {
	for ns, want := range map[uint64]string{
		0: "0 µs", 1499: "1 µs", 999_000: "999 µs", 1_000_000: "1.0 ms", 1_250_000: "1.2 ms",
		999_900_000: "999.9 ms", 1_000_000_000: "1.00 s", 2_500_000_000: "2.50 s",
	} {
		if got := msSince(ns); got != want {
			t.Errorf("msSince(%d) = %q, want %q", ns, got, want)
		}
	}
	for in, want := range map[string]string{
		`a&b<c>d"e'f`:  "a&amp;b&lt;c&gt;d&quot;e&apos;f",
		"tab\tnl\n":    "tab\tnl\n",
		"\x01\x1f ":    "\ufffd\ufffd ",
		"\xff":         "\ufffd",
		"\ufffe\uffff": "\ufffd\ufffd",
		"é→\ufffd":     "é→\ufffd",
	} {
		if got := esc(in); got != want {
			t.Errorf("esc(%q) = %q, want %q", in, got, want)
		}
	}
	for a, want := range map[uint64]uint64{0: 0, 1: 4096, 4095: 4096, 4096: 4096, 4097: 8192} {
		if got := pageUp(a); got != want {
			t.Errorf("pageUp(%d) = %d", a, got)
		}
	}
	if got := crossPath(10, 20, 5); got != "M5.0 15.0L15.0 25.0M5.0 25.0L15.0 15.0" {
		t.Errorf("crossPath = %q", got)
	}
}

// gapLines: one line below 1 GiB, two below 1 TiB, three above.
func TestPinGapLines(t *testing.T) {
	for size, want := range map[uint64]int{
		0: 1, 1: 1, 4096: 1, 1 << 20: 1, 1<<30 - 1: 1, 1 << 30: 2, 1<<40 - 1: 2, 1 << 40: 3, 1 << 63: 3, ^uint64(0): 3,
	} {
		if got := gapLines(size); got != want {
			t.Errorf("gapLines(%#x) = %d, want %d", size, got, want)
		}
	}
}

func TestPinCentre(t *testing.T) {
	for _, c := range []struct {
		s    string
		n    int
		want string
	}{
		{"ab", 10, "--- ab ---"},
		{"ab", 9, "-- ab ---"},
		{"", 5, "-----"},
		{"abc", 5, " abc "},
		{"äö", 8, "-- äö --"},
	} {
		if got := centre(c.s, c.n, '-'); got != c.want {
			t.Errorf("centre(%q, %d) = %q, want %q", c.s, c.n, got, c.want)
		}
	}
}

// A report: text at 0x400000, heap from 0x10000000 with the break at
// 0x10001800 (the [heap] mapping ends at 0x10002000), a 64 KiB mapping
// 16 MiB above the heap's end (the squeezer), the stack high.
func pinReport() *layout.Report {
	sq := layout.Mapping{Start: 0x11002000, End: 0x11012000, Prot: "rw-p", Placement: layout.PlacementTopDown, Seq: 9}
	return &layout.Report{
		PID: 42, Comm: "t", Exe: "/bin/t", Layout: "flexible", MmapBase: 0x7f0000000000,
		StartBrk: 0x10000000, Brk: 0x10001800, BrkHeadroom: 16 << 20,
		Squeezer: &layout.Squeezer{Mapping: sq, Headroom: 16 << 20},
		BrkFailures: []layout.BrkFailure{
			{Seq: 10, Requested: 0x11003000, Result: 0x10001800, BlockedBy: &sq},
		},
		VMAs: []layout.Mapping{
			{Start: 0x400000, End: 0x401000, Prot: "r-xp", Path: "/bin/t"},
			{Start: 0x10000000, End: 0x10002000, Prot: "rw-p", Path: "[heap]", Placement: layout.PlacementBrk},
			sq,
			{Start: 0x7ffff0000000, End: 0x7ffff0021000, Prot: "rw-p", Path: "[stack]"},
		},
		ExecSeq: 1,
	}
}

var (
	rectRE = regexp.MustCompile(`<rect x="([0-9.]+)" y="([0-9.]+)" width="([0-9.]+)" height="([0-9.]+)" fill="(#[0-9a-f]+)" stroke="#ffffff" stroke-width="0.4"><title>(0x[0-9a-f]+)-`)
	sqRE   = regexp.MustCompile(`<rect x="([0-9.]+)" y="([0-9.]+)" width="([0-9.]+)" height="([0-9.]+)" fill="none" stroke="#d62728" stroke-width="3">`)
)

func atof(t *testing.T, s string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// The drawing of one image over two layout changes: every mapping's
// rectangle lies inside the plot, higher addresses higher up; the
// squeezer's outline covers its mapping from the change it appeared at;
// the gap above the break is labelled as the heap's headroom.
func TestPinSVGGeometry(t *testing.T) {
	r0 := pinReport()
	r0.Squeezer, r0.BrkFailures = nil, nil
	r0.VMAs = []layout.Mapping{r0.VMAs[0], r0.VMAs[1], r0.VMAs[3]}
	r0.BrkHeadroom = 0x7f0000000000 - 0x10002000
	s := NewSVG(Options{})
	s.Observe(1000, r0)
	s.Observe(3_000_000, pinReport())
	var buf bytes.Buffer
	if _, err := s.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	doc := buf.String()
	// The panel: heading 58 px under its top at 96, plot 460 px high,
	// 150 px from the left, 1280-150-250 = 880 px wide.
	const plotTop, plotBottom, plotLeft, plotRight = 96 + 58, 96 + 58 + 460, 150, 150 + 880
	type box struct{ x, y, w, h float64 }
	rects := map[string]box{}
	for _, m := range rectRE.FindAllStringSubmatch(doc, -1) {
		b := box{atof(t, m[1]), atof(t, m[2]), atof(t, m[3]), atof(t, m[4])}
		rects[m[6]] = b
		if b.x < plotLeft || b.x+b.w > plotRight+0.05 || b.y < plotTop-0.05 || b.y+b.h > plotBottom+0.05 {
			t.Errorf("mapping %s drawn at %+v, outside the plot", m[6], b)
		}
	}
	text, heap, sqm, stack := rects["0x400000"], rects["0x10000000"], rects["0x11002000"], rects["0x7ffff0000000"]
	if len(rects) != 4 {
		t.Fatalf("mappings drawn: %v", rects)
	}
	// Addresses run up: each mapping is below the next one up.
	if !(text.y >= heap.y+heap.h-0.05 && heap.y >= sqm.y+sqm.h-0.05 && sqm.y >= stack.y+stack.h-0.05) {
		t.Errorf("not stacked by address: text %+v heap %+v squeezer %+v stack %+v", text, heap, sqm, stack)
	}
	// Two changes: each column is 880/2 = 440 px. The squeezer came at the
	// second, the others were there from the first.
	if !pinNear(text.x, plotLeft) || !pinNear(text.w, 880) || !pinNear(sqm.x, plotLeft+440) || !pinNear(sqm.w, 440) {
		t.Errorf("columns: text %+v squeezer %+v", text, sqm)
	}
	// The lowest mapping sits on the plot's bottom, the highest at its top.
	if !pinNear(text.y+text.h, plotBottom) || !pinNear(stack.y, plotTop) {
		t.Errorf("text %+v stack %+v: not at the plot's edges", text, stack)
	}
	// The squeezer's outline: from the second change to the right edge,
	// level with its mapping.
	m := sqRE.FindStringSubmatch(doc)
	if m == nil {
		t.Fatal("no squeezer outline")
	}
	o := box{atof(t, m[1]), atof(t, m[2]), atof(t, m[3]), atof(t, m[4])}
	if !pinNear(o.x, sqm.x) || !pinNear(o.x+o.w, plotRight) || math.Abs(o.y-sqm.y) > 0.1 || math.Abs(o.h-math.Max(sqm.h, 2)) > 0.1 {
		t.Errorf("outline %+v, mapping %+v", o, sqm)
	}
	// It appeared at the middle of the plot (not left of it): named left
	// of its outline, with an arrow.
	if !strings.Contains(doc, `text-anchor="end" stroke="#ffffff" stroke-width="3" paint-order="stroke">squeezer, seq 9 ▶</text>`) {
		t.Error("squeezer label not left of its outline")
	}
	// The gap between the heap's end (0x10002000) and the squeezer is 16 MiB.
	if !strings.Contains(doc, "≈ 16.0 MiB unmapped: the heap's headroom</text>") {
		t.Errorf("no headroom label for the 16 MiB gap")
	}
	// Other gaps are just unmapped.
	if strings.Count(doc, "the heap's headroom</text>") != 1 {
		t.Error("more than one gap labelled as headroom")
	}
	// The verdict line and the failed brk's cross, at the second column
	// (440 px in) at the break's height.
	if !strings.Contains(doc, "heap 0x10000000-0x10001800, headroom 16.0 MiB · squeezed by 0x11002000 anonymous (top-down, seq 9) · 1 failed brk") {
		t.Errorf("verdict line missing:\n%s", doc)
	}
	if !strings.Contains(doc, "<title>failed brk at seq 10: asked 0x11003000, got 0x10001800, blocked by 0x11002000 anonymous</title>") {
		t.Error("failed brk title missing")
	}
	// Time labels: the first change at 0, the second 2999 µs = 3.0 ms later.
	for _, l := range []string{">0 µs</text>", ">3.0 ms</text>", "layout changes in event order (2)"} {
		if !strings.Contains(doc, l) {
			t.Errorf("no %q", l)
		}
	}
}

// panelVerdict says what a reader needs in one line.
func TestPinPanelVerdict(t *testing.T) {
	r := pinReport()
	im := &svgImage{rep: *r}
	if got, want := panelVerdict(im, Options{}), "heap 0x10000000-0x10001800, headroom 16.0 MiB · below the squeeze threshold"; got != want {
		t.Errorf("no squeezer recorded:\n got %q\nwant %q", got, want)
	}
	im.rep.BrkHeadroom = 64 << 20
	if got := panelVerdict(im, Options{}); !strings.HasSuffix(got, " · not squeezed") {
		t.Errorf("headroom exactly at the threshold: %q", got)
	}
	if got := panelVerdict(im, Options{SqueezeThreshold: 64<<20 + 1}); !strings.HasSuffix(got, " · below the squeeze threshold") {
		t.Errorf("under a higher threshold: %q", got)
	}
	im.failures = make([]svgFailure, 2)
	im.rep.Uncertain = true
	im.truncated = 7
	want := "heap 0x10000000-0x10001800, headroom 64.0 MiB · not squeezed · 2 failed brk · uncertain (lost events) · new mappings not drawn after change 7 (more than 20000)"
	if got := panelVerdict(im, Options{}); got != want {
		t.Errorf("\n got %q\nwant %q", got, want)
	}
	im.rep.Squeezer = nil
	if c := verdictColour(&im.rep, Options{}); c != "#2e7d32" {
		t.Errorf("not squeezed: colour %s", c)
	}
	im.rep.BrkHeadroom = 64<<20 - 1
	if c := verdictColour(&im.rep, Options{}); c != colSqueeze {
		t.Errorf("below the threshold: colour %s", c)
	}
	im.rep.BrkHeadroom = 1 << 30
	im.rep.Squeezer = r.Squeezer
	if c := verdictColour(&im.rep, Options{}); c != colSqueeze {
		t.Errorf("squeezed: colour %s", c)
	}
}

// Observe keeps one span per mapping while it stays, closes it when it
// goes, and never lets time run backwards.
func TestPinObserveSpans(t *testing.T) {
	r := pinReport()
	s := NewSVG(Options{})
	s.Observe(5000, r)
	r2 := pinReport()
	r2.VMAs = r2.VMAs[:2] // the squeezer and the stack are gone
	s.Observe(4000, r2)   // earlier than the last: taken as 5000
	s.Observe(9000, r)    // back again: new spans
	s.Observe(0, nil)
	if len(s.images) != 1 {
		t.Fatalf("%d images", len(s.images))
	}
	im := s.images[0]
	if len(im.times) != 3 || im.times[1] != 5000 || im.times[2] != 9000 {
		t.Errorf("times %v", im.times)
	}
	type span struct{ from, to int }
	got := map[uint64][]span{}
	for _, sp := range im.spans {
		got[sp.m.Start] = append(got[sp.m.Start], span{sp.from, sp.to})
	}
	want := map[uint64][]span{
		0x400000: {{0, -1}}, 0x10000000: {{0, -1}},
		0x11002000: {{0, 1}, {2, -1}}, 0x7ffff0000000: {{0, 1}, {2, -1}},
	}
	for a, w := range want {
		g := got[a]
		if len(g) != len(w) {
			t.Errorf("%#x: spans %v, want %v", a, g, w)
			continue
		}
		for i := range w {
			if g[i] != w[i] {
				t.Errorf("%#x: spans %v, want %v", a, g, w)
			}
		}
	}
	// The squeezer is the first one seen; the failure is recorded once.
	if im.squeezer == nil || im.sqStep != 0 || len(im.failures) != 1 || im.failures[0].step != 0 {
		t.Errorf("squeezer %+v at %d, failures %+v", im.squeezer, im.sqStep, im.failures)
	}
	// A new exec of the same pid is a new image.
	r3 := pinReport()
	r3.ExecSeq = 50
	s.Observe(10000, r3)
	if len(s.images) != 2 {
		t.Errorf("%d images after a new exec", len(s.images))
	}
}

// The text picture's gaps: one line below 1 GiB, two below 1 TiB, three
// above, the size on the middle line (the upper of two); the gap above
// the break is the heap's headroom, the others are free.
func TestPinPictureGapHeights(t *testing.T) {
	var b bytes.Buffer
	Picture(&b, pinReport(), Options{})
	type gap struct {
		lines int
		label int // index of the line with the size
		size  string
		what  string
	}
	var gaps []gap
	in := false
	for _, l := range strings.Split(b.String(), "\n") {
		if !strings.Contains(l, "┊") || strings.Contains(l, "unmapped, taller") {
			in = false
			continue
		}
		if !in {
			gaps = append(gaps, gap{label: -1})
			in = true
		}
		g := &gaps[len(gaps)-1]
		if f := strings.Fields(strings.Split(l, "┊")[0]); len(f) == 2 {
			g.label, g.size = g.lines, f[0]+" "+f[1]
			g.what = strings.TrimSpace(strings.Split(l, "┊")[1])
		}
		g.lines++
	}
	// Top down: kernel space at 0x7ffffffff000 to the stack, the stack to
	// the mmap base, the base to the squeezer, the squeezer to the heap's
	// end, the heap to the text, the text to 0.
	want := []gap{
		{1, 0, Size(0x7ffffffff000 - 0x7ffff0021000), "free"}, // 256 MiB
		{2, 0, Size(0x7ffff0000000 - 0x7f0000000000), "free"}, // 1024 GiB, under 1 TiB
		{3, 1, Size(0x7f0000000000 - 0x11012000), "free"},     // 127 TiB
		{1, 0, Size(0x11002000 - 0x10002000), "headroom ↑"},   // 16 MiB
		{1, 0, Size(0x10000000 - 0x401000), "free"},
		{1, 0, Size(0x400000), "free"},
	}
	if len(gaps) != len(want) {
		t.Fatalf("gaps %+v\nwant %+v\n%s", gaps, want, b.String())
	}
	for i := range want {
		if gaps[i] != want[i] {
			t.Errorf("gap %d: %+v, want %+v", i, gaps[i], want[i])
		}
	}
}

func pinSVG(t *testing.T, o Options, obs ...*layout.Report) string {
	t.Helper()
	s := NewSVG(o)
	for i, r := range obs {
		s.Observe(uint64(i)*1_000_000, r) // one change a millisecond
	}
	var buf bytes.Buffer
	n, err := s.WriteTo(&buf)
	if err != nil || n != int64(buf.Len()) {
		t.Fatalf("WriteTo: %d bytes, %v; buffer has %d", n, err, buf.Len())
	}
	return buf.String()
}

// Time along the bottom: at most six ticks, at changes i*(n-1)/5, each in
// the middle of its column (880 px / n wide), labelled with the time since
// the first change.
func TestPinSVGTimeTicks(t *testing.T) {
	var obs []*layout.Report
	for range 10 {
		obs = append(obs, pinReport())
	}
	doc := pinSVG(t, Options{}, obs...)
	// Steps 0, 1, 3, 5, 7, 9 (i*9/5 for i = 0..5), 88 px columns.
	for _, c := range []struct {
		x     string
		label string
	}{{"194.0", "0 µs"}, {"282.0", "1.0 ms"}, {"458.0", "3.0 ms"}, {"634.0", "5.0 ms"}, {"810.0", "7.0 ms"}, {"986.0", "9.0 ms"}} {
		want := `<text x="` + c.x + `" y="630.0" text-anchor="middle" font-size="11" fill="#333">` + c.label + `</text>`
		if !strings.Contains(doc, want) {
			t.Errorf("no tick %q", want)
		}
	}
	for _, l := range []string{">2.0 ms<", ">4.0 ms<", ">6.0 ms<", ">8.0 ms<"} {
		if strings.Contains(doc, l) {
			t.Errorf("a seventh tick %s", l)
		}
	}
	if !strings.Contains(doc, "layout changes in event order (10)") {
		t.Error("change count")
	}
	// One change: one tick.
	doc = pinSVG(t, Options{}, pinReport())
	if strings.Count(doc, `text-anchor="middle" font-size="11" fill="#333">`) != 1 {
		t.Error("one change should have one tick")
	}
}

// A squeezer there from the first change is named inside its outline; a
// failed brk at the first change is drawn 6 px in from the plot's edge.
func TestPinSVGEarlySqueezer(t *testing.T) {
	doc := pinSVG(t, Options{}, pinReport(), pinReport())
	if !strings.Contains(doc, `<text x="158.0" y=`) || !strings.Contains(doc, `text-anchor="start" stroke="#ffffff" stroke-width="3" paint-order="stroke">squeezer, seq 9</text>`) {
		t.Error("squeezer label not inside its outline at x 150+8")
	}
	if !strings.Contains(doc, `<line x1="156.0" y1=`) {
		t.Error("failed brk not drawn at x 150+6")
	}
	if strings.Count(doc, "<title>failed brk at seq 10") != 1 {
		t.Error("one failure seen twice should be drawn once")
	}
}

// The mmap base line says which way the mmap area grows.
func TestPinSVGMmapBaseDirection(t *testing.T) {
	for layoutName, want := range map[string]string{"flexible": "mmap base ↓<", "legacy": "mmap base ↑<", "": "mmap base<"} {
		r := pinReport()
		r.Layout = layoutName
		if doc := pinSVG(t, Options{}, r); !strings.Contains(doc, want) {
			t.Errorf("layout %q: no %q", layoutName, want)
		}
	}
	r := pinReport()
	r.MmapBase = 0
	if doc := pinSVG(t, Options{}, r); strings.Contains(doc, `stroke="#555" stroke-dasharray="5,3"/>`+"\n"+`<text x="1026.0"`) {
		t.Error("a base line without a base")
	}
}

// The anonymous mapping right after the executable's data is its bss
// (drawn as data) unless it is bigger than 1 MiB and the executable.
func TestPinSVGBss(t *testing.T) {
	fill := func(r *layout.Report, start uint64) string {
		doc := pinSVG(t, Options{}, r)
		for _, m := range rectRE.FindAllStringSubmatch(doc, -1) {
			if m[6] == "0x"+strconv.FormatUint(start, 16) {
				return m[5]
			}
		}
		return "missing"
	}
	for _, c := range []struct {
		size uint64
		want string
	}{{0x1000, kindFill[kindData]}, {1 << 20, kindFill[kindData]}, {1<<20 + 0x1000, kindFill[kindAnon]}} {
		r := pinReport()
		r.VMAs = append(r.VMAs[:1:1], append([]layout.Mapping{
			{Start: 0x401000, End: 0x402000, Prot: "rw-p", Path: "/bin/t"},
			{Start: 0x402000, End: 0x402000 + c.size, Prot: "rw-p"},
		}, r.VMAs[1:]...)...)
		if got := fill(r, 0x402000); got != c.want {
			t.Errorf("anonymous %#x after the data: fill %s, want %s", c.size, got, c.want)
		}
	}
}

// An occupied interval of 8 KiB weighs 1 + log2(2)/3 = 4/3, one of 4 KiB
// weighs 1: 4/7 of the height for the first.
func TestPinYScaleOccupiedGrowsWithSize(t *testing.T) {
	y := newYScale([]uint64{0x1000, 0x3000, 0x4000}, [][2]uint64{{0x1000, 0x4000}}, 0, 460, nil)
	if !pinNear(y.pos[1], 460*4.0/7) {
		t.Errorf("pos %v, want [0 %v 460]", y.pos, 460*4.0/7)
	}
}
