package main

// End-to-end tests of issue 13's "never stuck" items: signals while
// mmtrace is blocked or busy, and --pid of a process with no address
// space. The time limits here are hang guards, not performance checks.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mmtrace/mmtrace/internal/kerneltest"
	"github.com/mmtrace/mmtrace/internal/record"
)

// hangGuard is how long a mmtrace that should end may take before the
// test calls it stuck: generous, on a busy 2-CPU machine.
const hangGuard = 20 * time.Second

// runGuarded runs mmtrace with args like run, but kills it (and fails
// the test) if it has not ended within hangGuard.
func runGuarded(t *testing.T, args ...string) runResult {
	t.Helper()
	bin, _ := binaries(t)
	cmd := exec.Command(bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return waitGuarded(t, cmd, &stdout, &stderr)
}

// waitGuarded waits for a started mmtrace, killing it after hangGuard.
func waitGuarded(t *testing.T, cmd *exec.Cmd, stdout, stderr *bytes.Buffer) runResult {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(hangGuard):
		cmd.Process.Kill()
		<-done
		t.Fatalf("mmtrace %q still running after %v: stuck", cmd.Args[1:], hangGuard)
	}
	var res runResult
	if stdout != nil {
		res.stdout = stdout.String()
	}
	if stderr != nil {
		res.stderr = stderr.String()
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		res.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run mmtrace: %v", err)
	}
	return res
}

// --pid of a kernel thread or a zombie: one sentence, exit 1, no
// made-up layout.
func TestE2EPIDWithoutAddressSpace(t *testing.T) {
	res := runGuarded(t, "--pid", "2")
	want := "mmtrace: pid 2 (kthreadd) is a kernel thread: it has no address space to trace\n"
	if res.code != 1 || res.stderr != want || res.stdout != "" {
		t.Errorf("--pid 2: exit %d, stderr %q, stdout %q; want exit 1 and %q", res.code, res.stderr, res.stdout, want)
	}
	pid := kerneltest.Zombie(t)
	res = runGuarded(t, "--pid", fmt.Sprint(pid))
	want = fmt.Sprintf("mmtrace: pid %d (true) is a zombie: it has exited and has no address space to trace\n", pid)
	if res.code != 1 || res.stderr != want || res.stdout != "" {
		t.Errorf("--pid of a zombie: exit %d, stderr %q, stdout %q; want exit 1 and %q", res.code, res.stderr, res.stdout, want)
	}
}

// running is a mmtrace started in the background whose stderr is
// watched line by line.
type running struct {
	t      *testing.T
	cmd    *exec.Cmd
	mu     sync.Mutex
	stderr bytes.Buffer
	stdout *os.File // a file: a pipe would keep Wait waiting for commands left running
	lines  chan string
	done   chan struct{} // stderr closed
}

// start starts mmtrace in a process group of its own, as a CI runner or
// timeout(1) would: a signal sent to it is then not also sent to the
// command by a terminal the test may run in.
func start(t *testing.T, stdin io.Reader, args ...string) *running {
	t.Helper()
	bin, _ := binaries(t)
	r := &running{t: t, cmd: exec.Command(bin, args...), lines: make(chan string, 100), done: make(chan struct{})}
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	r.cmd.Stdin = stdin
	out, err := os.Create(filepath.Join(t.TempDir(), "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { out.Close() })
	r.stdout, r.cmd.Stdout = out, out
	pipe, err := r.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.cmd.Process.Kill() })
	go func() {
		defer close(r.done)
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			r.mu.Lock()
			r.stderr.WriteString(sc.Text() + "\n")
			r.mu.Unlock()
			select {
			case r.lines <- sc.Text():
			default:
			}
		}
	}()
	return r
}

