package render

import (
	"bytes"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mmtrace/mmtrace/internal/events"
	"github.com/mmtrace/mmtrace/internal/layout"
)

// atExec is r as it looked right after exec: only the ELF loader's
// mappings, an empty heap, no verdict yet.
func atExec(r *layout.Report) *layout.Report {
	s := *r
	s.VMAs = nil
	s.Squeezer, s.BoundedBy, s.BrkFailures = nil, nil, nil
	s.Brk, s.Ended, s.EndSeq = r.StartBrk, "", 0
	s.BrkHeadroom = 0
	for _, m := range r.VMAs {
		if m.Placement != layout.PlacementExec {
			continue
		}
		s.VMAs = append(s.VMAs, m)
		if m.Start >= s.StartBrk && (s.BrkHeadroom == 0 || m.Start-s.StartBrk < s.BrkHeadroom) {
			s.BrkHeadroom = m.Start - s.StartBrk
			mm := m
			s.BoundedBy = &mm
		}
	}
	return &s
}

// drive feeds a stream to a renderer the way cmd/mmtrace does.
func drive(rr Renderer, steps []step, snapshot *layout.Report) []*layout.Report {
	var ended []*layout.Report
	for i := range steps {
		st := &steps[i]
		rr.Event(&st.ev, st.ch)
		if st.ch.SnapshotReady && snapshot != nil {
			rr.Snapshot(snapshot)
		}
		for _, r := range st.ch.Ended {
			rr.Report(r)
			ended = append(ended, r)
		}
	}
	return ended
}

func sessionSummary(failing []*layout.Report) Summary {
	return Summary{Images: 1, Squeezed: 1, BrkFailed: 1, Failing: failing, Duration: 1500 * time.Millisecond, Check: true}
}

// TestTextSessionGolden renders a whole traced session in text: the event
// lines, the picture at exec, the report and the summary.
func TestTextSessionGolden(t *testing.T) {
	var buf bytes.Buffer
	tr := NewText(&buf, Options{Width: 100})
	ended := drive(tr, hintSqueezeStream(), atExec(hintSqueeze64()))
	tr.Summary(sessionSummary(ended))
	if err := tr.Flush(); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "session-hint-squeeze", buf.Bytes())
	out := buf.String()
	if strings.Contains(out, "  vma ") {
		t.Error("VMA snapshot lines shown without Verbose")
	}
	for _, want := range []string{"SQUEEZER", "FAILED (blocked by 0x5603f7dc1000-0x5603f7dc2000 /etc/passwd)", "headroom 4.0 KiB", "== report:", "== summary:"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// TestTextMiscGolden covers the other event kinds and error results, in
// verbose mode (VMA lines shown), and that untraced events are skipped.
func TestTextMiscGolden(t *testing.T) {
	var buf bytes.Buffer
	tr := NewText(&buf, Options{Width: 100, Verbose: true})
	drive(tr, miscStream(), nil)
	if err := tr.Flush(); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "events-misc", buf.Bytes())
	if strings.Contains(buf.String(), "   999 ") {
		t.Error("an untracked event was shown")
	}
}

