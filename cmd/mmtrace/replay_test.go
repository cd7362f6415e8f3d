package main

// Replay tests without root: small recordings made by real runs are
// committed under testdata/recordings, with golden files of their replayed
// output, so the analysis and rendering are tested on any machine.
//
//	go test -run 'TestReplay' ./cmd/mmtrace/                 # compare
//	go test -run 'TestReplayGolden' ./cmd/mmtrace/ -update   # rewrite the goldens
//	sudo go test -run 'TestMakeRecordings' ./cmd/mmtrace/ -record   # re-record, then -update

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var (
	update      = flag.Bool("update", false, "rewrite testdata/recordings/*.golden from the replays")
	reRecording = flag.Bool("record", false, "remake testdata/recordings/*.mmt from real runs (root)")
)

const recordingsDir = "testdata/recordings"

// recordings are the committed recordings, and how each was made: the
// command mmtrace ran. The fixtures are copied to fixtureCopies, so that the
// paths in the recordings do not change from one re-recording to the next.
const fixtureCopies = "/tmp/mmtrace-fixtures"

var recordings = []struct {
	name    string
	command []string
}{
	// The 32-bit squeeze: a file mapped at a hint 1 MiB above the heap,
	// then a brk that cannot fit.
	{"hint_squeeze32", []string{fixtureCopies + "/hint_squeeze32", "/etc/passwd"}},
	// A healthy 64-bit bash.
	{"bash", []string{"bash", "-c", "echo hi"}},
	// Several processes: bash forks the squeeze fixture; then a subshell
	// that never execs and grows its heap reading 100 KB from a command
	// substitution (one more fork); then bash execs true in its own pid
	// (the bash image ends at that exec).
	{"family", []string{"bash", "-c", fixtureCopies + "/hint_squeeze /etc/passwd; (a=$(printf %0100000d 0)); /bin/true"}},
}

// TestMakeRecordings remakes the committed recordings with the built
// mmtrace. It runs only with -record (and root); run the golden tests with
// -update afterwards, and read the new goldens before committing them.
func TestMakeRecordings(t *testing.T) {
	if !*reRecording {
		t.Skip("remakes the committed recordings; run with -record (as root)")
	}
	bin, dir := binaries(t)
	// A copy, not a symlink: the kernel reports the file's real path.
	if err := os.RemoveAll(fixtureCopies); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(fixtureCopies, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(fixtureCopies)
	for _, name := range []string{"hint_squeeze", "hint_squeeze32"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(fixtureCopies, name), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range recordings {
		file := filepath.Join(recordingsDir, r.name+".mmt")
		args := append([]string{"-w", file, "--format", "json", "--output", os.DevNull, "--"}, r.command...)
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("record %s: %v\n%s", r.name, err, out)
		}
		// The recording is made by root with mode 0600; the repository
		// copy must be readable by whoever runs the tests.
		if err := os.Chmod(file, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("recorded %s", file)
	}
}

// replayRun is mmtrace run in-process with its output captured.
type replayRun struct {
	code           int
	stdout, stderr string
}

func replayInProcess(args ...string) replayRun {
	var stdout, stderr bytes.Buffer
	code := mainStatus(args, &stdout, &stderr)
	return replayRun{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// recordingFile is the path of a committed recording; it fails the test
// if the file is missing.
func recordingFile(t *testing.T, name string) string {
	t.Helper()
	file := filepath.Join(recordingsDir, name+".mmt")
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("committed recording missing: %v", err)
	}
	return file
}

// The summary's duration is how long the replay took, not a fact of the
// recording (see TestReplayTwiceIsIdentical): goldens hold a placeholder.
var (
	jsonDuration = regexp.MustCompile(`"duration_ns":-?[0-9]+`)
	textDuration = regexp.MustCompile(`traced for [0-9.µnmhs]+ ==`)
)

func maskDuration(s string) string {
	s = jsonDuration.ReplaceAllString(s, `"duration_ns":"DURATION"`)
	return textDuration.ReplaceAllString(s, "traced for DURATION ==")
}

// jsonLines splits JSON output into its lines, failing on any line that is
// not a JSON object with "type" as its first key.
func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 64<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("line %d is not JSON: %v\n%s", n, err, line)
		}
		if first := firstKey(line); first != "type" {
			t.Fatalf("line %d starts with key %q, not \"type\":\n%s", n, first, line)
		}
		if typ, ok := m["type"].(string); !ok || typ == "" {
			t.Fatalf("line %d has type %v, not a name:\n%s", n, m["type"], line)
		}
		lines = append(lines, m)
	}
	return lines
}

