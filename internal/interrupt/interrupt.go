// Package interrupt is mmtrace's rule for SIGINT and SIGTERM: when a
// signal ends a run, when it goes on to run mode's command, and which
// exit status and sentence a run it cut short ends with.
package interrupt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mmtrace/mmtrace/internal/exitstatus"
	"github.com/mmtrace/mmtrace/internal/launch"
)

// What SIGINT and SIGTERM do (README, "Exit statuses"):
//   - while mmtrace waits or reads (opening a FIFO, replaying), it stops
//     at once: a replay reports what it read; it exits 128+N for signal N
//     with one sentence saying where it was;
//   - tracing with no command, the signal is the normal end: drain,
//     report the live images, exit 0;
//   - in run mode the signal goes on to CMD (not a SIGINT that the
//     terminal sent to CMD itself, Ctrl-C in CMD's foreground group), and
//     mmtrace traces on until CMD exits, then exits with CMD's status
//     (128+N if the signal killed it). A second signal, or CMD still
//     running Grace later, stops mmtrace at once: CMD is reported
//     as stopped and left running, and mmtrace exits 128+N;
//   - a signal that nothing waits for, or that finds the one before it
//     not yet acted on (mmtrace is stuck writing to an output no one
//     reads, say), ends mmtrace there and then, with exit 128+N and a
//     sentence, without the rest of its output.

// Grace is how long run mode waits for CMD to exit once it has
// passed a signal on; CI systems usually kill a job 2-10 s after asking.
const Grace = 5 * time.Second

// interrupted is the cause of the run's context once a signal arrived.
type interrupted struct{ sig syscall.Signal }

func (e interrupted) Error() string { return "interrupted by " + unix.SignalName(e.sig) }

type laterSignalsKey struct{}

// awaitingCommand is set while run mode traces CMD: a second signal then
// stops the wait for CMD, where it would otherwise end mmtrace at once.
var awaitingCommand atomic.Bool

// AwaitCommand says whether run mode now traces its command. Set it
// before anyone can see that the command runs ("tracing" printed, the
// command released): whoever signals mmtrace then must find the run-mode
// handling.
func AwaitCommand(on bool) { awaitingCommand.Store(on) }

// forceExit ends mmtrace on a second signal that nothing waits for.
var forceExit = func(sig syscall.Signal) {
	fmt.Fprintf(os.Stderr, "mmtrace: %v again: exiting at once, without the rest of the output\n", interrupted{sig})
	os.Exit(128 + int(sig))
}

// Catch returns a context that ends at the first SIGINT or
// SIGTERM, with an interrupted cause; later ones go to laterSignals(ctx).
func Catch(parent context.Context) (context.Context, func()) {
	ch := make(chan os.Signal, 4)
	more := make(chan os.Signal, 4)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithCancelCause(context.WithValue(parent, laterSignalsKey{}, (<-chan os.Signal)(more)))
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-ch:
				if ctx.Err() == nil {
					cancel(interrupted{s.(syscall.Signal)})
					continue
				}
				if !awaitingCommand.Load() || len(more) > 0 {
					forceExit(s.(syscall.Signal))
					continue
				}
				select {
				case more <- s:
				default:
				}
			case <-done:
				return
			}
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(done)
		cancel(nil)
	}
}

// laterSignals delivers the signals after the first (nil, which never
// delivers, for a context from elsewhere).
func laterSignals(ctx context.Context) <-chan os.Signal {
	ch, _ := ctx.Value(laterSignalsKey{}).(<-chan os.Signal)
	return ch
}

// signalOf is the signal that ended ctx, if one did.
func signalOf(ctx context.Context) (syscall.Signal, bool) {
	var in interrupted
	if ctx.Err() != nil && errors.As(context.Cause(ctx), &in) {
		return in.sig, true
	}
	return 0, false
}

// Err is the error that ends a run a signal cut short: exit
// 128+N, and a sentence saying what was cut short: format follows
// "interrupted by SIGINT", e.g. " while ...".
func Err(ctx context.Context, format string, a ...any) error {
	sig, ok := signalOf(ctx)
	if !ok {
		return fmt.Errorf("%v"+format, append([]any{context.Cause(ctx)}, a...)...)
	}
	return exitstatus.Error{Code: 128 + int(sig), Err: fmt.Errorf("%v"+format, append([]any{interrupted{sig}}, a...)...)}
}

// StopWhen is closed when a live run should end: at the first signal or,
// in run mode, when the command exits, or after a signal passed on to
// the command when it has not exited Grace later or a second
// signal comes.
func StopWhen(ctx context.Context, child *launch.Cmd) <-chan struct{} {
	stop := make(chan struct{})
	go func() {
		defer close(stop)
		if child == nil {
			<-ctx.Done()
			return
		}
		defer awaitingCommand.Store(false) // a signal from now on ends mmtrace
		select {
		case <-child.Done():
			return
		case <-ctx.Done():
		}
		sig, ok := signalOf(ctx)
		if !ok {
			return
		}
		child.Forward(sig)
		select {
		case <-child.Done():
		case <-laterSignals(ctx):
		case <-time.After(Grace):
		}
	}()
	return stop
}

// CommandEnd is how run mode ends once tracing stopped: with the
// command's own status, or, when a second signal or Grace ended the wait
// while it still runs, 128+N and a sentence saying it is left running.
// name is the command as the user gave it.
func CommandEnd(ctx context.Context, child *launch.Cmd, name string) error {
	if !child.Exited() {
		return Err(ctx, ": %s (pid %d) had not exited when mmtrace stopped (on a second signal, or %v after the first): "+
			"it is left running, untraced", name, child.PID(), Grace)
	}
	if st := child.Status(); st != 0 {
		return exitstatus.Silent{Code: st}
	}
	return nil
}