func TestTextColour(t *testing.T) {
	var plain, colour bytes.Buffer
	for _, c := range []struct {
		buf *bytes.Buffer
		on  bool
	}{{&plain, false}, {&colour, true}} {
		tr := NewText(c.buf, Options{Width: 100, Color: c.on})
		tr.Report(legacySqueeze32())
		if err := tr.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Contains(plain.String(), "\x1b[") {
		t.Error("escape codes without Color")
	}
	if !strings.Contains(colour.String(), "\x1b[1;31m◀ SQUEEZER") {
		t.Error("the squeezer is not red with Color")
	}
	if stripANSI(colour.String()) != plain.String() {
		t.Error("colour changes the text beyond escape codes")
	}
}

func stripANSI(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == 0x1b && i+1 < len(s) && s[i+1] == '[' {
			j := i + 2
			for j < len(s) && s[j] != 'm' {
				j++
			}
			i = j
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// decodeLines decodes every line as a JSON object.
func decodeLines(t *testing.T, out []byte) []map[string]any {
	t.Helper()
	var objs []map[string]any
	for i, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %d is not valid JSON: %v\n%s", i+1, err, line)
		}
		if !strings.HasPrefix(line, `{"type":`) {
			t.Errorf("line %d does not start with \"type\": %s", i+1, line)
		}
		objs = append(objs, m)
	}
	return objs
}

// TestJSONSessionGolden renders the session as JSON lines, checks every
// line decodes, and that the report line carries the README's contract.
func TestJSONSessionGolden(t *testing.T) {
	var buf bytes.Buffer
	jr := NewJSON(&buf, Options{})
	ended := drive(jr, hintSqueezeStream(), atExec(hintSqueeze64()))
	jr.Summary(sessionSummary(ended))
	if err := jr.Flush(); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "session-hint-squeeze.jsonl", buf.Bytes())
	objs := decodeLines(t, buf.Bytes())

	var rep, sum map[string]any
	types := map[string]int{}
	for _, o := range objs {
		typ, _ := o["type"].(string)
		types[typ]++
		switch typ {
		case "report":
			rep = o
		case "summary":
			sum = o
		}
	}
	if types["vma"] != 0 {
		t.Errorf("%d vma lines without Verbose", types["vma"])
	}
	if objs[len(objs)-1]["type"] != "summary" {
		t.Error("the last line is not the summary")
	}
	if rep == nil || sum == nil {
		t.Fatalf("no report or summary line: %v", types)
	}
	want := map[string]any{
		"pid": 7311.0, "comm": "hintsqueeze", "exe": "/tmp/mmtrace-e2e/hintsqueeze", "abi": "x86_64",
		"ppid": 7300.0, "parent_comm": "mmtrace", "personality": "0x0", "layout": "flexible",
		"mmap_base": "0x7f5c2a1e4000", "start_brk": "0x5603f7d9f000", "brk": "0x5603f7dc0000",
		"brk_headroom": 4096.0, "lost_events": 0.0, "uncertain": false, "ended": "exit", "from_proc": false,
		"parent_abi": "x86_64", "personality_source": "inherited",
	}
	for k, v := range want {
		if rep[k] != v {
			t.Errorf("report %s = %#v, want %#v", k, rep[k], v)
		}
	}
	sq, _ := rep["squeezer"].(map[string]any)
	if sq["start"] != "0x5603f7dc1000" || sq["path"] != "/etc/passwd" || sq["placement"] != "hint" || sq["seq"] != 27.0 || sq["prot"] != "r--p" {
		t.Errorf("squeezer = %v", sq)
	}
	fails, _ := rep["brk_failures"].([]any)
	if len(fails) != 1 {
		t.Fatalf("brk_failures = %v", rep["brk_failures"])
	}
	if f := fails[0].(map[string]any); f["blocked_by"] != "0x5603f7dc1000" || f["requested"] != "0x5603f7de1000" || f["seq"] != 28.0 {
		t.Errorf("brk failure = %v", f)
	}
	vmas, _ := rep["vmas"].([]any)
	if len(vmas) != len(hintSqueeze64().VMAs) {
		t.Errorf("%d vmas, want %d", len(vmas), len(hintSqueeze64().VMAs))
	}
	if v := vmas[6].(map[string]any); v["placement"] != "hint" || v["path"] != "/etc/passwd" {
		t.Errorf("vma 6 = %v", v)
	}
	if sum["images"] != 1.0 || sum["check"] != true || len(sum["failing"].([]any)) != 1 {
		t.Errorf("summary = %v", sum)
	}
}

// TestJSONReportNulls checks the null forms: no squeezer, no bounding
// mapping, a brk failure that no mapping blocked.
func TestJSONReportNulls(t *testing.T) {
	r := healthyBash64()
	r.BoundedBy = nil
	r.BrkFailures = []layout.BrkFailure{{Seq: 9, Requested: 0x55d0c8000000, Result: 0x55d0c7c13000}}
	var buf bytes.Buffer
	jr := NewJSON(&buf, Options{})
	jr.Report(r)
	if err := jr.Flush(); err != nil {
		t.Fatal(err)
	}
	o := decodeLines(t, buf.Bytes())[0]
	if v, ok := o["squeezer"]; !ok || v != nil {
		t.Errorf("squeezer = %v, want null", v)
	}
	if v, ok := o["bounded_by"]; !ok || v != nil {
		t.Errorf("bounded_by = %v, want null", v)
	}
	f := o["brk_failures"].([]any)[0].(map[string]any)
	if v, ok := f["blocked_by"]; !ok || v != nil {
		t.Errorf("blocked_by = %v, want null", v)
	}
	if o["brk_headroom"] != float64(r.BrkHeadroom) {
		t.Errorf("brk_headroom = %v", o["brk_headroom"])
	}
}