// firstKey is the first key of the JSON object in line.
func firstKey(line []byte) string {
	dec := json.NewDecoder(bytes.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return ""
	}
	tok, err := dec.Token()
	if err != nil {
		return ""
	}
	k, _ := tok.(string)
	return k
}

// reportPIDs returns the pids of the report lines of comm, in order.
func reportPIDs(lines []map[string]any, comm string) []int {
	var pids []int
	for _, l := range lines {
		if l["type"] == "report" && l["comm"] == comm {
			pids = append(pids, num(l["pid"]))
		}
	}
	return pids
}

// num is a JSON number as an int (-1 if it is not a number).
func num(v any) int {
	f, ok := v.(float64)
	if !ok {
		return -1
	}
	return int(f)
}

// familyPIDs are the processes of the family recording.
type familyPIDs struct {
	bash     int // bash -c, later true
	fixture  int // hint_squeeze, forked by bash
	subshell int // ( ... ), forked by bash, never execs
	cmdsub   int // $( ... ), forked by the subshell
}

// findFamily picks the family's processes out of its full JSON replay.
func findFamily(t *testing.T, lines []map[string]any) familyPIDs {
	t.Helper()
	var f familyPIDs
	tr, fixture := reportPIDs(lines, "true"), reportPIDs(lines, "hint_squeeze")
	if len(tr) != 1 || len(fixture) != 1 {
		t.Fatalf("family: reports of true %v, hint_squeeze %v; want one each", tr, fixture)
	}
	f.bash, f.fixture = tr[0], fixture[0]
	for _, l := range lines {
		if l["type"] != "fork" {
			continue
		}
		switch parent, child := num(l["pid"]), num(l["child"]); {
		case parent == f.bash && child != f.fixture:
			f.subshell = child
		case parent == f.subshell && f.subshell != 0:
			f.cmdsub = child
		}
	}
	if f.subshell == 0 || f.cmdsub == 0 {
		t.Fatalf("family: no subshell fork in the recording (%+v)", f)
	}
	return f
}

// family replays the family recording in full.
func family(t *testing.T) (string, []map[string]any, familyPIDs) {
	t.Helper()
	file := recordingFile(t, "family")
	res := replayInProcess("-r", file, "--format", "json")
	if res.code != 0 {
		t.Fatalf("replay %s: exit %d\n%s", file, res.code, res.stderr)
	}
	lines := jsonLines(t, res.stdout)
	return file, lines, findFamily(t, lines)
}

// The replays of the committed recordings, compared with golden files that
// were read and checked by hand (see the comments in the cases).
func TestReplayGolden(t *testing.T) {
	type goldenCase struct {
		golden string
		args   func(t *testing.T) []string
	}
	plain := func(name string, extra ...string) func(t *testing.T) []string {
		return func(t *testing.T) []string {
			return append([]string{"-r", recordingFile(t, name)}, extra...)
		}
	}
	cases := []goldenCase{
		{"hint_squeeze32.txt", plain("hint_squeeze32", "--color", "never")},
		{"hint_squeeze32.jsonl", plain("hint_squeeze32", "--format", "json")},
		{"bash.txt", plain("bash", "--color", "never")},
		{"bash.jsonl", plain("bash", "--format", "json")},
		{"family.txt", plain("family", "--color", "never")},
		{"family.jsonl", plain("family", "--format", "json")},
		// One process picked out by comm, from its exec on: only
		// hint_squeeze, not its parent bash nor the true bash became.
		{"family-comm-hint_squeeze.txt", plain("family", "--color", "never", "--comm", "hint_squeeze")},
		// By comm at a later exec: bash's pid from its exec of true on.
		{"family-comm-true.jsonl", plain("family", "--format", "json", "--comm", "true")},
		// By pid: the squeeze fixture with its picture, from the execve
		// it made as a fork of bash.
		{"family-pid-hint_squeeze.txt", func(t *testing.T) []string {
			file, _, f := family(t)
			return []string{"-r", file, "--color", "never", "--pid", strconv.Itoa(f.fixture)}
		}},
		// By pid, a process that never execs: the subshell, with the
		// layout it inherited from bash, and its own child.
		{"family-pid-subshell.txt", func(t *testing.T) []string {
			file, _, f := family(t)
			return []string{"-r", file, "--color", "never", "--pid", strconv.Itoa(f.subshell)}
		}},
	}
	for _, c := range cases {
		t.Run(c.golden, func(t *testing.T) {
			res := replayInProcess(c.args(t)...)
			if res.code != 0 {
				t.Fatalf("exit %d\n%s", res.code, res.stderr)
			}
			if res.stderr != "" {
				t.Errorf("stderr of an intact recording's replay is not empty:\n%s", res.stderr)
			}
			if strings.HasSuffix(c.golden, ".jsonl") {
				jsonLines(t, res.stdout)
			}
			got := maskDuration(res.stdout)
			path := filepath.Join(recordingsDir, c.golden+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it, then read it)", err)
			}
			if got != string(want) {
				t.Errorf("replay differs from %s (rerun with -update and read the diff):\n%s", path, firstDiff(string(want), got))
			}
		})
	}
}

