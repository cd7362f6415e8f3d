package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/mmtrace/mmtrace/internal/events"
	"github.com/mmtrace/mmtrace/internal/layout"
	"github.com/mmtrace/mmtrace/internal/record"
)

// What a live run knows reaches a replay through the recording's header.
func TestFactsRoundTrip(t *testing.T) {
	want := Facts{
		LegacyVALayout: true,
		ExecVMAs:       false,
		NoIA32:         true,
		LockPath:       true,
		MountNS:        4026531841,
		ProcImages: []layout.ProcImage{{PID: 42, PPID: 1, Comm: "srv", Exe: "/srv", ABI: events.ABI32,
			StartBrk: 0x1000, Brk: 0x3000, Maps: []layout.Mapping{{Start: 0x1000, End: 0x3000, Prot: "rw-p", Path: "[heap]"}}}},
	}
	opts, err := want.options(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	if opts[optThreshold] != "1048576" {
		t.Errorf("threshold option %q", opts[optThreshold])
	}
	got, err := factsOf(record.Header{Options: opts})
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("factsOf = %+v, %v\nwant %+v", got, err, want)
	}
	// A header without the options (an older recording) reads as a
	// plain live run: flexible layout, VMAs walked, 32-bit traced.
	got, err = factsOf(record.Header{})
	if err != nil || !reflect.DeepEqual(got, Facts{ExecVMAs: true}) {
		t.Errorf("facts of an empty header = %+v, %v", got, err)
	}
	if _, err := factsOf(record.Header{Options: map[string]string{optProcImages: "{"}}); err == nil {
		t.Error("damaged /proc layouts were accepted")
	}
}

// The Go filter follows the kernel's: a name at exec picks the process,
// a picked process's children are picked, and a loss for no one process
// concerns everyone.
func TestFilter(t *testing.T) {
	if NewFilter(nil, nil) != nil {
		t.Fatal("no --comm and no --pid must pick everything (nil)")
	}
	var none *Filter
	if !none.wants(&events.Event{PID: 9}) || !none.has(9) || !none.seeds(layout.ProcImage{PID: 9}) {
		t.Error("a nil filter refuses something")
	}
	f := NewFilter([]string{"bash"}, []uint32{7})
	steps := []struct {
		ev   events.Event
		want bool
	}{
		{events.Event{Kind: events.KindMmap, PID: 8}, false},
		{events.Event{Kind: events.KindExec, PID: 8, Exec: &events.Exec{Comm: "bash"}}, true},
		{events.Event{Kind: events.KindFork, PID: 8, Child: 9}, true},
		{events.Event{Kind: events.KindMmap, PID: 9}, true},
		{events.Event{Kind: events.KindFork, PID: 10, Child: 11}, false},
		{events.Event{Kind: events.KindMmap, PID: 11}, false},
		{events.Event{Kind: events.KindLost, PID: 0}, true},
		{events.Event{Kind: events.KindMmap, PID: 7}, true},
	}
	for i, s := range steps {
		if got := f.wants(&s.ev); got != s.want {
			t.Errorf("step %d (%v pid %d): wants %v", i, s.ev.Kind, s.ev.PID, got)
		}
	}
	if f.has(10) || !f.has(9) {
		t.Error("has disagrees with what was picked")
	}
	if !f.seeds(layout.ProcImage{PID: 20, Comm: "bash"}) || !f.has(20) || f.seeds(layout.ProcImage{PID: 21, Comm: "sh"}) {
		t.Error("a /proc image is picked by name, and only then")
	}
}

// writeRecording makes a recording of raw records with facts in its header.
func writeRecording(t *testing.T, facts Facts, recs ...[]byte) string {
	t.Helper()
	var b bytes.Buffer
	h := record.NewHeader()
	var err error
	if h.Options, err = facts.options(layout.DefaultSqueezeThreshold); err != nil {
		t.Fatal(err)
	}
	w, err := record.NewWriter(&b, h)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "rec.mmt")
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// replayJSON runs a recording through the pipeline, recording it again
// when again is not nil, and returns the JSON lines.
func replayJSON(t *testing.T, path string, filter *Filter, again io.Writer) []map[string]any {
	t.Helper()
	src, err := OpenRecording(context.Background(), path, filter, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	lines, err := runJSON(t, src, again)
	if err != nil {
		t.Fatal(err)
	}
	return lines
}

func runJSON(t *testing.T, src *Recording, again io.Writer) ([]map[string]any, error) {
	t.Helper()
	defer src.Close()
	var out bytes.Buffer
	_, err := Run(src, Options{JSON: true}, Outputs{Out: &out, Record: again, Stderr: io.Discard})
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var m map[string]any
		if jerr := json.Unmarshal([]byte(l), &m); jerr != nil {
			t.Fatalf("line %q: %v", l, jerr)
		}
		lines = append(lines, m)
	}
	return lines, err
}

