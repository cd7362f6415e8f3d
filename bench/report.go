package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"
)

// printMachine says where the numbers come from.
func printMachine(out io.Writer) {
	var u unix.Utsname
	kernel := "?"
	if unix.Uname(&u) == nil {
		kernel = unix.ByteSliceToString(u.Release[:])
	}
	model := "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	goVersion := runtime.Version()
	if b, err := exec.Command("go", "version").Output(); err == nil {
		goVersion = strings.TrimSpace(string(b))
	}
	fmt.Fprintf(out, "mmtrace bench, %s\n", time.Now().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(out, "machine: %d CPUs, %s; kernel %s; %s\n", runtime.NumCPU(), model, kernel, goVersion)
	fmt.Fprintf(out, "load average at the start: %s (other work on the machine makes numbers noisy)\n", loadAverage())
	if b, err := os.ReadFile("/proc/sys/kernel/bpf_stats_enabled"); err == nil && strings.TrimSpace(string(b)) != "0" {
		fmt.Fprintln(out, "warning: kernel.bpf_stats_enabled is on: every BPF program run is timed, which adds overhead")
	}
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// targets collects the pass/FAIL lines of issues 8 and 18.
type targets struct {
	lines []targetLine
}

type targetLine struct {
	what, measured string
	ok             bool
	known          bool // false: not measured (a run failed)
}

func (t *targets) add(what, measured string, ok bool) {
	t.lines = append(t.lines, targetLine{what, measured, ok, true})
}

func (t *targets) unknown(what string, err error) {
	t.lines = append(t.lines, targetLine{what: what, measured: "not measured: " + err.Error()})
}

func (t *targets) print(out io.Writer) {
	fmt.Fprintln(out, "\n== targets (issues 8 and 18) ==")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	met := 0
	for _, l := range t.lines {
		status := "FAIL"
		switch {
		case !l.known:
			status = "?"
		case l.ok:
			status = "pass"
			met++
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", l.what, l.measured, status)
	}
	tw.Flush()
	fmt.Fprintf(out, "  %d of %d targets met\n", met, len(t.lines))
}

// overheadTargets are the ratio targets, by workload and column.
// The targets of issue 14: what mmtrace costs the processes it traces,
// and what it costs every other process while it waits for one.
var overheadTargets = map[[2]string]float64{
	{"mmaploop", "mmtrace --lock-path"}:             1.20,
	{"forkexec", "mmtrace --lock-path"}:             1.05,
	{"getppid", "mmtrace --lock-path --comm other"}: 1.05,
}

func printOverhead(out io.Writer, loads []*workload, bare []*series, cells [][]*series, t *targets) {
	fmt.Fprintln(out, "== overhead: loop time under a tracer / bare loop time of the same round ==")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\ttracer\tbare ms\ttraced ms\tratio median\tmin\tmax\tcpu ratio\textra per op\top\ttarget\t\t")
	for i, w := range loads {
		b := spreadOf(nonZero(bare[i].secs))
		for j, c := range w.cols {
			s := cells[i][j]
			r := spreadOf(ratios(s.secs, bare[i].secs))
			goal, hasGoal := overheadTargets[[2]string{w.bin, c.name}]
			if r.n == 0 {
				fmt.Fprintf(tw, "%s\t%s\t\t\tfailed\t\t\t\t\t\t\t\t\n", w.title, c.name)
				if hasGoal {
					t.unknown(fmt.Sprintf("%s under %s <= %.2fx", w.title, c.name, goal), s.err)
				}
				continue
			}
			traced := spreadOf(nonZero(s.secs))
			extra := extraPerOp(s.secs, bare[i].secs, w.n)
			cpu := "-"
			if cr := spreadOf(ratios(s.cpu, bare[i].cpu)); cr.n > 0 {
				cpu = fmt.Sprintf("%.2fx", cr.median)
			}
			goalCol, status := "", ""
			if hasGoal {
				goalCol = fmt.Sprintf("<= %.2fx", goal)
				status = passFail(r.median <= goal)
				t.add(fmt.Sprintf("%s under %s <= %.2fx", w.title, c.name, goal), fmt.Sprintf("%.2fx", r.median), r.median <= goal)
			}
			fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.0f\t%.2fx\t%.2fx\t%.2fx\t%s\t%s\t%s\t%s\t%s\t\n",
				w.title, c.name, b.median*1e3, traced.median*1e3, r.median, r.min, r.max, cpu,
				formatNs(extra.median), w.per, goalCol, status)
		}
	}
	tw.Flush()
	fmt.Fprintln(out, "  ratio: wall time of the loop (the targets); cpu ratio: the loop's own CPU time (with reaped children),")
	fmt.Fprintln(out, "  which waiting for a busy CPU does not inflate; extra per op: (traced - bare wall time) / iterations")
}

// extraPerOp is the per-iteration time a tracer adds, per round, in ns.
func extraPerOp(traced, bare []float64, n int) spread {
	var xs []float64
	for i := range min(len(traced), len(bare)) {
		if traced[i] > 0 && bare[i] > 0 {
			xs = append(xs, (traced[i]-bare[i])*1e9/float64(n))
		}
	}
	return spreadOf(xs)
}

func nonZero(xs []float64) []float64 {
	var out []float64
	for _, x := range xs {
		if x > 0 {
			out = append(out, x)
		}
	}
	return out
}

func formatNs(ns float64) string {
	switch {
	case ns >= 1e6 || ns <= -1e6:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	case ns >= 1e4 || ns <= -1e4:
		return fmt.Sprintf("%.1f us", ns/1e3)
	}
	return fmt.Sprintf("%.0f ns", ns)
}

func passFail(ok bool) string {
	if ok {
		return "pass"
	}
	return "FAIL"
}

type extras struct {
	wCost        spread
	full         fullRateResult
	lostInRounds uint64 // mmap-loop runs of the overhead table
	attach       []time.Duration
	rss          rssResult
	burst        burstResult
	replay       replayResult
}

const mib = 1 << 20

func printExtras(out io.Writer, e extras, t *targets) {
	fmt.Fprintln(out, "\n== mmtrace itself ==")

	f := e.full
	if len(f.perSec) > 0 {
		ps := spreadOf(f.perSec)
		fmt.Fprintf(out, "  consumer rate, mmap loop at full speed: %.2f M events/s median (min %.2f, max %.2f) over %d runs\n",
			ps.median/1e6, ps.min/1e6, ps.max/1e6, ps.n)
		fmt.Fprintf(out, "    events received %d for %d loop syscalls (the rest: exec, loader, exit); lost %d (summary), %d more in the overhead runs\n",
			f.events, f.expected, f.lost, e.lostInRounds)
		lost := f.lost + e.lostInRounds
		t.add("0 lost at the mmap loop's full rate (default ring)", fmt.Sprintf("%d lost", lost), lost == 0)
	} else {
		t.unknown("0 lost at the mmap loop's full rate (default ring)", f.err)
	}
	if f.err != nil {
		fmt.Fprintf(out, "  full-rate runs: %v\n", f.err)
	}
	if rp := e.replay; rp.err == nil {
		fmt.Fprintf(out, "  consumer capacity without the kernel (-r replay of the loop, decode+layout+JSON): %.2f M events/s (%d events)\n",
			rp.perSec/1e6, rp.events)
	} else {
		fmt.Fprintf(out, "  replay: %v\n", rp.err)
	}

	b := e.burst
	if b.err == nil {
		fmt.Fprintf(out, "  burst, %d processes x %dk mmap+munmap at once: received %d of %d, lost %d (%.2f M events/s)\n",
			b.procs, b.each/1000, b.received, b.expected, b.lost, b.perSec/1e6)
		t.add("burst 4 x 200k: 0 lost, or received + lost == expected",
			fmt.Sprintf("received %d + lost %d, expected %d", b.received, b.lost, b.expected), b.accounted())
	} else {
		fmt.Fprintf(out, "  burst: %v\n", b.err)
		t.unknown("burst 4 x 200k: 0 lost, or received + lost == expected", b.err)
	}

	if len(e.attach) > 0 {
		ds := make([]float64, len(e.attach))
		for i, d := range e.attach {
			ds[i] = d.Seconds()
		}
		a := spreadOf(ds)
		fmt.Fprintf(out, "  attach, start to \"mmtrace: tracing\": median %.0f ms (min %.0f, max %.0f) over %d starts\n",
			a.median*1e3, a.min*1e3, a.max*1e3, a.n)
		t.add("attach < 0.5 s (median)", fmt.Sprintf("%.0f ms", a.median*1e3), a.median < 0.5)
	} else {
		t.unknown("attach < 0.5 s (median)", fmt.Errorf("no mmtrace run attached"))
	}

	r := e.rss
	if r.err == nil {
		fmt.Fprintf(out, "  peak RSS (VmHWM, ru_maxrss) tracing %d short-lived processes: %.1f MiB (%d images reported)\n",
			r.procs, float64(r.peak)/mib, r.images)
		t.add("peak RSS < 64 MiB with 1000 processes", fmt.Sprintf("%.1f MiB", float64(r.peak)/mib), r.peak < 64*mib)
	} else {
		fmt.Fprintf(out, "  peak RSS: %v\n", r.err)
		t.unknown("peak RSS < 64 MiB with 1000 processes", r.err)
	}

	if e.wCost.n > 0 {
		fmt.Fprintf(out, "  -w recording on the mmap loop: %.3fx median (min %.3f, max %.3f) vs without\n",
			e.wCost.median, e.wCost.min, e.wCost.max)
		t.add("-w adds <= 5% on the mmap loop", fmt.Sprintf("%+.1f%%", (e.wCost.median-1)*100), e.wCost.median <= 1.05)
	} else {
		t.unknown("-w adds <= 5% on the mmap loop", fmt.Errorf("no round had both runs"))
	}
}
