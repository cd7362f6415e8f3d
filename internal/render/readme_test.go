package render

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/mmtrace/mmtrace/internal/events"
	"github.com/mmtrace/mmtrace/internal/layout"
)

// readmeReportKeys are the keys of the report line the README documents,
// from the example after "one `report` line:".
func readmeReportKeys(t *testing.T) []string {
	t.Helper()
	s := readme(t)
	i := strings.Index(s, "one `report` line:")
	if i < 0 {
		t.Fatal("the README no longer documents the report line")
	}
	start := strings.Index(s[i:], "```\n") + i + 4
	end := strings.Index(s[start:], "```") + start
	return keysIn(keyRE.FindAllStringSubmatch(s[start:end], -1))
}

var (
	keyRE  = regexp.MustCompile(`"([a-z_]+)":`) // a JSON key
	tickRE = regexp.MustCompile("`([a-z_]+)`")  // a word in backticks
)

func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func keysIn(matches [][]string) []string {
	var keys []string
	for _, m := range matches {
		keys = append(keys, m[1])
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// collectKeys gathers every object key in v, nested ones included.
func collectKeys(v any, into map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			into[k] = true
			collectKeys(e, into)
		}
	case []any:
		for _, e := range x {
			collectKeys(e, into)
		}
	}
}

// The README's report schema and the renderer's report line name the same
// keys: a key documented but never written, or written but undocumented,
// fails here. The report is made as full as a report gets, so that every
// optional key appears.
func TestReadmeReportSchema(t *testing.T) {
	m := layout.Mapping{Start: 0x1000, End: 0x2000, Prot: "r--p", Path: "/etc/passwd", Placement: layout.PlacementHint, Seq: 17}
	rep := &layout.Report{
		PID: 1, Comm: "bash", Exe: "/usr/bin/bash", Argv: []string{"bash", "-l"}, ArgvTruncated: true,
		ABI: events.ABI64, PPID: 2, ParentComm: "sshd", ParentABI: events.ABI32,
		Layout: "legacy", LayoutReason: "x", PersonalitySource: "inherited",
		Squeezer:    &layout.Squeezer{Mapping: m, Headroom: 4096},
		BoundedBy:   &m,
		BrkFailures: []layout.BrkFailure{{Seq: 20, Requested: 0x3000, Result: 0x2000, BlockedBy: &m, Cause: layout.BrkBlocked}},
		VMAs:        []layout.Mapping{m},
		Notes:       []string{"n"},
		Ended:       "exit", ExecSeq: 2, EndSeq: 49,
	}
	var buf bytes.Buffer
	jr := NewJSON(&buf, Options{})
	jr.Report(rep)
	if err := jr.Flush(); err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := json.Unmarshal(buf.Bytes(), &obj); err != nil {
		t.Fatalf("report line is not JSON: %v\n%s", err, buf.Bytes())
	}
	got := map[string]bool{}
	collectKeys(obj, got)
	var written []string
	for k := range got {
		written = append(written, k)
	}
	slices.Sort(written)
	documented := readmeReportKeys(t)
	for _, k := range documented {
		if !got[k] {
			t.Errorf("the README documents %q, the report line has no such key", k)
		}
	}
	for _, k := range written {
		if !slices.Contains(documented, k) {
			t.Errorf("the report line writes %q, the README does not document it", k)
		}
	}
}
