// Package outputs opens the files one mmtrace run writes (--output, -w,
// --svg), all before anything is traced or run: a refused or unwritable
// path costs nothing, and under sudo they belong to the user who asked.
package outputs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/mmtrace/mmtrace/internal/exitstatus"
	"github.com/mmtrace/mmtrace/internal/interrupt"
	"github.com/mmtrace/mmtrace/internal/outfile"
	"github.com/mmtrace/mmtrace/internal/render"
)

// Paths are the run's files by flag; "" for one not given. Read is the
// recording -r reads, which no output may be.
type Paths struct{ Read, Output, Write, SVG string }

// Outputs are a run's open files.
type Outputs struct {
	Out       io.Writer // rendered output: --output, or stdout
	colorFile *os.File  // the terminal Out may be, for colour and width
	output    *outfile.File
	rec       *outfile.File // -w
	svg       *outfile.File // --svg
	set       *outfile.Set
	committed bool
}

// Open opens the run's output files. A path refused by a rule (a planted
// link, a hard link, an output that is an input, a directory) is printed
// here and returned as exit status 2, as a usage error is. Existing files
// are not truncated until Commit.
//
// Opening a FIFO waits for its reader; mmtrace says so, and a signal ends
// the wait (exit 128+N).
func Open(ctx context.Context, p Paths, stdout, stderr io.Writer) (*Outputs, error) {
	o := &Outputs{Out: stdout}
	o.colorFile, _ = stdout.(*os.File)
	u, err := outfile.Invoker()
	if err != nil {
		return nil, refused(stderr, err)
	}
	o.set = outfile.New(u)
	o.set.Waiting = func(flag, path string) {
		fmt.Fprintf(stderr, "mmtrace: waiting for a reader of %s %s (a FIFO)\n", flag, path)
	}
	if p.Read != "" {
		o.set.Input("-r", p.Read)
	}
	for _, f := range []struct {
		flag, path string
		kind       outfile.Kind
		dst        **outfile.File
	}{
		{"--output", p.Output, outfile.Output, &o.output},
		{"-w", p.Write, outfile.Recording, &o.rec},
		{"--svg", p.SVG, outfile.Output, &o.svg},
	} {
		if f.path == "" {
			continue
		}
		if *f.dst, err = o.set.OpenContext(ctx, f.flag, f.path, f.kind); err != nil {
			o.set.Abort()
			if ctx.Err() != nil {
				return nil, interrupt.Err(ctx, " while waiting for a reader of %s %s (a FIFO)", f.flag, f.path)
			}
			var r *outfile.Refusal
			if errors.As(err, &r) {
				return nil, refused(stderr, err)
			}
			return nil, err
		}
	}
	if o.output != nil {
		o.Out, o.colorFile = o.output, nil
	}
	if note := o.set.Note(); note != "" {
		fmt.Fprintf(stderr, "mmtrace: note: %s\n", note)
	}
	return o, nil
}

func refused(stderr io.Writer, err error) error {
	fmt.Fprintf(stderr, "mmtrace: %v\n", err)
	return exitstatus.Silent{Code: exitstatus.Usage}
}

// Commit truncates the existing files: the run goes ahead.
func (o *Outputs) Commit() error {
	o.committed = true
	return o.set.Commit()
}

// Close closes the files, keeping the first error in *err. A run that
// never committed (it failed before it started) removes the files it
// created and leaves existing ones as they were.
func (o *Outputs) Close(err *error) {
	if !o.committed {
		o.set.Abort()
		return
	}
	for _, f := range []*outfile.File{o.output, o.rec, o.svg} {
		if f == nil {
			continue
		}
		if cerr := f.Close(); cerr != nil && *err == nil {
			*err = fmt.Errorf("%s %s: %w", f.Flag, f.Path, cerr)
		}
	}
}

// Record is the -w file, nil (not a nil *File in an interface) without -w.
func (o *Outputs) Record() io.Writer {
	if o.rec == nil {
		return nil
	}
	return o.rec
}

// SVG is the --svg file, nil without --svg.
func (o *Outputs) SVG() io.Writer {
	if o.svg == nil {
		return nil
	}
	return o.svg
}

// Color applies --color (auto, always, never) to the terminal Out may be.
func (o *Outputs) Color(mode string) bool {
	switch mode {
	case "always":
		return true
	case "never":
		return false
	}
	return o.colorFile != nil && render.ColorWanted(o.colorFile)
}

// Width is the terminal's width when Out is one, else 0.
func (o *Outputs) Width() int { return render.TerminalWidth(o.colorFile) }