// firstDiff shows the first line where want and got differ.
func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d\nwant: %s\ngot:  %s", i+1, wl, gl)
		}
	}
	return "(no line differs)"
}

// What the committed recordings must show, beyond matching their goldens:
// the facts the goldens were checked for, so that a careless -update
// cannot bless a wrong analysis.
func TestReplayFindings(t *testing.T) {
	t.Run("hint_squeeze32", func(t *testing.T) {
		rep := onlyReport(t, "hint_squeeze32", "hint_squeeze32")
		if rep.ABI != "i386" || rep.Layout != "flexible" {
			t.Errorf("abi %s layout %s, want i386 flexible", rep.ABI, rep.Layout)
		}
		sq := rep.Squeezer
		if sq == nil || sq.Path != "/etc/passwd" || sq.Placement != "hint" {
			t.Fatalf("squeezer %+v, want /etc/passwd placed by hint", sq)
		}
		// The fixture hints 1 MiB above the page-rounded break.
		if got := hexval(t, sq.Start) - hexval(t, rep.StartBrk); got != 1<<20 {
			t.Errorf("squeezer %#x above start_brk, want 1 MiB", got)
		}
		if len(rep.BrkFailures) != 1 || rep.BrkFailures[0].BlockedBy == nil || *rep.BrkFailures[0].BlockedBy != sq.Start {
			t.Errorf("brk failures %+v, want one blocked by %s", rep.BrkFailures, sq.Start)
		}
		if rep.BrkHeadroom != 1<<20-4096 {
			t.Errorf("headroom %d, want 1 MiB less the page brk grew by", rep.BrkHeadroom)
		}
	})
	t.Run("bash", func(t *testing.T) {
		rep := onlyReport(t, "bash", "bash")
		if rep.ABI != "x86_64" || rep.Layout != "flexible" || rep.Squeezer != nil || len(rep.BrkFailures) != 0 || rep.BrkHeadroom < 1<<40 {
			t.Errorf("abi %s layout %s squeezer %+v failures %d headroom %d: want a healthy x86_64 bash",
				rep.ABI, rep.Layout, rep.Squeezer, len(rep.BrkFailures), rep.BrkHeadroom)
		}
	})
	t.Run("family", func(t *testing.T) {
		_, lines, f := family(t)
		if got := reportPIDs(lines, "bash"); !slices.Equal(got, []int{f.subshell, f.bash}) {
			t.Errorf("bash reports of pids %v, want the subshell %d (ended first) and bash %d (ended by its exec of true)", got, f.subshell, f.bash)
		}
		rep := onlyReport(t, "family", "hint_squeeze")
		if rep.PPID != uint32(f.bash) || rep.ParentComm != "bash" || rep.Squeezer == nil || rep.Squeezer.Placement != "hint" {
			t.Errorf("hint_squeeze: ppid %d (%s) squeezer %+v, want child of bash %d squeezed by a hint", rep.PPID, rep.ParentComm, rep.Squeezer, f.bash)
		}
	})
}

