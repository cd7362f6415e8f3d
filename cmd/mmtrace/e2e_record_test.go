package main

// End-to-end tests of -w and -r (root): a live run and the replay of its
// recording print the same lines; damage to a fresh recording is stepped
// over or refused in one sentence; a recording whose mmtrace was killed
// with SIGKILL replays up to within a second of the kill.

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mmtrace/mmtrace/internal/record"
)

// runBin runs the built mmtrace with args and returns its exit status and
// output.
func runBin(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	bin, _ := binaries(t)
	return runCmd(t, exec.Command(bin, args...))
}

// runCmd runs mmtrace's command and returns its exit status and output.
func runCmd(t *testing.T, cmd *exec.Cmd) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitCode(), stdout.String(), stderr.String()
	case err != nil:
		t.Fatalf("run mmtrace: %v", err)
	}
	return 0, stdout.String(), stderr.String()
}

// readLines reads the lines of a file.
func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines
}

// summaryDuration is the one field a live run and its replay may differ
// in: how long each took.
var summaryDuration = regexp.MustCompile(`,"duration_ns":-?[0-9]+`)

// A live run with -w and the replay of its recording print the same
// lines, byte for byte: the events, the reports, and the summary but for
// its duration.
func TestRecordReplaySameLines(t *testing.T) {
	_, dir := binaries(t)
	for _, c := range []struct {
		name    string
		command []string
		comm    string // the image whose report must be there
		preMode os.FileMode
	}{
		{"hint_squeeze32", []string{filepath.Join(dir, "hint_squeeze32"), "/etc/passwd"}, "hint_squeeze32", 0},
		{"hint_squeeze", []string{filepath.Join(dir, "hint_squeeze"), "/etc/passwd"}, "hint_squeeze", 0},
		// An existing, world-readable file: -w makes it private.
		{"bash", []string{"bash", "-c", "echo hi"}, "bash", 0o644},
	} {
		t.Run(c.name, func(t *testing.T) {
			if strings.HasSuffix(c.name, "32") {
				need32(t, "32")
			}
			tmp := t.TempDir()
			rec, live, replayed := filepath.Join(tmp, "rec.mmt"), filepath.Join(tmp, "live.jsonl"), filepath.Join(tmp, "replay.jsonl")
			if c.preMode != 0 {
				if err := os.WriteFile(rec, []byte("old"), c.preMode); err != nil {
					t.Fatal(err)
				}
			}
			code, _, stderr := runBin(t, append([]string{"-w", rec, "--format", "json", "--output", live, "--"}, c.command...)...)
			if code != 0 {
				t.Fatalf("live run: exit %d\n%s", code, stderr)
			}
			fi, err := os.Stat(rec)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("recording has mode %v, want 0600 (argv can carry secrets)", fi.Mode().Perm())
			}
			code, _, stderr = runBin(t, "-r", rec, "--format", "json", "--output", replayed)
			if code != 0 {
				t.Fatalf("replay: exit %d\n%s", code, stderr)
			}
			if stderr != "" {
				t.Errorf("replay of an intact recording warns:\n%s", stderr)
			}

			a, b := readLines(t, live), readLines(t, replayed)
			if len(a) != len(b) {
				t.Errorf("live run printed %d lines, its replay %d", len(a), len(b))
			}
			reports := 0
			for i := range min(len(a), len(b)) {
				la, lb := a[i], b[i]
				if strings.HasPrefix(la, `{"type":"summary"`) {
					la, lb = summaryDuration.ReplaceAllString(la, ""), summaryDuration.ReplaceAllString(lb, "")
				}
				if la != lb {
					t.Errorf("line %d differs\nlive:   %s\nreplay: %s", i+1, la, lb)
				}
				if strings.HasPrefix(la, `{"type":"report"`) && strings.Contains(la, `"comm":"`+c.comm+`"`) {
					reports++
				}
			}
			if reports != 1 {
				t.Errorf("%d reports of %s, want 1", reports, c.comm)
			}
			if last := b[len(b)-1]; !strings.HasPrefix(last, `{"type":"summary"`) {
				t.Errorf("last line is not the summary: %s", last)
			}
		})
	}
}

