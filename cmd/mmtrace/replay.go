package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/mmtrace/mmtrace/internal/layout"
	"github.com/mmtrace/mmtrace/internal/record"
)

// replay runs a recording through the same analysis as a live session.
func replay(ctx context.Context, opts *options, stdout, stderr io.Writer) (err error) {
	r, err := openRecording(ctx, opts.read, stderr)
	if err != nil {
		return err
	}
	defer r.Close()
	outs, err := openOutputs(ctx, opts, stdout, stderr)
	if err != nil {
		return err
	}
	defer outs.close(&err)
	if err := outs.commit(); err != nil {
		return err
	}

	h := r.Header()
	s := newSession(opts, outs, stderr, h.Options["legacy_va_layout"] == "1")
	s.filter = newPIDFilter(opts.comms, opts.pids)
	s.noIA32 = h.Options["ia32"] == "0"
	if ns, err := strconv.ParseUint(h.Options["mnt_ns"], 10, 32); err == nil {
		s.mntNS = uint32(ns)
	}
	// The recording's span, from its start to its last record: a fact of
	// the recording, so two replays print the same summary.
	s.duration = func() time.Duration {
		if h.MonoBase <= 0 || s.lastTime <= uint64(h.MonoBase) {
			return 0
		}
		return time.Duration(s.lastTime - uint64(h.MonoBase))
	}
	if v := h.Options[procImagesOption]; v != "" {
		var imgs []layout.ProcImage
		if err := json.Unmarshal([]byte(v), &imgs); err != nil {
			return fmt.Errorf("%s: the /proc layouts in its header: %w", opts.read, err)
		}
		for _, p := range imgs {
			if s.filter == nil || s.filter.pids[p.PID] || s.filter.comms[p.Comm] {
				if s.filter != nil {
					s.filter.pids[p.PID] = true
				}
				s.seed(p)
			}
		}
	}
	skipped := 0
	var stopped error // a signal cut the replay short
	for {
		if ctx.Err() != nil {
			stopped = interruption(ctx, " at offset %d of %s: the reports cover the records before it", r.Offset(), opts.read)
			break
		}
		raw, err := r.Next()
		// Records lost to damage keep their numbers: the events after
		// them are numbered as in the live run and an intact copy.
		if n := r.Skipped(); n > skipped {
			s.dec.SkipSeq(uint64(n - skipped))
			skipped = n
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil && ctx.Err() != nil {
			continue // stopped above
		}
		if err != nil {
			return fmt.Errorf("%s: %w", opts.read, err)
		}
		s.handle(raw)
	}
	for _, w := range r.Warnings() {
		fmt.Fprintf(stderr, "mmtrace: %s: warning: %s\n", opts.read, w)
	}
	if n := r.Unknown() + int(s.dec.Unknown()); n > 0 {
		fmt.Fprintf(stderr, "mmtrace: %s: warning: skipped %d records of unknown kinds (recorded by a newer mmtrace?)\n", opts.read, n)
	}
	found, err := s.finish()
	if err != nil {
		return err
	}
	if stopped != nil {
		return stopped
	}
	if opts.check && found {
		return exitStatus{opts.checkStatus}
	}
	return nil
}

// openRecording opens -r's recording. Opening a FIFO waits for a
// writer: after a moment mmtrace says so, and a signal ends the wait.
func openRecording(ctx context.Context, path string, stderr io.Writer) (*record.Reader, error) {
	type opened struct {
		r   *record.Reader
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		r, err := record.OpenContext(ctx, path)
		ch <- opened{r, err}
	}()
	var o opened
	select {
	case o = <-ch:
	case <-time.After(fifoNoteAfter):
		fmt.Fprintf(stderr, "mmtrace: waiting for a recording to come through -r %s\n", path)
		o = <-ch
	}
	if o.err != nil && ctx.Err() != nil {
		return nil, interruption(ctx, " while waiting for -r %s (a FIFO no one writes to?)", path)
	}
	return o.r, o.err
}

// fifoNoteAfter is how long an open or the first read may wait before
// mmtrace says what it waits for.
const fifoNoteAfter = 200 * time.Millisecond
