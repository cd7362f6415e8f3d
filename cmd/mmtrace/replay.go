package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/mmtrace/mmtrace/internal/record"
)

// replay runs a recording through the same analysis as a live session.
func replay(ctx context.Context, opts *options, stdout, stderr io.Writer) (err error) {
	r, err := record.Open(opts.read)
	if err != nil {
		return err
	}
	defer r.Close()
	out, colorFile, closeOut, err := openOutput(opts.output, stdout)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := closeOut(); cerr != nil && err == nil {
			err = cerr
		}
	}()

	h := r.Header()
	s := newSession(opts, out, stderr, h.Options["legacy_va_layout"] == "1", colorFile)
	s.filter = newPIDFilter(opts.comms, opts.pids)
	if h.Options["exec_vmas"] == "0" {
		fmt.Fprintf(stderr, "mmtrace: note: recorded on a kernel without the VMA iterator; exec-time mappings came from /proc\n")
	}
	for ctx.Err() == nil {
		raw, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w", opts.read, err)
		}
		s.handle(raw)
	}
	for _, w := range r.Warnings() {
		fmt.Fprintf(stderr, "mmtrace: %s: warning: %s\n", opts.read, w)
	}
	found, err := s.finish()
	if err != nil {
		return err
	}
	if opts.check && found {
		return exitStatus{exitSqueezed}
	}
	return nil
}
