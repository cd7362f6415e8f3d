package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/mmtrace/mmtrace/internal/exitstatus"
	"github.com/mmtrace/mmtrace/internal/interrupt"
	"github.com/mmtrace/mmtrace/internal/launch"
	"github.com/mmtrace/mmtrace/internal/live"
	"github.com/mmtrace/mmtrace/internal/loader"
	"github.com/mmtrace/mmtrace/internal/outputs"
	"github.com/mmtrace/mmtrace/internal/pipeline"
	"github.com/mmtrace/mmtrace/internal/procfs"
	"github.com/mmtrace/mmtrace/internal/render"
)

// trace runs a live session until a signal or, in run mode, the command's end.
func trace(ctx context.Context, opts *options, stdout, stderr io.Writer) (err error) {
	// A --pid with no address space is refused before anything is
	// opened or attached; the pipeline checks again once attached.
	for _, p := range opts.pids32 {
		if err := procfs.CheckTraceable(p); err != nil {
			return err
		}
	}
	outs, err := outputs.Open(ctx, paths(opts), stdout, stderr)
	if err != nil {
		return err
	}
	defer outs.Close(&err)

	lo := live.Options{
		Loader: loader.Config{
			Comms:       opts.comms,
			PIDs:        slices.Clone(opts.pids32), // run mode's command joins them
			RingSize:    opts.ringSize,
			BTFPath:     opts.btf,
			NoExecVMAs:  opts.noExecVMAs,
			Backups:     opts.backups,
			BackupsOnly: opts.backupsOnly,
			NoIA32:      opts.noIA32,
			LockPath:    opts.lockPath,
			TraceAll:    len(opts.comms) == 0 && len(opts.pids) == 0 && len(opts.command) == 0,
		},
		ProcPIDs: opts.pids32,
		Verbose:  opts.verbose,
		Stderr:   stderr,
	}
	// Run mode: start CMD held before its exec, so its pid is in the
	// filter before the first exec we want to see.
	var child *launch.Cmd
	if len(opts.command) > 0 {
		if child, err = launch.Start(opts.command, opts.runAs); err != nil {
			return err
		}
		defer child.Abandon()
		lo.Loader.PIDs = append(lo.Loader.PIDs, uint32(child.PID()))
	}
	src, err := live.Open(lo)
	if err != nil {
		return err
	}
	defer src.Close()
	// Tracing goes ahead: now existing output files may be truncated.
	if err := outs.Commit(); err != nil {
		return err
	}

	// Run mode: from here a second signal ends the wait for CMD instead
	// of mmtrace itself. Set before "tracing" is printed and CMD released:
	// whoever signals us on seeing either must find the run-mode handling.
	interrupt.AwaitCommand(child != nil)
	defer interrupt.AwaitCommand(false)
	fmt.Fprintf(stderr, "mmtrace: tracing %s (attached in %d ms)\n", describeTargets(opts), src.Attached().Milliseconds())
	if child != nil {
		if ctx.Err() != nil {
			// Never started: the launcher is abandoned.
			return interrupt.Err(ctx, " before %s started", opts.command[0])
		}
		if err := child.Release(); err != nil {
			return err
		}
	}
	src.StopWhen(interrupt.StopWhen(ctx, child))
	if err := analyse(src, opts, outs, stderr); err != nil {
		return err
	}
	if child != nil {
		return interrupt.CommandEnd(ctx, child, opts.command[0])
	}
	return nil
}

// replay runs a recording through the same pipeline as a live session.
func replay(ctx context.Context, opts *options, stdout, stderr io.Writer) (err error) {
	rec, err := pipeline.OpenRecording(ctx, opts.read, pipeline.NewFilter(opts.comms, opts.pids32), stderr)
	if err != nil {
		return stopped(ctx, err)
	}
	defer rec.Close()
	outs, err := outputs.Open(ctx, paths(opts), stdout, stderr)
	if err != nil {
		return err
	}
	defer outs.Close(&err)
	if err := outs.Commit(); err != nil {
		return err
	}
	return stopped(ctx, analyse(rec, opts, outs, stderr))
}

// analyse runs src through the pipeline, the one path of live tracing
// and replay; with --check, what it found becomes the exit status.
func analyse(src pipeline.Source, opts *options, outs *outputs.Outputs, stderr io.Writer) error {
	popts := pipeline.Options{
		Render: render.Options{
			Color:            outs.Color(opts.color),
			Width:            outs.Width(),
			SqueezeThreshold: opts.threshold,
			Verbose:          opts.verbose,
		},
		JSON:  opts.format == "json",
		Check: opts.check,
		Args:  opts.args,
	}
	found, err := pipeline.Run(src, popts, pipeline.Outputs{Out: outs.Out, Record: outs.Record(), SVG: outs.SVG(), Stderr: stderr})
	if err == nil && opts.check && found {
		return exitstatus.Silent{Code: opts.checkStatus}
	}
	return err
}

// stopped turns the pipeline's "a signal cut this short" into exit 128+N
// with its sentence.
func stopped(ctx context.Context, err error) error {
	var st *pipeline.Stopped
	if errors.As(err, &st) {
		return interrupt.Err(ctx, " %s", st.Where)
	}
	return err
}

// paths are the files the run reads and writes.
func paths(opts *options) outputs.Paths {
	return outputs.Paths{Read: opts.read, Output: opts.output, Write: opts.write, SVG: opts.svg}
}

// describeTargets names what is traced, for the "tracing" line.
func describeTargets(opts *options) string {
	var parts []string
	for _, c := range opts.comms {
		parts = append(parts, "comm "+c)
	}
	for _, p := range opts.pids {
		parts = append(parts, "pid "+strconv.FormatUint(uint64(p), 10))
	}
	if len(opts.command) > 0 {
		parts = append(parts, strings.Join(opts.command, " "))
	}
	if len(parts) == 0 {
		return "every new process"
	}
	return strings.Join(parts, ", ") + " and children"
}
