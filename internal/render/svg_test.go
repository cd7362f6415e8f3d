package render

import (
	"bytes"
	"encoding/xml"
	"errors"
	"image"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/mmtrace/mmtrace/internal/layout"
)

// forming replays how final came to be, as the tracker would report it
// after each layout change: the exec snapshot, then every mapping in seq
// order, the heap growing at the first seq after exec, the squeezer and
// the failed brk calls appearing when they happened. It ends with the
// final report observed at t = 0, as cmd/mmtrace does.
func forming(s *SVG, final *layout.Report, t0 uint64) {
	seqs := map[uint64]bool{}
	for _, m := range final.VMAs {
		seqs[m.Seq] = true
	}
	for _, f := range final.BrkFailures {
		seqs[f.Seq] = true
	}
	var order []uint64
	for q := range seqs {
		order = append(order, q)
	}
	sort.Slice(order, func(i, j int) bool { return order[i] < order[j] })
	for i, q := range order {
		r := *final
		r.VMAs, r.BrkFailures, r.Squeezer = nil, nil, nil
		if i == 0 {
			r.Brk = r.StartBrk
		}
		for _, m := range final.VMAs {
			if m.Seq <= q && (i > 0 || m.Path != "[heap]") {
				r.VMAs = append(r.VMAs, m)
			}
		}
		for _, f := range final.BrkFailures {
			if f.Seq <= q {
				r.BrkFailures = append(r.BrkFailures, f)
			}
		}
		if final.Squeezer != nil && final.Squeezer.Seq <= q {
			r.Squeezer = final.Squeezer
		}
		s.Observe(t0+q*40_000, &r)
	}
	s.Observe(0, final)
}

func svgOf(reports ...*layout.Report) []byte {
	s := NewSVG(Options{})
	for i, r := range reports {
		forming(s, r, uint64(i+1)*1_000_000_000)
	}
	var buf bytes.Buffer
	s.WriteTo(&buf)
	return buf.Bytes()
}

// TestSVGValidXML decodes the whole document and checks that it shows
// what the issue asks for: one panel per image, the squeezer, the failed
// brk calls, the heap's break, a legend and a title.
func TestSVGValidXML(t *testing.T) {
	out := svgOf(legacySqueeze32(), hintSqueeze64(), healthyBash64(), flexible32())
	dec := xml.NewDecoder(bytes.NewReader(out))
	var root string
	panels, texts := 0, []string{}
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("invalid XML: %v", err)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = el.Name.Local
			}
			for _, a := range el.Attr {
				if a.Name.Local == "class" && a.Value == "image" {
					panels++
				}
			}
		case xml.CharData:
			texts = append(texts, string(el))
		}
	}
	if root != "svg" {
		t.Errorf("root element %q, want svg", root)
	}
	if panels != 4 {
		t.Errorf("%d image panels, want 4", panels)
	}
	all := strings.Join(texts, "\n")
	for _, want := range []string{
		"mmtrace: address space over time", "squeezer", "failed brk", "heap",
		"squeezed by 0x57a5f000 /var/tmp/blob.dat (bottom-up, seq 37)", "2 failed brk",
		"squeezed by 0x5603f7dc1000 /etc/passwd (hint, seq 27)", "not squeezed",
		"failed brk at seq 39: asked 0x57a80000, got 0x57a5f000, blocked by 0x57a5f000 /var/tmp/blob.dat",
		"unmapped", "mmap base",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("SVG text lacks %q", want)
		}
	}
}

func TestSVGEmptyAndHostile(t *testing.T) {
	var buf bytes.Buffer
	if _, err := NewSVG(Options{}).WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(buf.Bytes(), new(struct{})); err != nil {
		t.Errorf("empty SVG is not valid XML: %v", err)
	}
	r := hintSqueeze64()
	r.Comm = "a<b>&\"c'\x01"
	r.VMAs[6].Path = "/tmp/\xff<evil>&\x1b[31m"
	s := NewSVG(Options{})
	s.Observe(0, nil)
	s.Observe(10, r)
	s.Observe(5, r) // time going backwards must not break anything
	s.Observe(0, &layout.Report{PID: 1})
	buf.Reset()
	n, err := s.WriteTo(&buf)
	if err != nil || n != int64(buf.Len()) {
		t.Fatalf("WriteTo = %d, %v; wrote %d", n, err, buf.Len())
	}
	dec := xml.NewDecoder(&buf)
	for {
		if _, err := dec.Token(); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("invalid XML: %v", err)
			}
			break
		}
	}
}

