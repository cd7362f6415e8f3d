package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The scale section (issue 18): vmachurn lives among n VMAs and does
// scaleRounds rounds of munmap + MAP_FIXED of a random page among them.
// Each size is recorded live under mmtrace (the default ring: its losses
// are the live column), then the recording is replayed without the
// kernel, the consumer alone: decode, sequencer, layout, rendering.
var scaleSizes = []int{1 << 10, 1 << 14, 1 << 16, 1 << 18}

const (
	scaleRounds  = 200000 // 2 events each, after the n/2 mprotects that make the VMAs
	scaleReplays = 3      // best of, per format
	scaleLive    = 1 << 16
	maxMapCount  = "/proc/sys/vm/max_map_count"

	// The one-worker mmap stress (mmapstress): passes over 256 MiB, 2
	// mprotects a page and an mmap and munmap a pass. 16 passes take
	// about 10 s traced on the 2-core test VM.
	stressPasses = 16
	stressCalls  = stressPasses * (2*(256<<20)/4096 + 2)
)

// scaleResult is the scale section: the replay rows and the live stress.
type scaleResult struct {
	rows   []scaleRow
	stress stressRow
}

// stressRow is the one-worker mmap stress traced live with the default
// ring to /dev/null: did the consumer keep up with one busy worker?
type stressRow struct {
	elapsed time.Duration // the workload's loop under tracing
	lost    uint64        // records lost (mmtrace's stderr)
	err     error
}

type scaleRow struct {
	vmas      int
	events    uint64  // event lines a replay prints
	liveLost  uint64  // records lost while recording (mmtrace's stderr)
	json      float64 // replay events/s, wall time, best of scaleReplays
	text      float64
	jsonCPU   float64 // the same per CPU second (user + sys)
	textCPU   float64
	rss       uint64 // the JSON replay's ru_maxrss, bytes
	replayDur time.Duration
	err       error
}

// scaleSection measures every size, then the one-worker stress; it
// raises vm.max_map_count for the largest size and puts it back.
func scaleSection(h *harness) scaleResult {
	var res scaleResult
	res.rows = scaleRows(h)
	fmt.Fprintf(os.Stderr, "bench: scale, one-worker mmap stress (%d passes over 256 MiB)\n", stressPasses)
	res.stress = stressRun(h)
	return res
}

func scaleRows(h *harness) []scaleRow {
	rows := make([]scaleRow, 0, len(scaleSizes))
	restore, err := raiseMaxMapCount(scaleSizes[len(scaleSizes)-1] + 1000)
	if err != nil {
		for _, n := range scaleSizes {
			rows = append(rows, scaleRow{vmas: n, err: err})
		}
		return rows
	}
	defer restore()
	for _, n := range scaleSizes {
		fmt.Fprintf(os.Stderr, "bench: scale, %d VMAs\n", n)
		rows = append(rows, scaleAt(h, n))
	}
	return rows
}

// stressRun traces mmapstress live, default ring, JSON to /dev/null.
func stressRun(h *harness) stressRow {
	res, err := h.runMmtrace(mmtraceRun{}, h.workload("mmapstress", strconv.Itoa(stressPasses)))
	if err != nil {
		return stressRow{err: fmt.Errorf("one-worker mmap stress: %w", err)}
	}
	return stressRow{elapsed: res.elapsed, lost: res.lost}
}

func scaleAt(h *harness, n int) scaleRow {
	r := scaleRow{vmas: n}
	rec := filepath.Join(h.scratch, "scale.mmt")
	out := filepath.Join(h.scratch, "scale.json")
	defer os.Remove(rec)
	defer os.Remove(out)
	res, err := h.runMmtrace(mmtraceRun{extra: []string{"-w", rec}},
		h.workload("vmachurn", strconv.Itoa(scaleRounds), strconv.Itoa(n)))
	if err != nil {
		r.err = fmt.Errorf("record at %d VMAs: %w", n, err)
		return r
	}
	r.liveLost = res.lost
	if _, _, err := replayOnce(h, rec, "json", out); err != nil {
		r.err = err
		return r
	}
	c, err := countOutputFile(out)
	if err != nil {
		r.err = err
		return r
	}
	r.events = c.events
	for _, f := range []struct {
		format    string
		wall, cpu *float64
	}{{"json", &r.json, &r.jsonCPU}, {"text", &r.text, &r.textCPU}} {
		for range scaleReplays {
			took, ps, err := replayOnce(h, rec, f.format, os.DevNull)
			if err != nil {
				r.err = err
				return r
			}
			cpu := ps.UserTime() + ps.SystemTime()
			*f.wall = max(*f.wall, float64(r.events)/took.Seconds())
			*f.cpu = max(*f.cpu, float64(r.events)/cpu.Seconds())
			if ru, ok := ps.SysUsage().(*syscall.Rusage); ok && f.format == "json" {
				r.rss = max(r.rss, uint64(ru.Maxrss)*1024)
			}
		}
	}
	return r
}

// replayOnce runs mmtrace -r on a recording and times it.
func replayOnce(h *harness, rec, format, out string) (time.Duration, *os.ProcessState, error) {
	start := time.Now()
	cmd := exec.Command(h.mmtrace, "-r", rec, "--format", format, "--output", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		return 0, nil, fmt.Errorf("replay: %w: %s", err, lastLines(string(b)))
	}
	return time.Since(start), cmd.ProcessState, nil
}

