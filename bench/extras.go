package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// fullRateResult is the mmap loop under mmtrace with its output counted.
type fullRateResult struct {
	perSec   []float64 // events received per second of the traced loop
	events   uint64    // event lines, all runs
	expected uint64    // the loop's own syscalls (4 per iteration), all runs
	lost     uint64    // summaries' lost_events, all runs
	attach   []time.Duration
	err      error
}

// fullRate runs the mmap loop under mmtrace k times, writing JSON to a
// file, and counts what arrived.
func fullRate(h *harness, w *workload, k int) fullRateResult {
	var r fullRateResult
	out := filepath.Join(h.scratch, "full.json")
	defer os.Remove(out)
	for range k {
		res, err := h.runMmtrace(mmtraceRun{output: out}, w.argv(h))
		if err == nil {
			var c outputCounts
			c, err = countOutputFile(out)
			if err == nil && !c.hasSummary {
				err = fmt.Errorf("mmtrace output has no summary line")
			}
			if err == nil {
				r.perSec = append(r.perSec, float64(c.events)/res.elapsed.Seconds())
				r.events += c.events
				r.expected += 4 * uint64(w.n)
				r.lost += c.lost
				r.attach = append(r.attach, res.attach)
			}
		}
		if err != nil && r.err == nil {
			r.err = fmt.Errorf("full-rate run: %w", err)
		}
	}
	return r
}

// rssResult is mmtrace's peak memory while tracing many short processes.
type rssResult struct {
	procs  int
	images uint64
	peak   uint64 // bytes
	err    error
}

const rssProcs = 1000

func peakRSS(h *harness) rssResult {
	r := rssResult{procs: rssProcs}
	out := filepath.Join(h.scratch, "rss.json")
	defer os.Remove(out)
	res, err := h.runMmtrace(mmtraceRun{output: out, sampleRSS: true}, h.workload("forkexec", strconv.Itoa(rssProcs)))
	if err != nil {
		r.err = fmt.Errorf("1000-process run: %w", err)
		return r
	}
	c, err := countOutputFile(out)
	if err != nil {
		r.err = err
		return r
	}
	r.peak, r.images = res.peakRSS, c.images
	return r
}

// burstResult is several processes mapping at once under one mmtrace.
type burstResult struct {
	procs, each int
	expected    uint64 // mmap + munmap calls of the burst length
	received    uint64
	lost        uint64
	perSec      float64
	err         error
}

const (
	burstProcs = 4
	burstEach  = 200000
	// burstSlack is how many non-burst records (forks, exits) a lost
	// count may include beyond the burst's own.
	burstSlack = 2 * (burstProcs + 1)
)

func runBurst(h *harness) burstResult {
	r := burstResult{procs: burstProcs, each: burstEach, expected: 2 * burstProcs * burstEach}
	out := filepath.Join(h.scratch, "burst.json")
	defer os.Remove(out)
	res, err := h.runMmtrace(mmtraceRun{output: out}, h.workload("burst", strconv.Itoa(burstProcs), strconv.Itoa(burstEach)))
	if err != nil {
		r.err = fmt.Errorf("burst run: %w", err)
		return r
	}
	c, err := countOutputFile(out)
	if err != nil {
		r.err = err
		return r
	}
	r.received, r.lost = c.burst, c.lost
	r.perSec = float64(c.events) / res.elapsed.Seconds()
	return r
}

// accounted: nothing lost and everything received, or what is missing is
// exactly what was reported lost (give or take the burst processes' own
// fork and exit records, which a full ring drops as well).
func (r burstResult) accounted() bool {
	if r.lost == 0 {
		return r.received == r.expected
	}
	sum := r.received + r.lost
	return sum >= r.expected && sum <= r.expected+burstSlack
}

// wCost is the per-round ratio of the mmap loop with -w to without.
func wCost(plain, withW *series) spread {
	return spreadOf(ratios(withW.secs, plain.secs))
}

// replayResult is the consumer's analysis alone: a recording of the mmap
// loop replayed through decode, layout and JSON rendering, no kernel.
type replayResult struct {
	events uint64
	perSec float64 // best of the replays
	err    error
}

func replayRate(h *harness, w *workload) replayResult {
	var r replayResult
	rec := filepath.Join(h.scratch, "replay.mmt")
	out := filepath.Join(h.scratch, "replay.json")
	defer os.Remove(rec)
	defer os.Remove(out)
	if _, err := h.runMmtrace(mmtraceRun{extra: []string{"-w", rec}}, h.workload(w.bin, strconv.Itoa(4*w.n))); err != nil {
		r.err = fmt.Errorf("record for replay: %w", err)
		return r
	}
	for range 3 {
		start := time.Now()
		cmd := exec.Command(h.mmtrace, "-r", rec, "--format", "json", "--output", out)
		if b, err := cmd.CombinedOutput(); err != nil {
			r.err = fmt.Errorf("replay: %w: %s", err, lastLines(string(b)))
			return r
		}
		took := time.Since(start)
		c, err := countOutputFile(out)
		if err != nil {
			r.err = err
			return r
		}
		r.events = c.events
		r.perSec = max(r.perSec, float64(c.events)/took.Seconds())
	}
	return r
}
