package outfile

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Opening a FIFO nobody reads waits for a reader, says so once, and gives
// up when the context ends, however long the wait (a blocking open could
// not be interrupted). With a reader, the file it gives is blocking.
func TestOpenFIFOWithoutReaderIsInterruptible(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	s := New(User{UID: os.Geteuid(), GID: os.Getegid()})
	waiting := make(chan string, 4)
	s.Waiting = func(flag, path string) { waiting <- flag + " " + path }
	ctx, cancel := context.WithCancelCause(context.Background())
	stop := errors.New("stop")
	done := make(chan error, 1)
	go func() {
		_, err := s.OpenContext(ctx, "-w", fifo, Recording)
		done <- err
	}()
	select {
	case w := <-waiting:
		if w != "-w "+fifo {
			t.Errorf("waiting for %q", w)
		}
	case <-time.After(20 * time.Second): // hang guard
		t.Fatal("no word of waiting for a reader")
	}
	cancel(stop)
	select {
	case err := <-done:
		if !errors.Is(err, stop) {
			t.Errorf("open ended with %v, want the context's cause", err)
		}
	case <-time.After(20 * time.Second): // hang guard
		t.Fatal("the open did not give up when the context ended")
	}
	if len(waiting) != 0 {
		t.Errorf("said it waits more than once")
	}

	// A reader comes: the open succeeds, blocking.
	r, err := os.OpenFile(fifo, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	f, err := New(User{UID: os.Geteuid(), GID: os.Getegid()}).OpenContext(context.Background(), "-w", fifo, Recording)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Through Control: Fd would make the descriptor blocking.
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var fl int
	if cerr := rc.Control(func(fd uintptr) { fl, err = unix.FcntlInt(fd, unix.F_GETFL, 0) }); cerr != nil || err != nil || fl&unix.O_NONBLOCK != 0 {
		t.Errorf("the FIFO is non-blocking (flags %#x, %v, %v)", fl, cerr, err)
	}
}
