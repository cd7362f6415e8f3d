package main

// End-to-end tests: the built binary traces real programs on the running
// kernel, and its reports are checked against what those programs saw of
// themselves (/proc/self/maps just before exit).

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mmtrace/mmtrace/internal/hostabi"
	"github.com/mmtrace/mmtrace/internal/kerneltest"
	"github.com/mmtrace/mmtrace/internal/layout"
	"github.com/mmtrace/mmtrace/internal/render"
)

// The report line as the JSON schema (internal/render/schema.go) defines
// it, so that these tests and the schema cannot drift apart.
type (
	jsonReport  = render.ReportLine
	jsonMapping = render.VMAJSON
)

// scratchDirs are the temporary directories the run made; TestMain
// removes them.
var scratchDirs []string

func TestMain(m *testing.M) {
	code := m.Run()
	for _, d := range scratchDirs {
		os.RemoveAll(d)
	}
	os.Exit(code)
}

var (
	buildOnce   sync.Once
	mmtraceBin  string
	fixtureDir  string
	errBuilding error
)

// binaries builds mmtrace (or takes $MMTRACE_BIN, as inside test VMs) and
// the C fixtures, once per test run.
func binaries(t *testing.T) (string, string) {
	t.Helper()
	kerneltest.RequireRoot(t)
	buildOnce.Do(func() {
		mmtraceBin = os.Getenv("MMTRACE_BIN")
		if mmtraceBin == "" {
			dir, err := os.MkdirTemp("", "mmtrace-e2e")
			if err != nil {
				errBuilding = err
				return
			}
			scratchDirs = append(scratchDirs, dir)
			mmtraceBin = filepath.Join(dir, "mmtrace")
			out, err := exec.Command("go", "build", "-o", mmtraceBin, ".").CombinedOutput()
			if err != nil {
				errBuilding = fmt.Errorf("go build: %v\n%s", err, out)
				return
			}
		}
		fixtureDir, errBuilding = buildFixtures()
	})
	if errBuilding != nil {
		t.Fatal(errBuilding)
	}
	return mmtraceBin, fixtureDir
}