// A replay counts the losses it reads, and a replay recorded again (-w
// of -r) holds the same records and facts: the same output again.
func TestRunReplay(t *testing.T) {
	facts := Facts{MountNS: 7, ProcImages: []layout.ProcImage{{PID: 5, Comm: "srv", StartBrk: 0x10000, Brk: 0x10000,
		Maps: []layout.Mapping{{Start: 0x1000, End: 0x2000, Prot: "r-xp", Path: "/srv"}}}}}
	path := writeRecording(t, facts,
		events.EncodeLost(5, 3, 100), events.EncodeLost(6, 4, 200), events.EncodeLost(0, 2, 300))
	var again bytes.Buffer
	lines := replayJSON(t, path, nil, &again)
	sum := lines[len(lines)-1]
	if sum["type"] != "summary" || sum["lost_events"] != 9.0 || sum["images"] != 1.0 {
		t.Errorf("summary %v, want 9 lost records and the one /proc image", sum)
	}
	path2 := filepath.Join(t.TempDir(), "again.mmt")
	if err := os.WriteFile(path2, again.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if lines2 := replayJSON(t, path2, nil, nil); !reflect.DeepEqual(lines2, lines) {
		t.Errorf("the recorded replay replays as\n%v\nnot\n%v", lines2, lines)
	}

	// Picking pid 6 leaves out pid 5's image and its loss.
	lines = replayJSON(t, path, NewFilter(nil, []uint32{6}), nil)
	for _, l := range lines {
		if l["pid"] == 5.0 {
			t.Errorf("pid 5 was not picked, yet: %v", l)
		}
	}
}

// A replay a signal cuts short reports what it read and says where it
// stopped.
func TestRunReplayStopped(t *testing.T) {
	path := writeRecording(t, Facts{}, events.EncodeLost(5, 3, 100))
	ctx, cancel := context.WithCancel(context.Background())
	src, err := OpenRecording(ctx, path, nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	lines, err := runJSON(t, src, nil)
	var st *Stopped
	if !errors.As(err, &st) || !strings.HasPrefix(st.Where, "at offset ") || !strings.Contains(st.Where, path) {
		t.Errorf("err %v, want where the replay stopped", err)
	}
	if sum := lines[len(lines)-1]; sum["type"] != "summary" || sum["lost_events"] != 0.0 {
		t.Errorf("summary %v, want one that read nothing", sum)
	}
}

// The lost-records line counts only the records the ring lost (not those
// the kernel skipped) and ends with the source's advice; a replay, which
// knows no ring, can only say that more helps.
func TestLostLine(t *testing.T) {
	for _, c := range []struct {
		name          string
		advice        func(uint64) string
		lost, skipped uint64
		want          string
	}{
		{"live", func(n uint64) string { return fmt.Sprintf(": advice for %d", n) }, 1500, 500,
			"mmtrace: 1000 records were lost (ring buffer full: advice for 1000); affected reports say uncertain\n"},
		{"replay", (&Recording{}).LostAdvice, 5, 0,
			"mmtrace: 5 records were lost (ring buffer full; a larger --ring-size helps); affected reports say uncertain\n"},
	} {
		var stderr bytes.Buffer
		p := newPipeline(Options{}, Outputs{Out: io.Discard, Stderr: &stderr}, Facts{})
		p.lostAdvice, p.lost, p.skipped = c.advice, c.lost, c.skipped
		if _, err := p.finish(); err != nil {
			t.Fatal(err)
		}
		if first := strings.SplitAfterN(stderr.String(), "\n", 2)[0]; first != c.want {
			t.Errorf("%s: stderr %q, want first line %q", c.name, stderr.String(), c.want)
		}
	}
}
