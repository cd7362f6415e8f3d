package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// runTimeout bounds any one run: strace on the mmap loop is the slowest.
const runTimeout = 3 * time.Minute

// runResult is what one run of a workload measured.
type runResult struct {
	elapsed time.Duration // the workload's own loop time (elapsed_ns=)
	cpu     time.Duration // CPU time the loop used (cpu_ns=)
	attach  time.Duration // mmtrace: start to "mmtrace: tracing"; 0 for others
	lost    uint64        // mmtrace's "N records were lost" on stderr
	peakRSS uint64        // bytes, mmtrace only when sampled
}

// harness knows where the binaries are.
type harness struct {
	mmtrace string // the mmtrace binary
	bin     string // compiled workloads
	scratch string // for output and recordings; tmpfs if possible
}

func (h *harness) workload(name string, args ...string) []string {
	return append([]string{filepath.Join(h.bin, name)}, args...)
}

// runBare runs argv with nothing attached.
func runBare(argv []string) (runResult, error) {
	return runPlain(argv[0], argv[1:])
}

// runStrace runs argv under strace following forks, tracing the memory
// and process syscalls to /dev/null.
func runStrace(argv []string) (runResult, error) {
	return runPlain("strace", append([]string{"-f", "-qq", "-o", "/dev/null", "-e", "trace=memory,process"}, argv...))
}

// bpftraceScript prints every memory or exec syscall of the workloads,
// the way one would with bpftrace during an incident.
const bpftraceScript = `tracepoint:syscalls:sys_enter_mmap, tracepoint:syscalls:sys_enter_munmap,
tracepoint:syscalls:sys_enter_brk, tracepoint:syscalls:sys_enter_mprotect,
tracepoint:syscalls:sys_enter_execve
/comm == "mmaploop" || comm == "forkexec" || comm == "true"/
{ printf("%d %d %s\n", pid, tid, probe); }`

func runBpftrace(argv []string) (runResult, error) {
	return runPlain("bpftrace", []string{"-q", "-o", "/dev/null", "-e", bpftraceScript, "-c", strings.Join(argv, " ")})
}

// runBareBesideBpftrace runs argv bare while bpftrace traces the same
// memory syscalls for a command that never runs: what bpftrace left
// waiting during an incident costs every other process.
func runBareBesideBpftrace(argv []string) (runResult, error) {
	script := strings.Replace(bpftraceScript, `comm == "mmaploop" || comm == "forkexec" || comm == "true"`,
		`comm == "no-such-comm"`, 1)
	// bpftrace 0.17 now and then fails at start setting RLIMIT_MEMLOCK
	// ("Unknown error -1"); another try starts it.
	var err error
	for range 3 {
		var stop func()
		if stop, err = startBpftrace(script); err == nil {
			res, rerr := runBare(argv)
			stop()
			return res, rerr
		}
	}
	return runResult{}, err
}

// startBpftrace starts bpftrace on script and returns once its programs
// are attached, with the function that stops it.
func startBpftrace(script string) (func(), error) {
	before := len(otherTracers())
	cmd := exec.Command("bpftrace", "-q", "-o", "/dev/null", "-e", script)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start bpftrace: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	stop := func() {
		cmd.Process.Signal(syscall.SIGINT)
		<-exited
	}
	// Attached once its programs are loaded (one per probe).
	for deadline := time.Now().Add(30 * time.Second); len(otherTracers()) <= before; {
		select {
		case <-exited:
			return nil, fmt.Errorf("bpftrace exited before it attached: %s", lastLines(stderr.String()))
		default:
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("bpftrace did not attach in 30 s: %s", lastLines(stderr.String()))
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // the rest of its probes
	return stop, nil
}

func runPlain(name string, args []string) (runResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return runResult{}, fmt.Errorf("%s: %w: %s", name, err, lastLines(stderr.String()))
	}
	el, cpu, err := parseTimes(stdout.String())
	if err != nil {
		return runResult{}, fmt.Errorf("%s: %w", name, err)
	}
	return runResult{elapsed: el, cpu: cpu}, nil
}

// mmtraceRun says how to run mmtrace.
type mmtraceRun struct {
	output    string   // --output; "" means /dev/null
	extra     []string // more flags, before --
	sampleRSS bool     // watch VmHWM while it runs
}

// runMmtrace runs argv under mmtrace in run mode with JSON output.
func (h *harness) runMmtrace(o mmtraceRun, argv []string) (runResult, error) {
	out := o.output
	if out == "" {
		out = os.DevNull
	}
	args := append([]string{"--format", "json", "--output", out}, o.extra...)
	args = append(append(args, "--"), argv...)

	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	var stdout bytes.Buffer
	cmd := exec.CommandContext(ctx, h.mmtrace, args...)
	cmd.Stdout = &stdout // the workload's, mmtrace's own goes to --output
	w, err := newStderrWatch(cmd)
	if err != nil {
		return runResult{}, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		w.abort()
		return runResult{}, fmt.Errorf("start mmtrace: %w", err)
	}
	w.started(start)
	var rss *rssSampler
	if o.sampleRSS {
		rss = sampleRSS(cmd.Process.Pid)
	}
	err = cmd.Wait()
	w.wait()
	res := runResult{attach: w.attach(), lost: w.lost()}
	if rss != nil {
		res.peakRSS = rss.stop()
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			// ru_maxrss (KiB) also covers the last moments, after
			// the last sample; it includes the workload, which is tiny.
			res.peakRSS = max(res.peakRSS, uint64(ru.Maxrss)*1024)
		}
	}
	if err != nil {
		return res, fmt.Errorf("mmtrace: %w: %s", err, lastLines(w.text()))
	}
	if res.elapsed, res.cpu, err = parseTimes(stdout.String()); err != nil {
		return res, fmt.Errorf("mmtrace: %w: %s", err, lastLines(w.text()))
	}
	return res, nil
}

