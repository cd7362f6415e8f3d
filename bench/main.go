// Command bench measures what mmtrace costs the processes it watches, and
// the ones it does not, against a bare run, strace and bpftrace, how the
// consumer keeps up at scale, and checks the targets of issues 8 and 18.
// Run it through `make bench` (bench/run.sh), as root: it loads BPF
// programs.
package main

import (
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

type config struct {
	rounds  int
	target  time.Duration
	mmtrace string
	bin     string
	only    string // "scale": the scale section alone
}

func main() {
	var cfg config
	flag.IntVar(&cfg.rounds, "rounds", 7, "interleaved rounds per workload and tracer")
	flag.DurationVar(&cfg.target, "target", 500*time.Millisecond, "bare run time the iteration counts are calibrated to")
	flag.StringVar(&cfg.mmtrace, "mmtrace", "./mmtrace", "the mmtrace binary")
	flag.StringVar(&cfg.bin, "workloads", "", "directory with the compiled workloads (bench/run.sh builds them)")
	flag.StringVar(&cfg.only, "only", "", "run one section: scale (the many-VMA churn and replay, ~1 min) or overhead (the ratio table)")
	flag.Parse()
	if cfg.bin == "" || cfg.rounds < 1 {
		fmt.Fprintln(os.Stderr, "bench: run it with `make bench` (needs -workloads DIR and -rounds >= 1)")
		os.Exit(2)
	}
	if err := run(cfg, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

// tracer is one column: a way of running (or accompanying) a workload.
type tracer struct {
	name string
	run  func(argv []string) (runResult, error)
}

// workload is one row group.
type workload struct {
	title string
	bin   string
	n0    int    // iteration count for calibration
	per   string // what one iteration is, for the extra-time column
	n     int    // calibrated iteration count
	cols  []tracer
}

func (w *workload) argv(h *harness) []string {
	return h.workload(w.bin, strconv.Itoa(w.n))
}

// series is the runs of one workload under one tracer, by round.
type series struct {
	secs   []float64 // loop seconds per round; 0 where the run failed
	cpu    []float64 // loop CPU seconds per round; 0 where unknown
	attach []time.Duration
	lost   uint64
	err    error // the first failure
}

func run(cfg config, out io.Writer) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root to load BPF programs: sudo make bench")
	}
	mm, err := filepath.Abs(cfg.mmtrace)
	if err != nil {
		return err
	}
	scratch, err := os.MkdirTemp(scratchBase(), "mmtrace-bench-")
	if err != nil {
		return fmt.Errorf("scratch directory: %w", err)
	}
	defer os.RemoveAll(scratch)
	h := &harness{mmtrace: mm, bin: cfg.bin, scratch: scratch}
	began := time.Now()

	printMachine(out)
	var notes []string
	if others := otherTracers(); len(others) > 0 {
		fmt.Fprintf(out, "warning: %d tracing BPF programs of other tools are loaded (%s): bare runs pay for them too\n",
			len(others), strings.Join(others, " "))
	}

	if cfg.only == "scale" {
		t := &targets{}
		printScale(out, scaleSection(h), t)
		t.print(out)
		fmt.Fprintf(out, "\nload average at the end: %s; whole run %v\n", loadAverage(), time.Since(began).Round(time.Second))
		return nil
	} else if cfg.only != "" && cfg.only != "overhead" {
		return fmt.Errorf("-only %s: the sections that run alone are scale and overhead", cfg.only)
	}

	recording := filepath.Join(scratch, "bench.mmt")
	mmtraceCol := tracer{"mmtrace", func(a []string) (runResult, error) { return h.runMmtrace(mmtraceRun{}, a) }}
	withW := tracer{"mmtrace -w", func(a []string) (runResult, error) {
		defer os.Remove(recording)
		return h.runMmtrace(mmtraceRun{extra: []string{"-w", recording}}, a)
	}}
	others := []tracer{}
	if _, err := exec.LookPath("strace"); err == nil {
		others = append(others, tracer{"strace -f", runStrace})
	} else {
		notes = append(notes, "strace is not installed: its column is skipped (apt-get install strace)")
	}
	if _, err := exec.LookPath("bpftrace"); err == nil {
		others = append(others, tracer{"bpftrace printf", runBpftrace})
	} else {
		notes = append(notes, "bpftrace is not installed: its column is skipped (measured before at ~15x on the mmap loop, 1.5x fork+exec)")
	}

	untracedUnder := func(name string, extra ...string) tracer {
		return tracer{name, func(a []string) (runResult, error) {
			bg, err := h.startBackground(extra...)
			if err != nil {
				return runResult{}, err
			}
			res, rerr := runBare(a)
			attach, serr := bg.stop()
			res.attach = attach
			if rerr != nil {
				return res, rerr
			}
			return res, serr
		}}
	}
	untraced := []tracer{
		untracedUnder("mmtrace --comm other"),
		untracedUnder("mmtrace --no-ia32 --comm other", "--no-ia32"),
		// The prototype of issue 14: no syscall tracepoint at all.
		untracedUnder("mmtrace --lock-path --comm other", "--lock-path"),
	}
	if _, err := exec.LookPath("bpftrace"); err == nil {
		untraced = append(untraced, tracer{"bpftrace syscalls:* (other comm)", func(a []string) (runResult, error) {
			return runBareBesideBpftrace(a)
		}})
	}
	lockPath := tracer{"mmtrace --lock-path", func(a []string) (runResult, error) {
		return h.runMmtrace(mmtraceRun{extra: []string{"--lock-path"}}, a)
	}}
	var floor []tracer // the cheapest raw_syscalls attachment, on the mmap loop too
	for i, p := range probeSets {
		a, err := p.build() // check once that this kernel takes it
		if err != nil {
			notes = append(notes, fmt.Sprintf("%s: skipped: %v", p.name, err))
			continue
		}
		a.Close()
		notes = append(notes, p.note)
		col := tracer{p.name, func(argv []string) (runResult, error) {
			a, err := p.build()
			if err != nil {
				return runResult{}, err
			}
			defer a.Close()
			return runBare(argv)
		}}
		untraced = append(untraced, col)
		if i == 0 {
			floor = append(floor, col)
		}
	}

	loads := []*workload{
		{title: "mmap/munmap/brk loop", bin: "mmaploop", n0: 20000, per: "iteration (4 syscalls)",
			cols: append(append([]tracer{mmtraceCol, withW, lockPath}, floor...), others...)},
		{title: "fork+exec /bin/true", bin: "forkexec", n0: 100, per: "process",
			cols: append([]tracer{mmtraceCol, lockPath}, others...)},
		{title: "untraced getppid loop", bin: "getppid", n0: 1000000, per: "syscall", cols: untraced},
	}
	for _, w := range loads {
		if err := calibrate(h, w, cfg.target); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "iterations: mmap loop %d, fork+exec %d, getppid %d (bare run ~%v each); %d rounds, interleaved\n\n",
		loads[0].n, loads[1].n, loads[2].n, cfg.target, cfg.rounds)

	// Interleave: every round runs each workload bare and under each
	// tracer, so slow drifts in machine load hit all columns alike.
	bare := make([]*series, len(loads))
	cells := make([][]*series, len(loads))
	for i, w := range loads {
		bare[i] = &series{}
		cells[i] = make([]*series, len(w.cols))
		for j := range w.cols {
			cells[i][j] = &series{}
		}
	}
	busyRounds := 0
	for r := range cfg.rounds {
		fmt.Fprintf(os.Stderr, "bench: round %d/%d\n", r+1, cfg.rounds)
		if len(otherTracers()) > 0 {
			busyRounds++
		}
		for i, w := range loads {
			argv := w.argv(h)
			record(bare[i], runBare, argv)
			for j, c := range w.cols {
				record(cells[i][j], c.run, argv)
			}
		}
	}

	if cfg.only == "overhead" {
		t := &targets{}
		printOverhead(out, loads, bare, cells, t)
		t.print(out)
		printNotes(out, notes)
		return nil
	}

	fmt.Fprintln(os.Stderr, "bench: mmap loop at full rate, 1000 processes, burst, replay, scale")
	full := fullRate(h, loads[0], min(cfg.rounds, 3))
	rss := peakRSS(h)
	burst := runBurst(h)
	replay := replayRate(h, loads[0])
	scale := scaleSection(h)

	var attach []time.Duration
	for i := range loads {
		for _, s := range cells[i] {
			attach = append(attach, s.attach...)
		}
	}
	attach = append(attach, full.attach...)

	if busyRounds > 0 {
		notes = append(notes, fmt.Sprintf("other tools' tracing BPF programs were loaded at the start of %d of %d rounds: those rounds are not clean", busyRounds, cfg.rounds))
	}
	t := &targets{}
	printOverhead(out, loads, bare, cells, t)
	printExtras(out, extras{
		wCost:        wCost(cells[0][0], cells[0][1]),
		full:         full,
		lostInRounds: cells[0][0].lost + cells[0][1].lost,
		attach:       attach,
		rss:          rss,
		burst:        burst,
		replay:       replay,
	}, t)
	printScale(out, scale, t)
	t.print(out)
	printNotes(out, notes)
	fmt.Fprintf(out, "\nload average at the end: %s; whole run %v\n", loadAverage(), time.Since(began).Round(time.Second))
	if others := otherTracers(); len(others) > 0 {
		fmt.Fprintf(out, "warning: at the end, %d tracing BPF programs of other tools are loaded\n", len(others))
	}
	return nil
}

// record runs one cell of a round and keeps its time (0 if it failed).
func record(s *series, run func([]string) (runResult, error), argv []string) {
	res, err := run(argv)
	if err != nil {
		if s.err == nil {
			s.err = err
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		}
		s.secs = append(s.secs, 0)
		s.cpu = append(s.cpu, 0)
		return
	}
	s.secs = append(s.secs, res.elapsed.Seconds())
	s.cpu = append(s.cpu, res.cpu.Seconds())
	if res.attach > 0 {
		s.attach = append(s.attach, res.attach)
	}
	s.lost += res.lost
}

// calibrate picks an iteration count so that a bare run takes about
// target: the faster of two trial runs, scaled, rounded to two digits.
func calibrate(h *harness, w *workload, target time.Duration) error {
	best := time.Duration(math.MaxInt64)
	for range 2 {
		res, err := runBare(h.workload(w.bin, strconv.Itoa(w.n0)))
		if err != nil {
			return fmt.Errorf("calibrate %s: %w", w.bin, err)
		}
		best = min(best, res.elapsed)
	}
	n := float64(w.n0) * float64(target) / float64(best)
	n = max(float64(w.n0)/10, min(n, float64(w.n0)*100))
	w.n = int(roundTwoDigits(n))
	return nil
}

func roundTwoDigits(x float64) float64 {
	if x < 100 {
		return math.Round(x)
	}
	p := math.Pow(10, math.Floor(math.Log10(x))-1)
	return math.Round(x/p) * p
}

// scratchBase prefers tmpfs, so that output files do not wait on a disk.
func scratchBase() string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		return "/dev/shm"
	}
	return os.TempDir()
}

func printNotes(out io.Writer, notes []string) {
	if len(notes) == 0 {
		return
	}
	fmt.Fprintln(out, "\nnotes:")
	for _, n := range notes {
		fmt.Fprintf(out, "  - %s\n", n)
	}
}