// raiseMaxMapCount makes vm.max_map_count at least n and returns what
// puts the old value back.
func raiseMaxMapCount(n int) (func(), error) {
	b, err := os.ReadFile(maxMapCount)
	if err != nil {
		return nil, err
	}
	old, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", maxMapCount, err)
	}
	if old >= n {
		return func() {}, nil
	}
	if err := os.WriteFile(maxMapCount, []byte(strconv.Itoa(n)), 0); err != nil {
		return nil, fmt.Errorf("raise vm.max_map_count to %d: %w", n, err)
	}
	return func() {
		if err := os.WriteFile(maxMapCount, []byte(strconv.Itoa(old)), 0); err != nil {
			fmt.Fprintf(os.Stderr, "bench: restore vm.max_map_count to %d: %v\n", old, err)
		}
	}, nil
}

func printScale(out io.Writer, res scaleResult, t *targets) {
	rows := res.rows
	fmt.Fprintf(out, "\n== scale: %dk rounds of munmap + MAP_FIXED among n VMAs (vmachurn), -r replay to /dev/null ==\n", scaleRounds/1000)
	fmt.Fprintf(out, "  %9s %9s %12s %12s %12s %12s %10s %10s\n",
		"VMAs", "events", "JSON M/s", "text M/s", "JSON M/cpu-s", "text M/cpu-s", "peak RSS", "live lost")
	lowest := -1.0
	var first, last *scaleRow
	var live *scaleRow
	for i := range rows {
		r := &rows[i]
		if r.err != nil {
			fmt.Fprintf(out, "  %9d  %v\n", r.vmas, r.err)
			continue
		}
		fmt.Fprintf(out, "  %9d %9d %12.2f %12.2f %12.2f %12.2f %8.1f M %10d\n",
			r.vmas, r.events, r.json/1e6, r.text/1e6, r.jsonCPU/1e6, r.textCPU/1e6, float64(r.rss)/mib, r.liveLost)
		if m := min(r.json, r.text); lowest < 0 || m < lowest {
			lowest = m
		}
		if first == nil {
			first = r
		}
		last = r
		if r.vmas == scaleLive {
			live = r
		}
	}
	fmt.Fprintln(out, "  M/s: events per second of wall time (the target); M/cpu-s: per CPU second of the replay,")
	fmt.Fprintln(out, "  which a busy machine inflates less; live lost: records lost while recording it (default ring)")

	const rateWhat = "replay >= 1M events/s from 1k to 262k VMAs (text and JSON)"
	const flatWhat = "replay at 262k VMAs >= half its rate at 1k, per CPU second (flat)"
	const liveWhat = "0 lost, churn among 64k VMAs live (default ring)"
	const rssWhat = "RSS per 100k VMAs <= 32 MiB (replay, 262k vs 1k)"
	if first == nil || last == first {
		err := fmt.Errorf("too few sizes measured")
		for _, w := range []string{rateWhat, flatWhat, liveWhat, rssWhat} {
			t.unknown(w, err)
		}
		return
	}
	t.add(rateWhat, fmt.Sprintf("lowest %.2f M/s", lowest/1e6), lowest >= 1e6)
	// Per CPU second: the wall-time ratio of two runs is mostly how busy
	// the machine was in each.
	flat := min(last.jsonCPU, last.textCPU) / min(first.jsonCPU, first.textCPU)
	t.add(flatWhat, fmt.Sprintf("%.2fx", flat), flat >= 0.5)
	if live != nil {
		t.add(liveWhat, fmt.Sprintf("%d lost", live.liveLost), live.liveLost == 0)
	} else {
		t.unknown(liveWhat, fmt.Errorf("the %d-VMA run failed", scaleLive))
	}
	per := (float64(last.rss) - float64(first.rss)) / float64(last.vmas-first.vmas) * 100000
	fmt.Fprintf(out, "  RSS per 100k VMAs: %.1f MiB ((%.1f - %.1f MiB) / %dk VMAs more)\n",
		per/mib, float64(last.rss)/mib, float64(first.rss)/mib, (last.vmas-first.vmas)/1000)
	t.add(rssWhat, fmt.Sprintf("%.1f MiB", per/mib), per <= 32*mib)
	printStress(out, res.stress, t)
}

func printStress(out io.Writer, s stressRow, t *targets) {
	const what = "0 lost, one-worker mmap stress live (default ring)"
	fmt.Fprintf(out, "\n== one-worker mmap stress: 256 MiB changed page by page, %d passes (mmapstress), live, default ring, JSON to /dev/null ==\n", stressPasses)
	if s.err != nil {
		fmt.Fprintf(out, "  %v\n", s.err)
		t.unknown(what, s.err)
		return
	}
	fmt.Fprintf(out, "  %d traced calls in %.1f s (%.2f M/s), lost %d\n",
		stressCalls, s.elapsed.Seconds(), float64(stressCalls)/s.elapsed.Seconds()/1e6, s.lost)
	t.add(what, fmt.Sprintf("%d lost", s.lost), s.lost == 0)
}