// buildFixtures compiles every testdata/fixtures/*.c as NAME (-m64) and
// NAME32 (-m32) into $MMTRACE_FIXTURES, or a new temporary directory. In
// test VMs, where gcc is 50 times slower, `make vmtest` builds them on the
// host first (TestBuildFixtures) and the guest finds them there.
func buildFixtures() (string, error) {
	dir := os.Getenv("MMTRACE_FIXTURES")
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "mmtrace-fixtures"); err != nil {
			return "", err
		}
		scratchDirs = append(scratchDirs, dir)
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	srcs, _ := filepath.Glob("testdata/fixtures/*.c")
	for _, src := range srcs {
		name := strings.TrimSuffix(filepath.Base(src), ".c")
		for _, v := range []struct{ suffix, flag string }{{"", "-m64"}, {"32", "-m32"}} {
			bin := filepath.Join(dir, name+v.suffix)
			if upToDate(bin, src, "testdata/fixtures/fixture.h") {
				continue
			}
			out, err := exec.Command("gcc", v.flag, "-O1", "-Wall", "-Werror", "-o", bin, src).CombinedOutput()
			if err != nil {
				return "", fmt.Errorf("gcc %s %s (32-bit fixtures need gcc-multilib): %v\n%s", v.flag, src, err, out)
			}
		}
	}
	data := filepath.Join(dir, "data")
	if _, err := os.Stat(data); err != nil {
		if err := os.WriteFile(data, bytes.Repeat([]byte("mmtrace\n"), 8192), 0o644); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// need32 skips t when the host's kernel runs no 32-bit programs (IA-32
// emulation off: i386 execve gives ENOEXEC), even under CI: the host
// cannot run the case, and `make vmtest` runs it on kernels that can.
// abi is a fixture suffix ("32") or an ABI name ("i386"); others pass.
// tracingPaths are the ways mmtrace can trace memory calls that the
// tests which compare them run: both, or those MMTRACE_TEST_PATHS names
// (.ci/run tests only the lock path on 7.3, where the syscall path can
// still lose a record now and then: README, Kernel support).
func tracingPaths() []string {
	if v := os.Getenv("MMTRACE_TEST_PATHS"); v != "" {
		return strings.Fields(v)
	}
	return []string{"syscall", "lock"}
}

func need32(t *testing.T, abi string) {
	t.Helper()
	if abi != "32" && abi != "i386" {
		return
	}
	if ok, err := hostabi.CanRunIA32(); !ok {
		t.Skipf("%v; the 32-bit cases run in the kernel VMs (make vmtest)", err)
	}
}

// upToDate reports whether bin exists and is newer than its sources.
func upToDate(bin string, srcs ...string) bool {
	b, err := os.Stat(bin)
	if err != nil {
		return false
	}
	for _, src := range srcs {
		if s, err := os.Stat(src); err != nil || s.ModTime().After(b.ModTime()) {
			return false
		}
	}
	return true
}

// TestBuildFixtures builds the C fixtures (no root needed): a compile
// error in one is a test failure on any machine.
func TestBuildFixtures(t *testing.T) {
	if _, err := buildFixtures(); err != nil {
		t.Fatal(err)
	}
}

type runResult struct {
	stdout, stderr string
	code           int
	reports        []jsonReport
	lines          []map[string]any
}

// run runs mmtrace with args and env added to its environment.
func run(t *testing.T, env []string, args ...string) runResult {
	t.Helper()
	bin, _ := binaries(t)
	jsonOut := ""
	if slices.Contains(args, "json") {
		// Rendered output to a file, apart from the traced command's own.
		jsonOut = filepath.Join(t.TempDir(), "out.json")
		args = append([]string{"--output", jsonOut}, args...)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := runResult{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		res.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run mmtrace: %v", err)
	}
	if jsonOut != "" {
		out, err := os.ReadFile(jsonOut)
		if err != nil {
			t.Fatalf("no JSON output: %v\n%s", err, res.stderr)
		}
		res.lines, res.reports = parseOutput(t, out)
	}
	return res
}

// parseOutput reads mmtrace's JSON lines, and the report lines again as
// jsonReports.
func parseOutput(t *testing.T, data []byte) (lines []map[string]any, reports []jsonReport) {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("output line is not JSON: %v\n%s", err, sc.Text())
		}
		lines = append(lines, m)
		if m["type"] == "report" {
			// Strict: a field the schema lacks fails here.
			var r jsonReport
			dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&r); err != nil {
				t.Fatalf("report line: %v\n%s", err, sc.Text())
			}
			reports = append(reports, r)
		}
	}
	return lines, reports
}

// oneReport is the single report that matches, or a fatal error.
func oneReport(t *testing.T, reports []jsonReport, what string, match func(*jsonReport) bool) jsonReport {
	t.Helper()
	var found []jsonReport
	for i := range reports {
		if match(&reports[i]) {
			found = append(found, reports[i])
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one report for %s, got %d", what, len(found))
	}
	return found[0]
}

func (r runResult) report(t *testing.T, comm string) jsonReport {
	t.Helper()
	if r.code != 0 && len(r.reports) == 0 {
		t.Logf("stderr:\n%s", r.stderr)
	}
	return oneReport(t, r.reports, comm, func(rep *jsonReport) bool { return rep.Comm == comm })
}

func hexval[T string | render.Hex](t *testing.T, x T) uint64 {
	t.Helper()
	s, ok := any(x).(string)
	if !ok {
		return uint64(any(x).(render.Hex))
	}
	v, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 64)
	if err != nil {
		t.Fatalf("not a hex address: %q", s)
	}
	return v
}

// readMaps reads a /proc/PID/maps copy, normalised like the report.
func readMaps(t *testing.T, path string) []layout.Mapping {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("the fixture left no maps: %v", err)
	}
	defer f.Close()
	maps, err := layout.ParseProcMaps(f)
	if err != nil {
		t.Fatal(err)
	}
	var kept []layout.Mapping
	for _, m := range maps {
		if m.Path != "[vsyscall]" { // the gate page: not a VMA of the process
			kept = append(kept, m)
		}
	}
	return layout.MergeAdjacent(kept)
}

