// Package kernelreport writes --probe-kernel's answer, the loader's
// KernelReport, for people (a table) or for CI (one JSON line).
package kernelreport

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/mmtrace/mmtrace/internal/loader"
)

// line is the JSON form: one object, "type" first, like every other
// line mmtrace writes.
type line struct {
	Type string `json:"type"`
	*loader.KernelReport
}

// WriteJSON writes r as one {"type":"kernel",...} line.
func WriteJSON(w io.Writer, r *loader.KernelReport) error {
	b, err := json.Marshal(line{"kernel", r})
	if err != nil {
		return fmt.Errorf("encode kernel report: %w", err)
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// WriteText writes r as a verdict, a table of checks, the path mmtrace
// takes and what its reports will call uncertain.
func WriteText(w io.Writer, r *loader.KernelReport) error {
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

// Refusal is the sentence for stderr when mmtrace cannot trace here
// (the first reason; the report lists them all), "" when it can.
func Refusal(r *loader.KernelReport) string {
	if r.CanTrace {
		return ""
	}
	if len(r.Blockers) == 0 { // a report that says no must say why
		return "cannot trace on this kernel"
	}
	more := ""
	if n := len(r.Blockers) - 1; n > 0 {
		more = fmt.Sprintf(" (and %d more reasons, listed above)", n)
	}
	return fmt.Sprintf("cannot trace on this kernel: %s%s", r.Blockers[0], more)
}