// background is an mmtrace tracing something else while a workload runs.
type background struct {
	cmd *exec.Cmd
	w   *stderrWatch
}

// startBackground attaches mmtrace for a comm nothing has, and returns
// once it says it is tracing.
func (h *harness) startBackground(extra ...string) (*background, error) {
	args := append([]string{"--comm", "nonexistent_cmd", "--format", "json", "--output", os.DevNull}, extra...)
	cmd := exec.Command(h.mmtrace, args...)
	w, err := newStderrWatch(cmd)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		w.abort()
		return nil, fmt.Errorf("start mmtrace: %w", err)
	}
	w.started(start)
	select {
	case <-w.ready:
		return &background{cmd: cmd, w: w}, nil
	case <-w.done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
	}
	cmd.Wait()
	return nil, fmt.Errorf("mmtrace --comm did not attach: %s", lastLines(w.text()))
}

// stop ends the background mmtrace with Ctrl-C and returns its attach time.
func (b *background) stop() (time.Duration, error) {
	b.cmd.Process.Signal(os.Interrupt)
	timer := time.AfterFunc(30*time.Second, func() { b.cmd.Process.Kill() })
	defer timer.Stop()
	err := b.cmd.Wait()
	b.w.wait()
	if err != nil {
		return 0, fmt.Errorf("background mmtrace: %w: %s", err, lastLines(b.w.text()))
	}
	return b.w.attach(), nil
}

// stderrWatch reads mmtrace's stderr as it comes, to time the
// "mmtrace: tracing" line and to keep the rest for errors.
type stderrWatch struct {
	r, w  *os.File
	ready chan struct{} // closed at the tracing line
	done  chan struct{} // closed at EOF

	mu       sync.Mutex
	start    time.Time
	attached time.Duration
	lines    []string
}

func newStderrWatch(cmd *exec.Cmd) (*stderrWatch, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("pipe for mmtrace's stderr: %w", err)
	}
	cmd.Stderr = w
	return &stderrWatch{r: r, w: w, ready: make(chan struct{}), done: make(chan struct{})}, nil
}

func (s *stderrWatch) abort() { s.r.Close(); s.w.Close() }

// started begins reading; the child holds its own copy of the write end.
func (s *stderrWatch) started(t time.Time) {
	s.start = t
	s.w.Close()
	go func() {
		defer close(s.done)
		defer s.r.Close()
		sc := bufio.NewScanner(s.r)
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			if strings.HasPrefix(line, "mmtrace: tracing") && s.attached == 0 {
				s.attached = time.Since(s.start)
				close(s.ready)
			}
			if len(s.lines) < 200 {
				s.lines = append(s.lines, line)
			}
			s.mu.Unlock()
		}
	}()
}

// wait returns once stderr is closed: every writer has exited.
func (s *stderrWatch) wait() {
	select {
	case <-s.done:
	case <-time.After(10 * time.Second): // a stray child still holds it
	}
}

func (s *stderrWatch) attach() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attached
}

func (s *stderrWatch) text() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.lines, "\n")
}

var lostLine = regexp.MustCompile(`^mmtrace: (\d+) records were lost`)

func (s *stderrWatch) lost() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.lines {
		if m := lostLine.FindStringSubmatch(l); m != nil {
			n, _ := strconv.ParseUint(m[1], 10, 64)
			return n
		}
	}
	return 0
}

// rssSampler polls a process's VmHWM (its peak resident set).
type rssSampler struct {
	stopc chan struct{}
	done  chan uint64
}

func sampleRSS(pid int) *rssSampler {
	s := &rssSampler{stopc: make(chan struct{}), done: make(chan uint64, 1)}
	go func() {
		var peak uint64
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			if v, err := vmHWM(pid); err == nil {
				peak = max(peak, v)
			}
			select {
			case <-s.stopc:
				s.done <- peak
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *rssSampler) stop() uint64 {
	close(s.stopc)
	return <-s.done
}

// vmHWM reads the peak resident set size of pid, in bytes.
func vmHWM(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) == 2 && f[1] == "kB" {
				n, err := strconv.ParseUint(f[0], 10, 64)
				return n * 1024, err
			}
		}
	}
	return 0, errors.New("no VmHWM line")
}

// parseTimes reads the workload's "elapsed_ns=N" and "cpu_ns=N" lines.
func parseTimes(stdout string) (elapsed, cpu time.Duration, err error) {
	for line := range strings.Lines(stdout) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok || (k != "elapsed_ns" && k != "cpu_ns") {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return 0, 0, fmt.Errorf("bad line from the workload: %q", line)
		}
		if k == "elapsed_ns" {
			elapsed = time.Duration(n)
		} else {
			cpu = time.Duration(n)
		}
	}
	if elapsed <= 0 {
		return 0, 0, fmt.Errorf("workload printed no elapsed_ns line (stdout %q)", lastLines(stdout))
	}
	return elapsed, cpu, nil
}

// lastLines keeps error messages short.
func lastLines(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return strings.Join(lines, " | ")
}
