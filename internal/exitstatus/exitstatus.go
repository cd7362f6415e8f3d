// Package exitstatus is how mmtrace's errors carry the status it exits
// with: a traced command's own, the check's, 128+N for signal N, 2 for a
// refused path. The README's "Exit statuses" are these.
package exitstatus

import (
	"errors"
	"fmt"
)

// Statuses besides a traced command's own.
const (
	OK       = 0
	Failure  = 1
	Usage    = 2
	Squeezed = 3 // --check found a squeezed image or a failed brk (--check-status changes it)
)

// Silent ends mmtrace with Code and prints nothing: a traced command's
// status, the check's, or a refusal already printed.
type Silent struct{ Code int }

func (e Silent) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// Error is printed as usual but ends mmtrace with its own Code, such as
// 130 for a run SIGINT cut short (launch.Error is another such error).
type Error struct {
	Code int
	Err  error
}

func (e Error) Error() string   { return e.Err.Error() }
func (e Error) Unwrap() error   { return e.Err }
func (e Error) ExitStatus() int { return e.Code }

// Of is the status err ends mmtrace with, and whether err is to be printed.
func Of(err error) (code int, print bool) {
	var silent Silent
	var coded interface{ ExitStatus() int }
	switch {
	case err == nil:
		return OK, false
	case errors.As(err, &silent):
		return silent.Code, false
	case errors.As(err, &coded):
		return coded.ExitStatus(), true
	}
	return Failure, true
}