// onlyReport replays a committed recording and returns the one report of
// comm.
func onlyReport(t *testing.T, name, comm string) jsonReport {
	t.Helper()
	res := replayInProcess("-r", recordingFile(t, name), "--format", "json")
	if res.code != 0 {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	var found []jsonReport
	sc := bufio.NewScanner(strings.NewReader(res.stdout))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var r jsonReport
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		if r.Type == "report" && r.Comm == comm {
			found = append(found, r)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one report of %s, got %d", comm, len(found))
	}
	return found[0]
}

// Filters pick processes, never events of other processes: a filtered
// replay's lines are exactly the full replay's lines of the picked
// processes (by --comm, from the exec that matched on). Processes are
// modelled whether picked or not, so a picked child has the layout it
// inherited at fork.
func TestReplayFilters(t *testing.T) {
	file, all, f := family(t)
	execSeq := func(pid int, comm string) int {
		for _, l := range all {
			if l["type"] == "exec" && num(l["pid"]) == pid && l["comm"] == comm {
				return num(l["seq"])
			}
		}
		t.Fatalf("no exec of %s in pid %d", comm, pid)
		return 0
	}
	// linesOf are the lines of pids from seq on: events from seq on, and
	// the reports of images that began there or later (an exec that picks
	// a process does not pick the image it ends).
	linesOf := func(lines []map[string]any, from int, pids ...int) []string {
		var out []string
		for _, l := range lines {
			seq := num(l["seq"])
			if l["type"] == "report" {
				seq = num(l["exec_seq"])
			}
			if l["type"] != "summary" && seq >= from && slices.Contains(pids, num(l["pid"])) {
				b, _ := json.Marshal(l)
				out = append(out, string(b))
			}
		}
		return out
	}
	for _, c := range []struct {
		args []string
		pids []int // the processes the filter must pick
		from int   // the seq they are picked from
	}{
		{[]string{"--pid", strconv.Itoa(f.fixture)}, []int{f.fixture}, 0},
		{[]string{"--comm", "hint_squeeze"}, []int{f.fixture}, execSeq(f.fixture, "hint_squeeze")},
		{[]string{"--pid", strconv.Itoa(f.subshell)}, []int{f.subshell, f.cmdsub}, 0},
		{[]string{"--comm", "true"}, []int{f.bash}, execSeq(f.bash, "true")},
		{[]string{"--pid", strconv.Itoa(f.bash)}, []int{f.bash, f.fixture, f.subshell, f.cmdsub}, 0},
		{[]string{"--pid", "1"}, nil, 0}, // not in the recording
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			res := replayInProcess(append([]string{"-r", file, "--format", "json"}, c.args...)...)
			if res.code != 0 {
				t.Fatalf("exit %d\n%s", res.code, res.stderr)
			}
			lines := jsonLines(t, res.stdout)
			var other []string
			for _, l := range lines {
				if p := num(l["pid"]); l["type"] != "summary" && !slices.Contains(c.pids, p) {
					other = append(other, fmt.Sprint(l["type"], " pid ", p))
				}
			}
			if len(other) > 0 {
				t.Errorf("lines of processes not picked: %v", other)
			}
			got, want := linesOf(lines, 0, c.pids...), linesOf(all, c.from, c.pids...)
			if !slices.Equal(got, want) {
				t.Errorf("the picked processes' lines differ from the full replay's (%d vs %d lines):\n%s",
					len(got), len(want), firstDiff(strings.Join(want, "\n"), strings.Join(got, "\n")))
			}
			if len(c.pids) > 0 && len(got) == 0 {
				t.Errorf("no lines for pids %v", c.pids)
			}
		})
	}
}

// Every line of every committed recording's JSON replay is a JSON object
// with "type" first.
func TestReplayJSONLines(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(recordingsDir, "*.mmt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no committed recordings")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			res := replayInProcess("-r", file, "--format", "json")
			if res.code != 0 {
				t.Fatalf("exit %d\n%s", res.code, res.stderr)
			}
			lines := jsonLines(t, res.stdout)
			types := map[string]int{}
			for _, l := range lines {
				types[l["type"].(string)]++
			}
			if types["exec"] == 0 || types["report"] == 0 || types["summary"] != 1 {
				t.Errorf("line types %v: want exec and report lines and one summary", types)
			}
			if last := lines[len(lines)-1]["type"]; last != "summary" {
				t.Errorf("last line is %v, not the summary", last)
			}
		})
	}
}

// Same input, same output: two replays of one recording are identical,
// summary included. The summary's duration must come from the recording
// (its time span), not from how long the replay took.
func TestReplayTwiceIsIdentical(t *testing.T) {
	file := recordingFile(t, "hint_squeeze32")
	a := replayInProcess("-r", file, "--format", "json")
	b := replayInProcess("-r", file, "--format", "json")
	if a.code != 0 || b.code != 0 {
		t.Fatalf("exit %d, %d\n%s%s", a.code, b.code, a.stderr, b.stderr)
	}
	if a.stdout != b.stdout {
		t.Errorf("two replays of %s differ:\n%s", file, firstDiff(a.stdout, b.stdout))
	}
}