// waitFor waits for a stderr line starting with prefix.
func (r *running) waitFor(prefix string) {
	r.t.Helper()
	guard := time.After(hangGuard)
	for {
		select {
		case l := <-r.lines:
			if strings.HasPrefix(l, prefix) {
				return
			}
		case <-r.done:
			r.t.Fatalf("mmtrace ended without a line %q on stderr:\n%s", prefix, r.errText())
		case <-guard:
			r.t.Fatalf("no line %q on stderr after %v:\n%s", prefix, hangGuard, r.errText())
		}
	}
}

func (r *running) errText() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stderr.String()
}

// signal sends sig to mmtrace's own pid (not its process group).
func (r *running) signal(sig syscall.Signal) {
	r.t.Helper()
	if err := r.cmd.Process.Signal(sig); err != nil {
		r.t.Fatal(err)
	}
}

// wait waits for mmtrace to end, killing it after hangGuard.
func (r *running) wait() runResult {
	r.t.Helper()
	res := waitGuarded(r.t, r.cmd, nil, nil)
	<-r.done
	res.stderr = r.errText()
	b, err := os.ReadFile(r.stdout.Name())
	if err != nil {
		r.t.Fatal(err)
	}
	res.stdout = string(b)
	return res
}

// Run mode: SIGTERM or SIGINT sent to mmtrace's pid (a CI timeout) goes
// on to the command; mmtrace sees it exit, reports, and exits as the
// command did (128+N).
func TestE2ESignalRunModeForwards(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(unix.SignalName(sig), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out.json")
			r := start(t, nil, "--format", "json", "--output", out, "--", "sleep", "60")
			r.waitFor("mmtrace: tracing ")
			r.waitChild(func(status string) bool { return strings.Contains(status, "Name:\tsleep\n") })
			r.signal(sig)
			res := r.wait()
			if want := 128 + int(sig); res.code != want {
				t.Errorf("exit %d, want %d\nstderr:\n%s", res.code, want, res.stderr)
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			lines, reports := parseOutput(t, b)
			rep := oneReport(t, reports, "sleep", func(r *jsonReport) bool { return r.Comm == "sleep" })
			if rep.Ended != "exit" {
				t.Errorf("sleep's image ended %q, want exit (the signal should have ended it)", rep.Ended)
			}
			if len(lines) == 0 || lines[len(lines)-1]["type"] != "summary" {
				t.Errorf("no summary at the end of the output")
			}
		})
	}
}

// Run mode: a command that ignores the signal does not keep mmtrace: it
// stops on a second signal, or interrupt.Grace after the first, reports the
// command as still running, and exits 128+N with a sentence saying it
// was left running.
func TestE2ESignalRunModeCommandIgnoresIt(t *testing.T) {
	for _, second := range []bool{true, false} {
		t.Run(map[bool]string{true: "second signal", false: "grace"}[second], func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out.json")
			r := start(t, nil, "--format", "json", "--output", out, "--", "bash", "-c", `trap "" TERM; sleep 60; exit 0`)
			r.waitFor("mmtrace: tracing ")
			r.waitChild(func(status string) bool { return sigMask(status, "SigIgn:")&(1<<(syscall.SIGTERM-1)) != 0 })
			r.signal(syscall.SIGTERM)
			if second {
				// Two signals pending at once are one: send the second
				// once the first is delivered.
				waitDelivered(t, r.cmd.Process.Pid, syscall.SIGTERM)
				r.signal(syscall.SIGTERM)
			}
			checkLeftRunning(t, r.wait(), out)
		})
	}
}