// TestJSONMisc decodes the other event kinds (verbose, so VMA lines too),
// including a path that is not UTF-8.
func TestJSONMisc(t *testing.T) {
	var buf bytes.Buffer
	jr := NewJSON(&buf, Options{Verbose: true})
	drive(jr, miscStream(), nil)
	if err := jr.Flush(); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "events-misc.jsonl", buf.Bytes())
	objs := decodeLines(t, buf.Bytes())
	byType := map[string]map[string]any{}
	for _, o := range objs {
		if o["seq"] == 999.0 {
			t.Error("an untracked event was written")
		}
		byType[o["type"].(string)] = o
	}
	if o := byType["mmap"]; o["path"] != "/tmp/bad\ufffd\"name\n\x01" {
		t.Errorf("mmap path = %q", o["path"])
	}
	if o := byType["brk"]; o["failed"] != true || o["blocked_by"] != nil {
		t.Errorf("brk = %v", o)
	}
	if o := byType["execve"]; o["error"] != "ENOENT" || o["result"] != -2.0 {
		t.Errorf("execve = %v", o)
	}
	if o := byType["vma"]; o["prot"] != "r--p" || o["start"] != "0x56555000" {
		t.Errorf("vma = %v", o)
	}
	if o := byType["lost"]; o["lost"] != 17.0 {
		t.Errorf("lost = %v", o)
	}
	if o := byType["mremap"]; o["flags"] != "MREMAP_MAYMOVE" || o["placement"] != "mremap" {
		t.Errorf("mremap = %v", o)
	}
}

func TestAppendJSONStringRoundTrip(t *testing.T) {
	for _, s := range []string{"", "plain", "quote\" back\\slash", "ctl\x00\x1f\x7f", "tab\tnl\n", "ünï", "\u2028\u2029", "bad\xc3("} {
		b := appendJSONString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Errorf("%q -> %s: %v", s, b, err)
			continue
		}
		want := strings.ToValidUTF8(s, "\ufffd")
		if got != want {
			t.Errorf("%q -> %s -> %q, want %q", s, b, got, want)
		}
	}
}

func TestMmapFlags(t *testing.T) {
	for _, c := range []struct {
		flags uint32
		want  string
	}{
		{0x22, "MAP_PRIVATE|MAP_ANONYMOUS"},
		{0x100012, "MAP_PRIVATE|MAP_FIXED|MAP_FIXED_NOREPLACE"},
		{0x1, "MAP_SHARED"},
		{0x80000000 | 0x2, "MAP_PRIVATE|0x80000000"},
		{0, "0"},
	} {
		if got := string(appendMmapFlags(nil, c.flags, "MAP_")); got != c.want {
			t.Errorf("flags %#x = %s, want %s", c.flags, got, c.want)
		}
	}
}

func TestSize(t *testing.T) {
	for _, c := range []struct {
		n    uint64
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {4096, "4.0 KiB"}, {132 << 10, "132 KiB"},
		{1 << 20, "1.0 MiB"}, {12 << 30, "12.0 GiB"}, {^uint64(0), "16.0 EiB"},
	} {
		if got := Size(c.n); got != c.want {
			t.Errorf("Size(%d) = %s, want %s", c.n, got, c.want)
		}
	}
}