// sameLayout compares the report's final layout with the process's own
// view of itself. The stack is compared by its top only: it grows on page
// faults, which no syscall reports.
func sameLayout(t *testing.T, rep jsonReport, mapsPath string) {
	t.Helper()
	want := readMaps(t, mapsPath)
	var got []layout.Mapping
	for _, v := range rep.VMAs {
		got = append(got, layout.Mapping{Start: hexval(t, v.Start), End: hexval(t, v.End), Prot: v.Prot, Path: v.Path})
	}
	got = layout.MergeAdjacent(got)
	line := func(m layout.Mapping) string {
		return fmt.Sprintf("%x-%x %s %s", m.Start, m.End, m.Prot, m.Path)
	}
	same := func(a, b layout.Mapping) bool {
		if a.Path == "[stack]" && b.Path == "[stack]" {
			return a.End == b.End && a.Prot == b.Prot
		}
		return a.Start == b.Start && a.End == b.End && a.Prot == b.Prot && a.Path == b.Path
	}
	n := max(len(got), len(want))
	var diffs []string
	for i := 0; i < n; i++ {
		var g, w layout.Mapping
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if !same(g, w) {
			diffs = append(diffs, fmt.Sprintf("  #%d mmtrace: %-60s /proc: %s", i, line(g), line(w)))
		}
	}
	if len(diffs) > 0 {
		if len(diffs) > 12 {
			diffs = append(diffs[:12], fmt.Sprintf("  ... %d more", len(diffs)-12))
		}
		t.Errorf("final layout differs from /proc/self/maps (%d vs %d ranges):\n%s", len(got), len(want), strings.Join(diffs, "\n"))
	}
}