// Damage to a fresh recording, through the binary: the same cases as
// TestReplayDamage on the committed recordings, plus the process's own
// exit status and no panic.
func TestRecordDamage(t *testing.T) {
	_, dir := binaries(t)
	rec := filepath.Join(t.TempDir(), "rec.mmt")
	code, _, stderr := runBin(t, "-w", rec, "--format", "json", "--output", os.DevNull, "--", filepath.Join(dir, "hint_squeeze"), "/etc/passwd")
	if code != 0 {
		t.Fatalf("live run: exit %d\n%s", code, stderr)
	}
	b, err := os.ReadFile(rec)
	if err != nil {
		t.Fatal(err)
	}
	code, intact, stderr := runBin(t, "-r", rec, "--format", "json")
	if code != 0 {
		t.Fatalf("replay: exit %d\n%s", code, stderr)
	}
	intactEvents := eventLines(jsonLines(t, intact))
	for _, d := range damage(t, b) {
		t.Run(d.name, func(t *testing.T) {
			code, stdout, stderr := runBin(t, "-r", d.place(t), "--format", "json")
			checkDamage(t, d, intactEvents, code, stdout, stderr)
		})
	}
}

// mmtrace killed with SIGKILL while recording: the recording replays, warns
// that its end marker is missing, and holds the events up to within a
// second of the kill (the writer hands its buffer to the kernel at least
// once a second; this allows 1.2 s for the drain and flush timers).
func TestRecordSurvivesKill9(t *testing.T) {
	bin, _ := binaries(t)
	rec := filepath.Join(t.TempDir(), "rec.mmt")
	// A steady stream of execs and their mmaps for longer than the test
	// waits; bounded, in case the cleanup below misses it.
	cmd := exec.Command(bin, "-w", rec, "--format", "json", "--output", os.DevNull, "--",
		"sh", "-c", "for i in $(seq 1 400); do /bin/true; sleep 0.02; done")
	// Its own process group, so the traced loop can be ended with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	defer func() {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		_ = cmd.Wait()
	}()

	// Wait for tracing to start, then let a few seconds of events and
	// flushes happen.
	sc := bufio.NewScanner(stderr)
	attached := false
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "mmtrace: tracing ") {
			attached = true
			break
		}
	}
	if !attached {
		t.Fatal("mmtrace never said it was tracing")
	}
	go func() { // keep the pipe drained
		for sc.Scan() {
		}
	}()
	// Long enough for several flushes (one a second) even in a slow VM.
	time.Sleep(4 * time.Second)

	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	killedAt := uint64(ts.Nano())
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("mmtrace was not killed by SIGKILL: %v", err)
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL) // the traced loop

	r, err := record.Open(rec)
	if err != nil {
		t.Fatalf("the killed recording does not open: %v", err)
	}
	h := r.Header()
	r.Close()

	code, stdout, errOut := runBin(t, "-r", rec, "--format", "json")
	if code != 0 {
		t.Fatalf("replay: exit %d\n%s", code, errOut)
	}
	if !strings.Contains(errOut, "without its end marker") && !strings.Contains(errOut, "ends mid-record") {
		t.Errorf("no warning about the missing end of the recording:\n%s", errOut)
	}
	var last uint64
	execs := 0
	for _, l := range jsonLines(t, stdout) {
		if v, ok := l["time_ns"].(float64); ok && uint64(v) > last {
			last = uint64(v)
		}
		if l["type"] == "exec" {
			execs++
		}
	}
	// A sanity check that the loop ran: an exec takes up to ~250 ms in a
	// software-emulated VM, so 4 s give a dozen or more.
	if execs < 5 {
		t.Errorf("only %d execs replayed from %.1f s of a loop of execs", execs, float64(killedAt-uint64(h.MonoBase))/1e9)
	}
	if last < uint64(h.MonoBase) {
		t.Fatalf("last event at %d is before the recording began (%d)", last, h.MonoBase)
	}
	const allowed = 1200 * time.Millisecond
	if gap := time.Duration(killedAt - last); killedAt < last || gap > allowed {
		t.Errorf("the last replayed event is %v before the kill, want at most %v (recording began %v before the kill)",
			gap, allowed, time.Duration(killedAt-uint64(h.MonoBase)))
	} else {
		t.Logf("last replayed event %v before the kill", gap)
	}
}
