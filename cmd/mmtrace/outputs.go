package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/mmtrace/mmtrace/internal/outfile"
	"github.com/mmtrace/mmtrace/internal/pipeline"
	"github.com/mmtrace/mmtrace/internal/render"
)

// outputs are the files a run writes (--output, -w, --svg), all opened and
// checked before anything is traced or run: a refused or unwritable path
// costs nothing, and under sudo they belong to the user who asked.
type outputs struct {
	out       io.Writer // rendered output: --output, or stdout
	colorFile *os.File  // the terminal out may be, for colour and width
	output    *outfile.File
	rec       *outfile.File // -w
	svg       *outfile.File // --svg
	set       *outfile.Set
	committed bool
}

// openOutputs opens the run's output files. A path refused by a rule
// (a planted link, a hard link, an output that is an input, a directory)
// is printed here and returned as exit status 2, as a usage error is.
// Existing files are not truncated until commit.
//
// Opening a FIFO waits for its reader; mmtrace says so, and a signal ends
// the wait (exit 128+N).
func openOutputs(ctx context.Context, opts *options, stdout, stderr io.Writer) (*outputs, error) {
	o := &outputs{out: stdout}
	o.colorFile, _ = stdout.(*os.File)
	u, err := outfile.Invoker()
	if err != nil {
		return nil, refused(stderr, err)
	}
	o.set = outfile.New(u)
	o.set.Waiting = func(flag, path string) {
		fmt.Fprintf(stderr, "mmtrace: waiting for a reader of %s %s (a FIFO)\n", flag, path)
	}
	if opts.read != "" {
		o.set.Input("-r", opts.read)
	}
	for _, f := range []struct {
		flag, path string
		kind       outfile.Kind
		dst        **outfile.File
	}{
		{"--output", opts.output, outfile.Output, &o.output},
		{"-w", opts.write, outfile.Recording, &o.rec},
		{"--svg", opts.svg, outfile.Output, &o.svg},
	} {
		if f.path == "" {
			continue
		}
		if *f.dst, err = o.set.OpenContext(ctx, f.flag, f.path, f.kind); err != nil {
			o.set.Abort()
			if ctx.Err() != nil {
				return nil, interruption(ctx, " while waiting for a reader of %s %s (a FIFO)", f.flag, f.path)
			}
			var r *outfile.Refusal
			if errors.As(err, &r) {
				return nil, refused(stderr, err)
			}
			return nil, err
		}
	}
	if o.output != nil {
		o.out, o.colorFile = o.output, nil
	}
	if note := o.set.Note(); note != "" {
		fmt.Fprintf(stderr, "mmtrace: note: %s\n", note)
	}
	return o, nil
}

func refused(stderr io.Writer, err error) error {
	fmt.Fprintf(stderr, "mmtrace: %v\n", err)
	return exitStatus{exitUsage}
}

// commit truncates the existing files: the run goes ahead.
func (o *outputs) commit() error {
	o.committed = true
	return o.set.Commit()
}

// close closes the files, keeping the first error in *err. A run that
// never committed (it failed before it started) removes the files it
// created and leaves existing ones as they were.
func (o *outputs) close(err *error) {
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

// pipeline hands the open files to the pipeline (an absent one is nil).
func (o *outputs) pipeline(stderr io.Writer) pipeline.Outputs {
	p := pipeline.Outputs{Out: o.out, Stderr: stderr}
	if o.svg != nil {
		p.SVG = o.svg
	}
	if o.rec != nil {
		p.Record = o.rec
	}
	return p
}

// colorWanted applies --color to the terminal the output may be.
func colorWanted(mode string, f *os.File) bool {
	switch mode {
	case "always":
		return true
	case "never":
		return false
	}
	return f != nil && render.ColorWanted(f)
}