// A file mapped at a hint just above the heap, then a brk that cannot fit:
// the report names the mapping, its placement and the failure it caused.
func TestHintSqueeze(t *testing.T) {
	_, dir := binaries(t)
	maps := filepath.Join(t.TempDir(), "maps")
	res := run(t, []string{"MAPS_OUT=" + maps}, "--format", "json", "--", filepath.Join(dir, "hint_squeeze"), "/etc/passwd")
	if res.code != 0 {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	rep := res.report(t, "hint_squeeze")
	var passwd *layout.Mapping
	for _, m := range readMaps(t, maps) {
		if m.Path == "/etc/passwd" {
			passwd = &m
		}
	}
	if passwd == nil {
		t.Fatal("the fixture's maps have no /etc/passwd mapping")
	}
	sq := rep.Squeezer
	if sq == nil {
		t.Fatalf("no squeezer in %+v", rep)
	}
	if hexval(t, sq.Start) != passwd.Start || sq.Path != "/etc/passwd" || sq.Placement != "hint" {
		t.Errorf("squeezer %+v, want /etc/passwd at %#x placed by hint", sq, passwd.Start)
	}
	if len(rep.BrkFailures) != 1 {
		t.Fatalf("brk failures %+v, want one", rep.BrkFailures)
	}
	f := rep.BrkFailures[0]
	if f.BlockedBy == nil || hexval(t, *f.BlockedBy) != passwd.Start {
		t.Errorf("brk failure %+v, want blocked by %#x", f, passwd.Start)
	}
	if rep.ABI != "x86_64" || rep.Layout != "flexible" {
		t.Errorf("abi %s layout %s", rep.ABI, rep.Layout)
	}
	sameLayout(t, rep, maps)
}

// A healthy bash: flexible layout, no squeezer, more than a TiB of room.
func TestHealthyBash(t *testing.T) {
	res := run(t, nil, "--format", "json", "--", "bash", "-c", "echo hi")
	if res.code != 0 {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	if !strings.Contains(res.stdout, "hi\n") {
		t.Errorf("bash's own output is missing")
	}
	if !strings.Contains(res.stderr, "mmtrace: tracing ") {
		t.Errorf("no 'mmtrace: tracing' line on stderr:\n%s", res.stderr)
	}
	rep := res.report(t, "bash")
	if rep.Layout != "flexible" || rep.Squeezer != nil || rep.BrkHeadroom < 1<<40 || rep.ABI != "x86_64" {
		t.Errorf("report: layout %s squeezer %+v headroom %d abi %s", rep.Layout, rep.Squeezer, rep.BrkHeadroom, rep.ABI)
	}
	if rep.Exe != "/usr/bin/bash" && rep.Exe != "/bin/bash" {
		t.Errorf("exe %q", rep.Exe)
	}
}

// Thousands of seeded calls: the model must equal /proc/self/maps.
func TestChurnMatchesProcMaps(t *testing.T) {
	_, dir := binaries(t)
	for _, abi := range []string{"", "32"} {
		for _, seed := range []string{"1", "2", "3"} {
			t.Run("churn"+abi+"/seed"+seed, func(t *testing.T) {
				need32(t, abi)
				maps := filepath.Join(t.TempDir(), "maps")
				res := run(t, []string{"MAPS_OUT=" + maps}, "-v", "--format", "json", "--",
					filepath.Join(dir, "churn"+abi), seed, "3000", filepath.Join(dir, "data"))
				if res.code != 0 {
					t.Fatalf("exit %d\n%s", res.code, res.stderr)
				}
				rep := res.report(t, "churn"+abi)
				wantABI := map[string]string{"": "x86_64", "32": "i386"}[abi]
				if rep.ABI != wantABI {
					t.Errorf("abi %s, want %s", rep.ABI, wantABI)
				}
				if rep.Uncertain || rep.LostEvents != 0 {
					t.Errorf("lost %d events (notes %q); stderr:\n%s", rep.LostEvents, rep.Notes, res.stderr)
				}
				sameLayout(t, rep, maps)
			})
		}
	}
}

// Kernels before 6.7 cannot walk VMAs at exec; mmtrace reads them from
// /proc instead. Force that path here so it is tested on every kernel.
func TestChurnWithExecVMAsFromProc(t *testing.T) {
	_, dir := binaries(t)
	for _, abi := range []string{"", "32"} {
		t.Run("churn"+abi, func(t *testing.T) {
			need32(t, abi)
			maps := filepath.Join(t.TempDir(), "maps")
			res := run(t, []string{"MAPS_OUT=" + maps}, "--no-exec-vmas", "--format", "json", "--",
				filepath.Join(dir, "churn"+abi), "4", "2000", filepath.Join(dir, "data"))
			if res.code != 0 {
				t.Fatalf("exit %d\n%s", res.code, res.stderr)
			}
			if !strings.Contains(res.stderr, "/proc/PID/maps") {
				t.Errorf("stderr does not say where the exec-time mappings came from:\n%s", res.stderr)
			}
			sameLayout(t, res.report(t, "churn"+abi), maps)
		})
	}
}

// --check: 3 when squeezed, else the command's own status.
func TestCheckExitStatus(t *testing.T) {
	_, dir := binaries(t)
	for _, c := range []struct {
		cmd  []string
		want int
	}{
		{[]string{filepath.Join(dir, "hint_squeeze"), "/etc/passwd"}, 3},
		{[]string{"bash", "-c", "true"}, 0},
		{[]string{"sh", "-c", "exit 7"}, 7},
	} {
		res := run(t, nil, append([]string{"--check", "--"}, c.cmd...)...)
		if res.code != c.want {
			t.Errorf("--check -- %s: exit %d, want %d\n%s", strings.Join(c.cmd, " "), res.code, c.want, res.stderr)
		}
		if c.want == 3 && !strings.Contains(res.stderr, "hint_squeeze") {
			t.Errorf("--check names no failing image on stderr:\n%s", res.stderr)
		}
	}
}

// Ctrl-C: mmtrace drains, reports the processes still alive (ended
// "stopped"), writes the summary and exits 0.
func TestInterruptReportsLiveProcesses(t *testing.T) {
	bin, _ := binaries(t)
	out := filepath.Join(t.TempDir(), "out.json")
	cmd := exec.Command(bin, "--comm", "sleep", "--format", "json", "--output", out)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	// Wait until attached: a stderr line says so (after notes about
	// what this kernel lacks, if any).
	rd := bufio.NewReader(stderr)
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("no 'mmtrace: tracing' line on stderr: %v", err)
		}
		if strings.HasPrefix(line, "mmtrace: tracing comm sleep") {
			break
		}
		if !strings.HasPrefix(line, "mmtrace: note: ") {
			t.Fatalf("unexpected stderr line %q", line)
		}
	}
	go io.Copy(io.Discard, rd)
	sleeper := exec.Command("sleep", "30")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer sleeper.Process.Kill()
	// The exec must have reached mmtrace before the interrupt; poll the
	// output, which is flushed after every drain of the ring.
	for i := 0; ; i++ {
		b, _ := os.ReadFile(out)
		if bytes.Contains(b, []byte(`"type":"exec"`)) {
			break
		}
		if i == 500 {
			t.Fatalf("no exec event for sleep in the output:\n%s", b)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("mmtrace after Ctrl-C: %v", err)
	}
	b, _ := os.ReadFile(out)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var rep jsonReport
	for _, l := range lines {
		if strings.HasPrefix(l, `{"type":"report"`) {
			if err := json.Unmarshal([]byte(l), &rep); err != nil {
				t.Fatal(err)
			}
		}
	}
	if rep.Comm != "sleep" || rep.PID != uint32(sleeper.Process.Pid) || !strings.Contains(string(b), `"ended":"stopped"`) {
		t.Errorf("report %+v", rep)
	}
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, `{"type":"summary"`) {
		t.Errorf("last line is not the summary: %s", last)
	}
}