// TestSVGInChromium renders the seed incident's SVG in headless Chromium
// and checks the screenshot shows the heap (green), the squeezer and the
// failures (red). Set MMTRACE_SVG_KEEP=DIR to keep the SVG and PNG.
func TestSVGInChromium(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed (apt-get install chromium); under CI this test must run")
		}
		t.Skip("chromium is not installed (apt-get install chromium)")
	}
	dir := t.TempDir()
	if keep := os.Getenv("MMTRACE_SVG_KEEP"); keep != "" {
		dir = keep
	}
	svgPath := filepath.Join(dir, "legacy-squeeze.svg")
	pngPath := filepath.Join(dir, "legacy-squeeze.png")
	if err := os.WriteFile(svgPath, svgOf(legacySqueeze32()), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+filepath.Join(t.TempDir(), "profile"),
		"--screenshot="+pngPath, "--window-size=1400,900", "file://"+svgPath)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	f, err := os.Open(pngPath)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 1400 || b.Dy() != 900 {
		t.Errorf("screenshot is %v, want 1400x900", b)
	}
	counts := colourCounts(img, map[string][3]uint8{
		"heap":     {0x59, 0xa1, 0x4f},
		"squeezer": {0xd6, 0x27, 0x28},
		"file":     {0xf2, 0x8e, 0x2b},
		"text":     {0x4e, 0x79, 0xa7},
	})
	for name, n := range counts {
		if n < 50 {
			t.Errorf("screenshot shows %d pixels of the %s colour, want a visible area", n, name)
		}
	}
}

func colourCounts(img image.Image, want map[string][3]uint8) map[string]int {
	counts := map[string]int{}
	for name := range want {
		counts[name] = 0
	}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			for name, c := range want {
				if near(r>>8, c[0]) && near(g>>8, c[1]) && near(bl>>8, c[2]) {
					counts[name]++
				}
			}
		}
	}
	return counts
}

func near(v uint32, c uint8) bool {
	d := int(v) - int(c)
	return d >= -6 && d <= 6
}

// TestSVGBounded: a process mapping and unmapping in a loop must not
// make the drawing grow without bound.
func TestSVGBounded(t *testing.T) {
	s := NewSVG(Options{})
	r := &layout.Report{PID: 9, Comm: "churn", StartBrk: 0x1000000, Brk: 0x1000000}
	for i := uint64(0); i < maxSVGSpans+500; i++ {
		a := 0x7f0000000000 + i*0x10000
		r.VMAs = []layout.Mapping{mp(a, a+0x1000, "rw-p", "", layout.PlacementTopDown, i)}
		s.Observe(i*1000, r)
	}
	var buf bytes.Buffer
	if _, err := s.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), "<rect"); n > maxSVGSpans+200 {
		t.Errorf("%d rects drawn for %d mappings, want at most about %d", n, maxSVGSpans+500, maxSVGSpans)
	}
	if !strings.Contains(buf.String(), "new mappings not drawn") {
		t.Error("the truncation is not said")
	}
}

// TestSVGMergedHeap: the squeezer merged onto the heap is drawn as the
// anonymous mapping it is, not as heap, and anonymous blocks merged onto
// the program's bss are not painted as bss.
func TestSVGMergedHeap(t *testing.T) {
	out := string(svgOf(legacyMerged32()))
	fillOf := func(title string) string {
		i := strings.Index(out, "<title>"+title)
		if i < 0 {
			t.Fatalf("no mapping titled %q drawn", title)
		}
		rect := out[strings.LastIndex(out[:i], "<rect"):i]
		_, after, _ := strings.Cut(rect, `fill="`)
		fill, _, _ := strings.Cut(after, `"`)
		return fill
	}
	if f := fillOf("0x58577000-0x58677000 rw-p anonymous"); f != kindFill[kindAnon] {
		t.Errorf("the squeezer is filled %s, want the anonymous colour %s", f, kindFill[kindAnon])
	}
	if f := fillOf("0x58567000-0x58577000 rw-p [heap]"); f != kindFill[kindHeap] {
		t.Errorf("the heap is filled %s, want %s", f, kindFill[kindHeap])
	}
	if f := fillOf("0x5663f000-0x5853f000 rw-p anonymous"); f != kindFill[kindAnon] {
		t.Errorf("31 MiB of blocks on the bss are filled %s, want the anonymous colour %s", f, kindFill[kindAnon])
	}
	if !strings.Contains(out, "squeezer, seq 116") {
		t.Error("the squeezer is not named in the plot")
	}
}
