package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/mmtrace/mmtrace/internal/loader"
)

// probeKernel is --probe-kernel: what this kernel lets mmtrace see, as
// text or one JSON line; exit 1 when mmtrace cannot trace here at all.
func probeKernel(opts *options, stdout, stderr io.Writer) int {
	r := loader.Probe(loader.Config{
		BTFPath:    opts.btf,
		NoIA32:     opts.noIA32,
		LockPath:   opts.lockPath,
		NoExecVMAs: opts.noExecVMAs,
		Backups:    opts.backups,
	})
	var err error
	if opts.format == "json" {
		err = writeProbeJSON(stdout, r)
	} else {
		err = writeProbeText(stdout, r)
	}
	if err != nil {
		fmt.Fprintf(stderr, "mmtrace: write output: %v\n", err)
		return exitError
	}
	if !r.CanTrace {
		more := ""
		if n := len(r.Blockers) - 1; n > 0 {
			more = fmt.Sprintf(" (and %d more reasons, listed above)", n)
		}
		fmt.Fprintf(stderr, "mmtrace: cannot trace on this kernel: %s%s\n", r.Blockers[0], more)
		return exitError
	}
	return exitOK
}

// probeLine is the JSON form: one object, "type" first, like every other
// line mmtrace writes.
type probeLine struct {
	Type string `json:"type"`
	*loader.KernelReport
}

func writeProbeJSON(w io.Writer, r *loader.KernelReport) error {
	b, err := json.Marshal(probeLine{"kernel", r})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

func writeProbeText(w io.Writer, r *loader.KernelReport) error {
	verdict := "mmtrace can trace here"
	if !r.CanTrace {
		verdict = "mmtrace cannot trace here"
	}
	fmt.Fprintf(w, "kernel %s (%s): %s\n\n", r.Kernel, r.Machine, verdict)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  result\tneeded\tcheck\tdetail")
	for _, c := range r.Checks {
		need := "optional"
		if c.Required {
			need = "required"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", c.Result, need, c.Name, c.Detail)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\npath mmtrace takes here\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range r.Path {
		why := ""
		if c.Why != "" {
			why = " (" + c.Why + ")"
		}
		fmt.Fprintf(tw, "  %s\t%s%s\n", c.What, c.Choice, why)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nwhat reports will call uncertain or note\n")
	for _, u := range r.Uncertain {
		fmt.Fprintf(w, "  - %s\n", u)
	}
	if len(r.Blockers) > 0 {
		fmt.Fprintf(w, "\nwhy mmtrace cannot trace here\n")
		for _, b := range r.Blockers {
			fmt.Fprintf(w, "  - %s\n", b)
		}
	}
	_, err := fmt.Fprintln(w)
	return err
}