// --no-ia32 traces 64-bit syscalls through syscalls:* alone: 64-bit
// verdicts are unchanged; 32-bit images are reported, but uncertain.
func TestNoIA32(t *testing.T) {
	_, dir := binaries(t)
	res := run(t, nil, "--no-ia32", "--format", "json", "--", filepath.Join(dir, "hint_squeeze"), "/etc/passwd")
	rep := res.report(t, "hint_squeeze")
	if rep.Squeezer == nil || rep.Squeezer.Placement != "hint" || len(rep.BrkFailures) != 1 || rep.Uncertain {
		t.Errorf("64-bit under --no-ia32: squeezer %+v failures %+v uncertain %v", rep.Squeezer, rep.BrkFailures, rep.Uncertain)
	}
	need32(t, "32")
	res = run(t, nil, "--no-ia32", "--format", "json", "--", filepath.Join(dir, "hint_squeeze32"), "/etc/passwd")
	rep = res.report(t, "hint_squeeze32")
	if !rep.Uncertain || rep.ABI != "i386" {
		t.Errorf("32-bit under --no-ia32: uncertain %v abi %s, want an uncertain i386 report", rep.Uncertain, rep.ABI)
	}
	if !strings.Contains(strings.Join(rep.Notes, "\n"), "--no-ia32") {
		t.Errorf("the report does not say why it is uncertain: %q", rep.Notes)
	}
}

// On a kernel that runs no 32-bit programs mmtrace takes the 64-bit-only
// tracepoints by itself and says so once; elsewhere it keeps 32-bit
// coverage and says nothing of it.
func TestNoIA32ChosenByKernel(t *testing.T) {
	_, dir := binaries(t)
	res := run(t, nil, "--format", "json", "--", filepath.Join(dir, "hint_squeeze"), "/etc/passwd")
	ok, _ := hostabi.CanRunIA32()
	noted := strings.Count(res.stderr, "no 32-bit process can exist")
	switch {
	case !ok && noted != 1:
		t.Errorf("no-32-bit kernel: the note appears %d times, want once:\n%s", noted, res.stderr)
	case ok && noted != 0:
		t.Errorf("the kernel runs 32-bit programs, yet mmtrace says none can exist:\n%s", res.stderr)
	}
	if rep := res.report(t, "hint_squeeze"); rep.Uncertain || rep.Squeezer == nil {
		t.Errorf("64-bit verdict changed: squeezer %+v uncertain %v", rep.Squeezer, rep.Uncertain)
	}
}
