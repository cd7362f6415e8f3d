package render

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mmtrace/mmtrace/internal/layout"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

var goldenReports = []struct {
	name   string
	report func() *layout.Report
}{
	{"legacy-squeeze-i386", legacySqueeze32},
	{"legacy-squeeze-merged-heap-i386", legacyMerged32},
	{"hint-squeeze-x86_64", hintSqueeze64},
	{"healthy-bash-x86_64", healthyBash64},
	{"flexible-i386", flexible32},
}

// checkGolden compares got with testdata/name.golden, or rewrites it
// under -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the output; run go test -update and read the diff.\ngot:\n%s", path, got)
	}
}

// TestReportGolden renders the full text report (fields, picture, story)
// of each hand-built image at a fixed width without colour.
func TestReportGolden(t *testing.T) {
	for _, tc := range goldenReports {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			tr := NewText(&buf, Options{Width: 100})
			tr.Report(tc.report())
			if err := tr.Flush(); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, "report-"+tc.name, buf.Bytes())
			// The report ends with the story, its last sentence how the image ended.
			story := Story(tc.report())
			if out := strings.TrimRight(buf.String(), "\n"); !strings.HasSuffix(out, lastWords(story[len(story)-1])) {
				t.Errorf("the report does not end with the story's last sentence %q", story[len(story)-1])
			}
		})
	}
}

// TestPictureNarrowGolden checks that the picture still fits a narrow
// terminal.
func TestPictureNarrowGolden(t *testing.T) {
	var buf bytes.Buffer
	Picture(&buf, hintSqueeze64(), Options{Width: 72})
	checkGolden(t, "picture-narrow-hint-squeeze-x86_64", buf.Bytes())
	for _, l := range strings.Split(strings.TrimRight(buf.String(), "\n"), "\n") {
		if n := len([]rune(l)); n > 72 {
			t.Errorf("line is %d columns wide, more than 72: %q", n, l)
		}
	}
}

// TestPictureWidths renders every golden report at common terminal
// widths, with and without colour: no line may be wider than the
// terminal, none of the picture may be cut off at the edge (long notes
// wrap instead), and colour may add nothing but escape codes.
func TestPictureWidths(t *testing.T) {
	for _, tc := range goldenReports {
		for _, width := range []int{80, 100, 120} {
			var plain, colour bytes.Buffer
			Picture(&plain, tc.report(), Options{Width: width})
			Picture(&colour, tc.report(), Options{Width: width, Color: true})
			if stripANSI(colour.String()) != plain.String() {
				t.Errorf("%s at %d columns: colour changes the text beyond escape codes", tc.name, width)
			}
			for _, l := range strings.Split(strings.TrimRight(plain.String(), "\n"), "\n") {
				if n := len([]rune(l)); n > width {
					t.Errorf("%s at %d columns: line is %d columns wide: %q", tc.name, width, n, l)
				}
				if strings.HasSuffix(l, "…") {
					t.Errorf("%s at %d columns: line cut off: %q", tc.name, width, l)
				}
			}
		}
	}
}

// lastWords is the end of a sentence as wrapped text shows it: its last
// two words.
func lastWords(s string) string {
	f := strings.Fields(s)
	return strings.Join(f[max(0, len(f)-2):], " ")
}