// The integer paths of appendSize and appendSeconds print what strconv's
// float formatting printed before them: boundaries, ties and a spread of
// pseudo-random values.
func TestSizeAndSecondsAsFloat(t *testing.T) {
	floatSize := func(n uint64) string {
		if n < 1024 {
			return strconv.FormatUint(n, 10) + " B"
		}
		v, i := float64(n)/1024, 0
		for v >= 1024 && i < 5 {
			v /= 1024
			i++
		}
		prec := 1
		if v >= 100 {
			prec = 0
		}
		return strconv.FormatFloat(v, 'f', prec, 64) + " " + string("KMGTPE"[i]) + "iB"
	}
	floatSeconds := func(ns int64) string { return strconv.FormatFloat(float64(ns)/1e9, 'f', 6, 64) }
	sizes := []uint64{1024, 1075, 1126, 1177, 1280, 1331, 1<<53 - 1, 1 << 53, 102348, 102349, 102400, 1048524, 1048525, 1048576}
	times := []int64{0, 499, 500, 501, 1500, 2500, 999999499, 999999500, 999999501, 1<<52 - 1, 1 << 52, -1, -1500}
	for k := uint(10); k <= 60; k += 10 {
		for _, m := range []uint64{1, 99, 100, 1023, 1024} {
			for _, d := range []int64{-1, 0, 1} {
				sizes = append(sizes, uint64(int64(m<<k)+d))
			}
		}
		// Ties of the first decimal, both parities.
		sizes = append(sizes, 1<<k+1<<k/20, 3<<k+1<<k/20, 1<<k+3<<k/20)
	}
	rng := uint64(1)
	for range 200000 {
		rng = rng*6364136223846793005 + 1442695040888963407
		sizes = append(sizes, rng>>(rng%64))
		times = append(times, int64(rng>>(12+rng%40)))
	}
	for _, n := range sizes {
		if got, want := string(appendSize(nil, n)), floatSize(n); got != want {
			t.Fatalf("appendSize(%d) = %s, want %s", n, got, want)
		}
	}
	for _, ns := range times {
		if got, want := string(appendSeconds(nil, ns)), floatSeconds(ns); got != want {
			t.Fatalf("appendSeconds(%d) = %s, want %s", ns, got, want)
		}
	}
}

func TestCheckLine(t *testing.T) {
	got := CheckLine(legacySqueeze32())
	want := "pid 5150 memtest32 (i386, legacy): squeezed by 0x57a5f000-0x5825f000 /var/tmp/blob.dat (bottom-up, seq 37), headroom 0 B; 2 failed brk (first at seq 39, blocked by 0x57a5f000)"
	if got != want {
		t.Errorf("CheckLine =\n%s\nwant\n%s", got, want)
	}
	if strings.Contains(got, "\n") {
		t.Error("CheckLine spans lines")
	}
}

// TestNilAndEmpty: renderers must not panic on nil or empty input.
func TestNilAndEmpty(t *testing.T) {
	var buf bytes.Buffer
	for _, rr := range []Renderer{NewText(&buf, Options{}), NewJSON(&buf, Options{})} {
		rr.Event(nil, layout.Change{})
		rr.Snapshot(nil)
		rr.Report(nil)
		rr.Report(&layout.Report{})
		rr.Summary(Summary{Failing: []*layout.Report{nil}})
		if err := rr.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	Picture(&buf, nil, Options{})
	Picture(&buf, &layout.Report{}, Options{Width: 10})
	if Story(nil) != nil {
		t.Error("Story(nil) is not nil")
	}
	if len(Story(&layout.Report{})) == 0 {
		t.Error("no story for an empty report")
	}
	_ = CheckLine(nil)
}

// TestPictureStaysSmall: an image with hundreds of scattered mappings
// still gets a picture of about maxPictureLines rows, with the squeezer
// and heap on their own rows.
func TestPictureStaysSmall(t *testing.T) {
	r := hintSqueeze64()
	for i := uint64(0); i < 300; i++ {
		a := 0x7f0000000000 + i*0x3000000
		r.VMAs = append(r.VMAs, mp(a, a+0x21000, "rw-p", "", layout.PlacementTopDown, 100+i))
		r.VMAs = append(r.VMAs, mp(a+0x100000, a+0x180000, "r--p", "/usr/lib/x86_64-linux-gnu/lib"+string(rune('a'+i%26))+".so", layout.PlacementTopDown, 400+i))
	}
	var buf bytes.Buffer
	Picture(&buf, r, Options{Width: 100})
	lines := strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
	if len(lines) > maxPictureLines+8 {
		t.Errorf("picture has %d lines:\n%s", len(lines), buf.String())
	}
	for _, want := range []string{"◀ SQUEEZER", "[heap]", "headroom 4.0 KiB", "[stack]"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("picture lacks %q:\n%s", want, buf.String())
		}
	}
}

