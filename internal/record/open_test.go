package record

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// hangGuard bounds waits for something that should happen at once: a
// guard against a stuck test, not a timing check.
const hangGuard = 20 * time.Second

// waitErr waits for an error from done, failing if it never comes.
func waitErr(t *testing.T, done <-chan error, what string) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(hangGuard):
		t.Fatalf("%s: still blocked after %v", what, hangGuard)
		return nil
	}
}

// A FIFO no one writes to blocks the open; the context's end ends it.
func TestOpenContextFIFOWithoutWriter(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	stop := errors.New("stop")
	done := make(chan error, 1)
	go func() {
		_, err := OpenContext(ctx, fifo)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond) // likely blocked by now; either way the answer is the same
	cancel(stop)
	if err := waitErr(t, done, "open"); !errors.Is(err, stop) {
		t.Errorf("OpenContext = %v, want the context's cause", err)
	}
}

// A writer that sends the header and then goes quiet blocks Next; the
// context's end ends it, with the context's cause.
func TestOpenContextQuietWriter(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	recs := sampleRecords(3)
	data := write(t, recs, false)
	go func() {
		w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			return
		}
		w.Write(data)
		t.Cleanup(func() { w.Close() })
	}()
	ctx, cancel := context.WithCancelCause(context.Background())
	r, err := OpenContext(ctx, fifo)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for range recs {
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
	}
	stop := errors.New("stop")
	done := make(chan error, 1)
	go func() {
		_, err := r.Next()
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	cancel(stop)
	if err := waitErr(t, done, "Next"); !errors.Is(err, stop) {
		t.Errorf("Next = %v, want the context's cause", err)
	}
}
