package main

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"
)

// The first SIGINT or SIGTERM ends the run's context, naming the signal
// (exit 128+N); later ones are delivered for run mode's "stop now".
func TestSignalCatching(t *testing.T) {
	ctx, stop := catchSignals(context.Background())
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
	var se statusError
	if err := interruption(ctx, " while testing"); !errors.As(err, &se) || se.code != 143 ||
		err.Error() != "interrupted by SIGTERM while testing" {
		t.Errorf("interruption = %v (%+v)", err, se)
	}
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-laterSignals(ctx):
		if s != syscall.SIGINT {
			t.Errorf("later signal %v", s)
		}
	case <-time.After(20 * time.Second): // hang guard
		t.Fatal("the second signal was not delivered")
	}
	if laterSignals(context.Background()) != nil {
		t.Error("a context from elsewhere has later signals")
	}
}