// TestJSONEventAllocs: the JSON event path runs for every record and must
// not allocate once its buffers have grown.
func TestJSONEventAllocs(t *testing.T) {
	st := hintSqueezeStream()
	var mmap, brk *step
	for i := range st {
		switch {
		case st[i].ev.Kind == events.KindMmap && mmap == nil:
			mmap = &st[i]
		case st[i].ev.Kind == events.KindBrk && st[i].ch.BrkFailure != nil:
			brk = &st[i]
		}
	}
	jr := NewJSON(io.Discard, Options{})
	for _, s := range []*step{mmap, brk} {
		jr.Event(&s.ev, s.ch)
		if n := testing.AllocsPerRun(100, func() { jr.Event(&s.ev, s.ch) }); n != 0 {
			t.Errorf("%s event: %.1f allocations per line, want 0", s.ev.Kind, n)
		}
	}
}

// TestTextEventAllocs: the text event path allocates nothing either, but
// for the rare notes (a new squeezer, a failed brk, the headroom moving).
func TestTextEventAllocs(t *testing.T) {
	st := hintSqueezeStream()
	tr := NewText(io.Discard, Options{})
	for i := range st {
		s := &st[i]
		switch {
		case s.ev.Kind != events.KindMmap && s.ev.Kind != events.KindMunmap && s.ev.Kind != events.KindMprotect:
			continue
		case s.ch.HeadroomChanged || s.ch.NewSqueezer != nil || s.ch.BrkFailure != nil:
			continue
		}
		tr.Event(&s.ev, s.ch)
		if n := testing.AllocsPerRun(100, func() { tr.Event(&s.ev, s.ch) }); n != 0 {
			t.Errorf("%s event: %.1f allocations per line, want 0", s.ev.Kind, n)
		}
	}
}

func BenchmarkTextEvent(b *testing.B) {
	st := hintSqueezeStream()
	tr := NewText(io.Discard, Options{})
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		s := &st[15+i%10]
		tr.Event(&s.ev, s.ch)
	}
}

func BenchmarkJSONEvent(b *testing.B) {
	st := hintSqueezeStream()
	jr := NewJSON(io.Discard, Options{})
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		s := &st[15+i%10]
		jr.Event(&s.ev, s.ch)
	}
}

// TestPlainASCII holds the word-at-a-time test to the byte-at-a-time one:
// every byte value at every place of lines of 1 to 24 bytes.
func TestPlainASCII(t *testing.T) {
	naive := func(b []byte) bool {
		for _, c := range b {
			if c < 0x20 || c >= 0x7f {
				return false
			}
		}
		return true
	}
	for n := 1; n <= 24; n++ {
		b := bytes.Repeat([]byte{'a'}, n)
		for i := range n {
			for c := range 256 {
				b[i] = byte(c)
				if got, want := plainASCII(b), naive(b); got != want {
					t.Fatalf("plainASCII(%q) = %v, want %v", b, got, want)
				}
			}
			b[i] = 'a'
		}
	}
}

// BenchmarkReportAtScale renders the report of an image of 262k VMAs (the
// bench's largest vmachurn), text and JSON.
func BenchmarkReportAtScale(b *testing.B) {
	r := hintSqueeze64()
	const n = 1 << 18
	base := uint64(0x7f0000000000)
	for i := range uint64(n) {
		prot := "rw-p"
		if i%2 == 1 {
			prot = "r--p"
		}
		r.VMAs = append(r.VMAs, mp(base+i*4096, base+(i+1)*4096, prot, "", layout.PlacementFixed, 100+i))
	}
	for _, f := range []struct {
		name string
		new  func(io.Writer, Options) Renderer
	}{{"text", NewText}, {"json", NewJSON}} {
		b.Run(f.name, func(b *testing.B) {
			rr := f.new(io.Discard, Options{})
			b.ReportAllocs()
			for b.Loop() {
				rr.Report(r)
				if err := rr.Flush(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