// frames lists the file offsets of the frames of a recording, walking the
// format that internal/record documents (doc.go): a preamble (magic,
// version, header length n, header, CRC) and frames of 8+p+4 bytes.
func frames(t *testing.T, b []byte) []int {
	t.Helper()
	const magicLen = 12
	if len(b) < magicLen+8 {
		t.Fatal("recording too short")
	}
	off := magicLen + 8 + int(binary.LittleEndian.Uint32(b[magicLen+4:])) + 4
	var offs []int
	for off+8 <= len(b) {
		if b[off] != 0xE5 || b[off+1] != 0x7A {
			t.Fatalf("no frame marker at offset %d", off)
		}
		offs = append(offs, off)
		off += 8 + int(binary.LittleEndian.Uint32(b[off+4:])) + 4
	}
	if off != len(b) {
		t.Fatalf("last frame runs to %d, past the end %d", off, len(b))
	}
	return offs
}

// event is an event line of a JSON replay: its seq, and what identifies
// it apart from the seq (which the consumer assigns).
type event struct {
	seq int
	key string // kernel time, type, pid
}

func eventLines(lines []map[string]any) []event {
	var evs []event
	for _, l := range lines {
		if s := num(l["seq"]); s > 0 && l["type"] != "report" {
			evs = append(evs, event{s, fmt.Sprint(l["time_ns"], " ", l["type"], " ", l["pid"])})
		}
	}
	return evs
}

func keys(evs []event) []string {
	var k []string
	for _, e := range evs {
		k = append(k, e.key)
	}
	return k
}

// damaged is a recording with damage done to it, and what replay must say.
type damaged struct {
	name string
	data []byte   // nil: the file is not created (missing)
	dir  bool     // the path is a directory
	code int      // exit status
	says []string // regexps stderr must match
}

// damage makes the damaged variants of the recording b.
func damage(t *testing.T, b []byte) []damaged {
	t.Helper()
	offs := frames(t, b)
	cut := len(b) * 2 / 3
	cutFrame := 0 // the frame the cut falls in, or cut if it falls between two
	for _, o := range offs {
		if o <= cut {
			cutFrame = o
		}
	}
	cutSays := fmt.Sprintf(`warning: file ends mid-record at offset %d `, cutFrame)
	if cutFrame == cut {
		cutSays = fmt.Sprintf(`warning: recording ends at offset %d without its end marker`, cut)
	}
	mid := offs[len(offs)/2]
	flipped := bytes.Clone(b)
	for i := mid + 8; i < mid+12; i++ { // the payload's first bytes
		flipped[i] ^= 0xff
	}
	newer := bytes.Clone(b)
	binary.LittleEndian.PutUint32(newer[12:], 2)
	garbage := make([]byte, 3000)
	for i := range garbage {
		garbage[i] = byte(i*7919 + i>>3)
	}
	return []damaged{
		{name: "cut", data: b[:cut], code: 0, says: []string{cutSays}},
		{name: "flipped", data: flipped, code: 0, says: []string{
			fmt.Sprintf(`warning: record at offset %d: checksum mismatch, skipped`, mid)}},
		{name: "empty", data: []byte{}, code: 1, says: []string{`^mmtrace: [^\n]*empty file, not an mmtrace recording\n$`}},
		{name: "garbage", data: garbage, code: 1, says: []string{`^mmtrace: [^\n]*not an mmtrace recording\n$`}},
		{name: "header-only", data: b[:offs[0]-2], code: 1, says: []string{`^mmtrace: [^\n]*recording header is cut short[^\n]*\n$`}},
		{name: "newer", data: newer, code: 1, says: []string{`^mmtrace: [^\n]*recorded by a newer mmtrace \(format 2\)[^\n]*\n$`}},
		{name: "missing", code: 1, says: []string{`^mmtrace: [^\n]*no such file or directory\n$`}},
		{name: "directory", dir: true, code: 1, says: []string{`^mmtrace: [^\n]*is a directory, not an mmtrace recording\n$`}},
	}
}