func checkLeftRunning(t *testing.T, res runResult, out string) {
	t.Helper()
	if res.code != 143 || !strings.Contains(res.stderr, "mmtrace: interrupted by SIGTERM: bash (pid ") ||
		!strings.Contains(res.stderr, "left running") {
		t.Errorf("exit %d, stderr:\n%s\nwant 143 and a sentence saying bash was left running", res.code, res.stderr)
	}
	b, _ := os.ReadFile(out)
	lines, reports := parseOutput(t, b)
	if len(reports) == 0 || len(lines) == 0 || lines[len(lines)-1]["type"] != "summary" {
		t.Errorf("want the reports and a summary, got:\n%s", b)
	}
	for _, rep := range reports {
		if rep.Ended != "stopped" {
			t.Errorf("pid %d (%s) ended %q, want stopped", rep.PID, rep.Comm, rep.Ended)
		}
		syscall.Kill(int(rep.PID), syscall.SIGKILL) // left running: end it
	}
}

// sigMask reads a signal mask line of /proc/PID/status.
func sigMask(status, field string) uint64 {
	for _, l := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(l, field); ok {
			n, _ := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return n
		}
	}
	return 0
}

// waitChild waits until mmtrace's child (the command: first the
// launcher, then what it execs) has a /proc/PID/status that ready
// accepts: a signal sent earlier would reach the launcher, or a command
// not yet set up.
func (r *running) waitChild(ready func(status string) bool) {
	r.t.Helper()
	for guard := time.Now().Add(hangGuard); time.Now().Before(guard); time.Sleep(5 * time.Millisecond) {
		stats, _ := filepath.Glob("/proc/[0-9]*/stat")
		for _, st := range stats {
			b, err := os.ReadFile(st)
			i := bytes.LastIndexByte(b, ')')
			if err != nil || i < 0 {
				continue
			}
			var state string
			var ppid int
			fmt.Sscan(string(b[i+1:]), &state, &ppid)
			if ppid != r.cmd.Process.Pid {
				continue
			}
			if status, err := os.ReadFile(filepath.Join(filepath.Dir(st), "status")); err == nil && ready(string(status)) {
				return
			}
		}
	}
	r.t.Fatalf("mmtrace's command never got ready:\n%s", r.errText())
}

// waitDelivered waits until sig is no longer pending for pid.
func waitDelivered(t *testing.T, pid int, sig syscall.Signal) {
	t.Helper()
	bit := uint64(1) << (sig - 1)
	for guard := time.Now().Add(hangGuard); time.Now().Before(guard); time.Sleep(5 * time.Millisecond) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			t.Fatal(err)
		}
		if (sigMask(string(b), "SigPnd:")|sigMask(string(b), "ShdPnd:"))&bit == 0 {
			return
		}
	}
	t.Fatalf("%v still pending for pid %d after %v", sig, pid, hangGuard)
}

// -r FIFO with no writer: mmtrace says it waits; SIGINT ends the wait at
// once with exit 130 and a sentence.
func TestE2ESignalReplayFIFOWithoutWriter(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	r := start(t, nil, "-r", fifo)
	r.waitFor("mmtrace: waiting for a recording to come through -r " + fifo)
	r.signal(syscall.SIGINT)
	res := r.wait()
	want := "mmtrace: interrupted by SIGINT while waiting for -r " + fifo + " (a FIFO no one writes to?)\n"
	if res.code != 130 || !strings.HasSuffix(res.stderr, want) {
		t.Errorf("exit %d, stderr:\n%s\nwant 130 and %q", res.code, res.stderr, want)
	}
}

// -w FIFO and -o FIFO with no reader: mmtrace says it waits for one;
// SIGTERM ends the wait with exit 143, before the command ever runs.
func TestE2ESignalOutputFIFOWithoutReader(t *testing.T) {
	for _, flag := range []string{"-w", "--output"} {
		t.Run(flag, func(t *testing.T) {
			dir := t.TempDir()
			fifo := filepath.Join(dir, "fifo")
			if err := syscall.Mkfifo(fifo, 0o600); err != nil {
				t.Fatal(err)
			}
			ran := filepath.Join(dir, "ran")
			r := start(t, nil, flag, fifo, "--", "touch", ran)
			r.waitFor("mmtrace: waiting for a reader of " + flag + " " + fifo)
			r.signal(syscall.SIGTERM)
			res := r.wait()
			want := "mmtrace: interrupted by SIGTERM while waiting for a reader of " + flag + " " + fifo + " (a FIFO)\n"
			if res.code != 143 || !strings.HasSuffix(res.stderr, want) {
				t.Errorf("exit %d, stderr:\n%s\nwant 143 and %q", res.code, res.stderr, want)
			}
			if _, err := os.Stat(ran); err == nil {
				t.Errorf("the command ran although mmtrace was stopped before tracing")
			}
		})
	}
}

