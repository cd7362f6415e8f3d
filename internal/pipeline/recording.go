package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/mmtrace/mmtrace/internal/record"
	"github.com/mmtrace/mmtrace/internal/ringsize"
)

// Recording is a file that -w made: the records as the kernel wrote
// them, and the facts of the run in its header.
type Recording struct {
	ctx    context.Context // a signal cuts the replay short
	r      *record.Reader
	path   string
	facts  Facts
	filter *Filter
	stderr io.Writer
}

// fifoNoteAfter is how long opening may wait before mmtrace says what it
// waits for.
const fifoNoteAfter = 200 * time.Millisecond

// OpenRecording opens -r's recording, to replay the processes filter
// picks (nil: all). Opening a FIFO waits for a writer: after a moment
// mmtrace says so on stderr, and the end of ctx ends the wait (*Stopped).
func OpenRecording(ctx context.Context, path string, filter *Filter, stderr io.Writer) (*Recording, error) {
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
		return nil, &Stopped{fmt.Sprintf("while waiting for -r %s (a FIFO no one writes to?)", path)}
	}
	if o.err != nil {
		return nil, o.err
	}
	facts, err := factsOf(o.r.Header())
	if err != nil {
		o.r.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &Recording{ctx: ctx, r: o.r, path: path, facts: facts, filter: filter, stderr: stderr}, nil
}

// Close closes the file.
func (rc *Recording) Close() error { return rc.r.Close() }

// Facts implements Source.
func (rc *Recording) Facts() Facts { return rc.facts }

// Filter implements Source: the processes to replay.
func (rc *Recording) Filter() *Filter { return rc.filter }

// Feed implements Source: it pushes every record of the file, until its
// end or ctx's.
func (rc *Recording) Feed(p *Pipeline) error {
	// The recording's span, from its start to its last record: a fact of
	// the recording, so two replays print the same summary.
	base := rc.r.Header().MonoBase
	p.duration = func() time.Duration {
		if base <= 0 || p.lastTime <= uint64(base) {
			return 0
		}
		return time.Duration(p.lastTime - uint64(base))
	}
	skipped := 0
	var stopped error
	for {
		if rc.ctx.Err() != nil {
			stopped = &Stopped{fmt.Sprintf("at offset %d of %s: the reports cover the records before it", rc.r.Offset(), rc.path)}
			break
		}
		raw, err := rc.r.Next()
		// Records lost to damage keep their numbers: the events after
		// them are numbered as in the live run and an intact copy.
		if n := rc.r.Skipped(); n > skipped {
			p.dec.SkipSeq(uint64(n - skipped))
			skipped = n
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil && rc.ctx.Err() != nil {
			continue // stopped above
		}
		if err != nil {
			return fmt.Errorf("%s: %w", rc.path, err)
		}
		p.Push(raw)
	}
	for _, w := range rc.r.Warnings() {
		fmt.Fprintf(rc.stderr, "mmtrace: %s: warning: %s\n", rc.path, w)
	}
	if n := rc.r.Unknown() + int(p.dec.Unknown()); n > 0 {
		fmt.Fprintf(rc.stderr, "mmtrace: %s: warning: skipped %d records of unknown kinds (recorded by a newer mmtrace?)\n", rc.path, n)
	}
	return stopped
}

// LostAdvice implements Source: a recording knows no ring, so only that
// a larger one helps.
func (rc *Recording) LostAdvice(lost uint64) string { return ringsize.Advice(0, 0, 0, lost) }

// After implements Source: a recording has nothing more to say.
func (rc *Recording) After() {}
