package interrupt

import (
	"context"
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/mmtrace/mmtrace/internal/exitstatus"
	"github.com/mmtrace/mmtrace/internal/launch"
)

// Run mode starts its command through this binary.
func TestMain(m *testing.M) {
	if launch.IsLauncher() {
		launch.RunLauncher() // never returns
	}
	os.Exit(m.Run())
}

// Without a signal, run mode stops when its command exits and ends with
// the command's status.
func TestCommandEnd(t *testing.T) {
	for cmd, want := range map[string]error{"true": nil, "false": exitstatus.Silent{Code: 1}} {
		child, err := launch.Start([]string{cmd}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer child.Abandon()
		stop := StopWhen(context.Background(), child)
		if err := child.Release(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-stop:
		case <-time.After(20 * time.Second): // hang guard
			t.Fatalf("%s exited, yet the run did not stop", cmd)
		}
		if got := CommandEnd(context.Background(), child, cmd); got != want {
			t.Errorf("%s: CommandEnd = %v, want %v", cmd, got, want)
		}
	}
}

// The first SIGINT or SIGTERM ends the run's context, naming the signal
// (exit 128+N); later ones are delivered for run mode's "stop now".
func TestSignalCatching(t *testing.T) {
	ctx, stop := Catch(context.Background())
	defer stop()
	if _, ok := signalOf(ctx); ok || laterSignals(ctx) == nil {
		t.Fatal("a signal before any was sent, or no channel for later ones")
	}
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(20 * time.Second): // hang guard
		t.Fatal("SIGTERM did not end the context")
	}
	if sig, ok := signalOf(ctx); !ok || sig != syscall.SIGTERM {
		t.Errorf("signalOf = %v, %v", sig, ok)
	}
	var se exitstatus.Error
	if err := Err(ctx, " while testing"); !errors.As(err, &se) || se.Code != 143 ||
		err.Error() != "interrupted by SIGTERM while testing" {
		t.Errorf("Err = %v (%+v)", err, se)
	}
	// Run mode: the second goes to the wait for the command.
	forced := make(chan syscall.Signal, 4)
	forceExit = func(sig syscall.Signal) { forced <- sig }
	awaitingCommand.Store(true)
	defer awaitingCommand.Store(false)
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-laterSignals(ctx):
		if s != syscall.SIGINT {
			t.Errorf("later signal %v", s)
		}
	case s := <-forced:
		t.Fatalf("%v forced an exit while run mode waits", s)
	case <-time.After(20 * time.Second): // hang guard
		t.Fatal("the second signal was not delivered")
	}
	// Nothing waits, or the one before is not acted on: exit at once.
	for _, awaiting := range []bool{false, true} {
		awaitingCommand.Store(awaiting)
		for range 2 {
			if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			// Two pending signals are one: the second goes once the
			// first is waiting to be acted on.
			for guard := time.Now().Add(20 * time.Second); awaiting && len(laterSignals(ctx)) == 0; time.Sleep(time.Millisecond) {
				if time.Now().After(guard) {
					t.Fatal("the signal did not arrive")
				}
			}
		}
		select {
		case s := <-forced:
			if s != syscall.SIGTERM {
				t.Errorf("forced by %v", s)
			}
		case <-time.After(20 * time.Second): // hang guard
			t.Fatalf("no forced exit (awaiting the command: %v)", awaiting)
		}
		for len(laterSignals(ctx)) > 0 || len(forced) > 0 {
			select {
			case <-laterSignals(ctx):
			case <-forced:
			}
		}
	}
	if laterSignals(context.Background()) != nil {
		t.Error("a context from elsewhere has later signals")
	}
}