// place writes a damaged variant where replay can read it.
func (d damaged) place(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), d.name+".mmt")
	switch {
	case d.dir:
		if err := os.Mkdir(path, 0o755); err != nil {
			t.Fatal(err)
		}
	case d.data != nil:
		if err := os.WriteFile(path, d.data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// checkDamage checks one damaged replay's status and stderr, and, for the
// damage replay steps over, its events against the intact replay's.
func checkDamage(t *testing.T, d damaged, intact []event, code int, stdout, stderr string) {
	t.Helper()
	if code != d.code {
		t.Errorf("exit %d, want %d\nstderr:\n%s", code, d.code, stderr)
	}
	if strings.Contains(stderr, "panic") || strings.Contains(stderr, "goroutine") {
		t.Errorf("stderr shows a panic:\n%s", stderr)
	}
	for _, re := range d.says {
		if !regexp.MustCompile(re).MatchString(stderr) {
			t.Errorf("stderr does not match %q:\n%s", re, stderr)
		}
	}
	if d.code != 0 {
		if stdout != "" {
			t.Errorf("output for a refused file:\n%s", stdout)
		}
		return
	}
	evs := eventLines(jsonLines(t, stdout))
	got, want := keys(evs), keys(intact)
	switch d.name {
	case "cut": // a prefix of the events, not all of them
		if len(got) == 0 || len(got) >= len(want) || !slices.Equal(got, want[:len(got)]) {
			t.Errorf("cut replay has %d events, want a proper prefix of the %d intact ones", len(got), len(want))
		}
	case "flipped": // one record lost, the events after it replayed
		missing := 0
		for _, k := range want {
			if !slices.Contains(got, k) {
				missing++
			}
		}
		if missing > 1 || len(got) < len(want)-1 || got[len(got)-1] != want[len(want)-1] {
			t.Errorf("flipped replay: %d of %d events, %d missing, last %s of %s; want at most one missing and replay to go on",
				len(got), len(want), missing, got[len(got)-1], want[len(want)-1])
		}
		// The events keep their numbers: the seq in a report of a
		// damaged copy means the same event as in the intact one.
		seq := map[string]int{}
		for _, e := range intact {
			seq[e.key] = e.seq
		}
		renumbered := 0
		for _, e := range evs {
			if seq[e.key] != e.seq {
				renumbered++
			}
		}
		if renumbered > 0 {
			t.Errorf("%d events after the damaged record got other seq numbers than in the intact replay", renumbered)
		}
	}
}

// Damage on a real recording: replay steps over what it can and refuses
// the rest with one sentence, exit 1, never a panic.
func TestReplayDamage(t *testing.T) {
	for _, name := range []string{"hint_squeeze32", "family"} {
		b, err := os.ReadFile(recordingFile(t, name))
		if err != nil {
			t.Fatal(err)
		}
		intact := replayInProcess("-r", recordingFile(t, name), "--format", "json")
		intactEvents := eventLines(jsonLines(t, intact.stdout))
		for _, d := range damage(t, b) {
			t.Run(name+"/"+d.name, func(t *testing.T) {
				res := replayInProcess("-r", d.place(t), "--format", "json")
				checkDamage(t, d, intactEvents, res.code, res.stdout, res.stderr)
			})
		}
	}
}

// Frames of a kind this version does not know (from a newer mmtrace) are
// skipped and counted: the replay is the intact one, and stderr says how
// many were skipped.
func TestReplayUnknownKinds(t *testing.T) {
	file := recordingFile(t, "hint_squeeze32")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	offs := frames(t, b)
	unknown := func(kind byte) []byte {
		f := []byte{0xE5, 0x7A, kind, 0}
		f = binary.LittleEndian.AppendUint32(f, 3)
		f = append(f, 1, 2, 3)
		return binary.LittleEndian.AppendUint32(f, crc32.Checksum(f[2:], crc32.MakeTable(crc32.Castagnoli)))
	}
	at := offs[len(offs)/2]
	var out []byte
	out = append(out, b[:at]...)
	out = append(out, unknown(9)...)
	out = append(out, unknown(9)...)
	out = append(out, b[at:]...)
	path := filepath.Join(t.TempDir(), "unknown.mmt")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}

	res := replayInProcess("-r", path, "--format", "json")
	want := replayInProcess("-r", file, "--format", "json")
	if res.code != 0 {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	if maskDuration(res.stdout) != maskDuration(want.stdout) {
		t.Errorf("replay with unknown frames differs from the intact one:\n%s", firstDiff(want.stdout, res.stdout))
	}
	if !strings.Contains(res.stderr, fmt.Sprintf("record at offset %d: unknown kind 9", at)) {
		t.Errorf("stderr does not name the first unknown frame at offset %d:\n%s", at, res.stderr)
	}
	if !regexp.MustCompile(`(?i)\b2\b[^\n]*unknown|unknown[^\n]*\b2\b`).MatchString(res.stderr) {
		t.Errorf("stderr does not count the 2 skipped frames of unknown kinds:\n%s", res.stderr)
	}
}
