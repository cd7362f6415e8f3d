package loader_test

import (
	"errors"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	"github.com/mmtrace/mmtrace/internal/events"
	"github.com/mmtrace/mmtrace/internal/kerneltest"
	"github.com/mmtrace/mmtrace/internal/loader"
)

// collect drains the tracer until stop says it has seen enough or the
// deadline passes.
func collect(t *testing.T, tr *loader.Tracer, stop func(*events.Event) bool) []events.Event {
	t.Helper()
	dec := events.NewDecoder()
	var (
		rec ringbuf.Record
		out []events.Event
	)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		tr.SetDeadline(time.Now().Add(20 * time.Millisecond))
		err := tr.ReadInto(&rec)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			continue
		}
		if err != nil {
			t.Fatalf("read ring buffer: %v", err)
		}
		var ev events.Event
		if err := dec.Decode(rec.RawSample, &ev); err != nil {
			t.Fatalf("decode: %v", err)
		}
		out = append(out, ev)
		if stop(&ev) {
			return out
		}
	}
	t.Fatalf("timed out; got %d events", len(out))
	return nil
}

// The test's own brk and mmap calls come back with their arguments and
// results.
// Both paths: the syscall tracepoints and (where the kernel allows it)
// the mmap lock.
func TestOwnSyscallsAreSeen(t *testing.T) {
	for _, lockPath := range []bool{false, true} {
		t.Run(map[bool]string{false: "syscall", true: "lock"}[lockPath], func(t *testing.T) {
			ownSyscallsAreSeen(t, lockPath)
		})
	}
}

func ownSyscallsAreSeen(t *testing.T, lockPath bool) {
	kerneltest.RequireRoot(t)
	// The calls below and the Gettid after them must be one thread's: a
	// goroutine can move between threads at any syscall.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tr, err := loader.Open(loader.Config{PIDs: []uint32{uint32(os.Getpid())}, LockPath: lockPath})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer tr.Close()
	if want, why := loader.LockPathPossible(loader.Config{LockPath: lockPath}); tr.Features.LockPath != want {
		t.Fatalf("lock path %v, want %v (%s)", tr.Features.LockPath, want, why)
	}
	t.Logf("%s; preemption off in the lock programs: %v", tr.Features.PathReason, tr.Features.LockUnpreempted)

	f, err := os.CreateTemp(t.TempDir(), "mapped")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(3 * 4096); err != nil {
		t.Fatal(err)
	}
	const hint = 0x6f0000000000
	fileMap, _, errno := unix.Syscall6(unix.SYS_MMAP, hint, 3*4096, unix.PROT_READ, unix.MAP_SHARED, f.Fd(), 4096)
	if errno != 0 {
		t.Fatalf("mmap file: %v", errno)
	}
	anon, _, errno := unix.Syscall6(unix.SYS_MMAP, 0, 5*4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS, ^uintptr(0), 0)
	if errno != 0 {
		t.Fatalf("mmap anon: %v", errno)
	}
	if _, _, errno := unix.Syscall(unix.SYS_MUNMAP, anon, 5*4096, 0); errno != 0 {
		t.Fatalf("munmap: %v", errno)
	}
	cur, _, _ := unix.Syscall(unix.SYS_BRK, 0, 0, 0)
	const marker = 0x1000 // an impossible request: below any break
	unix.Syscall(unix.SYS_BRK, marker, 0, 0)

	tid := uint32(unix.Gettid())
	var sawFile, sawAnon, sawMunmap, sawQuery bool
	var changes []uint32 // ChangeSeq of the file mmap, the anon mmap, the munmap
	seen := collect(t, tr, func(ev *events.Event) bool {
		if ev.TID != tid {
			return false
		}
		switch {
		case ev.Kind == events.KindMmap && uint64(ev.Ret) == uint64(fileMap):
			sawFile = true
			changes = append(changes, ev.ChangeSeq)
			if ev.Addr != hint || ev.Len != 3*4096 || ev.Prot != unix.PROT_READ || ev.Flags != unix.MAP_SHARED || ev.Offset != 4096 || ev.FD != int32(f.Fd()) {
				t.Errorf("file mmap event %+v", ev)
			}
			if ev.Path != f.Name() {
				t.Errorf("file mmap path %q, want %q", ev.Path, f.Name())
			}
		case ev.Kind == events.KindMmap && uint64(ev.Ret) == uint64(anon):
			sawAnon = true
			changes = append(changes, ev.ChangeSeq)
			if ev.Addr != 0 || ev.Len != 5*4096 || ev.FD != -1 || ev.Path != "" {
				t.Errorf("anon mmap event %+v", ev)
			}
		case ev.Kind == events.KindMunmap && ev.Addr == uint64(anon):
			sawMunmap = ev.Len == 5*4096 && ev.Ret == 0
			changes = append(changes, ev.ChangeSeq)
		case ev.Kind == events.KindBrk && ev.Addr == 0:
			sawQuery = uint64(ev.Ret) == uint64(cur)
		case ev.Kind == events.KindBrk && ev.Addr == marker:
			if uint64(ev.Ret) != uint64(cur) {
				t.Errorf("failed brk returned %#x, want the old break %#x", ev.Ret, cur)
			}
			if ev.ABI != events.ABI64 || ev.PID != uint32(os.Getpid()) {
				t.Errorf("brk event header %+v", ev)
			}
			return true
		}
		return false
	})
	if !sawFile || !sawAnon || !sawMunmap || !sawQuery {
		t.Errorf("saw file mmap %v (at %#x), anon mmap %v (at %#x), munmap %v, brk query %v",
			sawFile, fileMap, sawAnon, anon, sawMunmap, sawQuery)
		for _, ev := range seen {
			if ev.TID == tid && ev.Kind == events.KindMmap {
				t.Logf("mmap on this thread: %+v", ev)
			}
		}
	}
	// The three changes were numbered in the order they took effect (the
	// Go runtime's own mmaps may come between them).
	t.Logf("change numbers %v", changes)
	if tr.Features.ChangeOrder {
		if len(changes) != 3 || changes[0] == 0 || changes[0] >= changes[1] || changes[1] >= changes[2] {
			t.Errorf("change numbers of file mmap, anon mmap, munmap: %v, want increasing from 1", changes)
		}
	} else {
		t.Logf("this kernel has no mmap_lock_released tracepoint: changes are not numbered")
	}
}