// -r of a valid header and then endless zeros: mmtrace is busy stepping
// over damage that never ends; SIGINT stops it with exit 130, the
// summary, and a sentence saying how far it got.
func TestE2ESignalReplayEndlessDamage(t *testing.T) {
	var hdr bytes.Buffer
	if _, err := record.NewWriter(&hdr, record.NewHeader()); err != nil {
		t.Fatal(err)
	}
	r := start(t, io.MultiReader(&hdr, zeros{}), "-r", "/proc/self/fd/0") // not /dev/stdin: the test VMs' /dev has no such link
	// Busy once it has read well past the header.
	for guard := time.Now().Add(hangGuard); ; time.Sleep(10 * time.Millisecond) {
		if readBytes(r.cmd.Process.Pid) > 4<<20 {
			break
		}
		if time.Now().After(guard) {
			t.Fatalf("mmtrace read no zeros:\n%s", r.errText())
		}
	}
	r.signal(syscall.SIGINT)
	res := r.wait()
	if res.code != 130 || !strings.Contains(res.stderr, "mmtrace: interrupted by SIGINT at offset ") {
		t.Errorf("exit %d, stderr:\n%s\nwant 130 and where the replay stopped", res.code, res.stderr)
	}
	if !strings.Contains(res.stdout, "== summary: 0 images") {
		t.Errorf("no summary:\n%s", res.stdout)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// readBytes is how many bytes pid has read (rchar in /proc/PID/io).
func readBytes(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "rchar: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// An output no one reads blocks mmtrace in a write, where it cannot act
// on a signal: a signal that finds the one before it not acted on ends
// mmtrace at once (exit 128+N, a sentence), rather than leaving only
// SIGKILL.
func TestE2ESignalStuckOutput(t *testing.T) {
	_, dir := binaries(t)
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// A reader that never reads.
	rd, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	r := start(t, nil, "--output", fifo, "--", filepath.Join(dir, "churn"), "1", "3000", filepath.Join(dir, "data"))
	r.waitFor("mmtrace: tracing ")
	pid := r.cmd.Process.Pid
	for guard := time.Now().Add(hangGuard); !blockedIn(pid, "pipe_write"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(guard) {
			t.Fatalf("mmtrace never blocked writing to the FIFO:\n%s", r.errText())
		}
	}
	// Signals sent close together may count as one (the kernel and the
	// Go runtime each merge a pending signal with the next): keep
	// sending until mmtrace ends.
	stop := make(chan struct{})
	go func() {
		for {
			if r.cmd.Process.Signal(syscall.SIGTERM) != nil {
				return // gone
			}
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	res := r.wait()
	close(stop)
	if res.code != 143 || !strings.Contains(res.stderr, "mmtrace: interrupted by SIGTERM again: exiting at once") {
		t.Errorf("exit %d, stderr:\n%s\nwant 143 and a sentence", res.code, res.stderr)
	}
}

// blockedIn reports whether a thread of pid waits in a kernel function
// whose name ends in fn (/proc/PID/task/TID/wchan; 6.18 says
// anon_pipe_write, older kernels pipe_write).
func blockedIn(pid int, fn string) bool {
	wchans, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/wchan", pid))
	for _, w := range wchans {
		if b, err := os.ReadFile(w); err == nil && strings.HasSuffix(string(b), fn) {
			return true
		}
	}
	return false
}
