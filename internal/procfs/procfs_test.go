package procfs

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/mmtrace/mmtrace/internal/events"
	"github.com/mmtrace/mmtrace/internal/kerneltest"
)

// A process with no address space of its own has no layout to start
// from: --pid of a kernel thread or a zombie is refused in one sentence,
// not reported as an empty layout (mmap_base 0x0, 128 TiB of headroom).
func TestPIDWithoutAddressSpace(t *testing.T) {
	for _, c := range []struct {
		name, stat, want string
	}{
		{"kthread", "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 21 0 0 18446744073709551615 0 0 0 0 0 0 0 2147483647 0 1 0 0 0 1 0 0 0 0 0 0 0 0 0 0 0 0 0",
			"pid 2 (kthreadd) is a kernel thread: it has no address space to trace"},
		{"zombie", "77 (a b) c) Z 1 77 77 0 -1 4227148 0 0 0 0 0 0 0 0 20 0 1 0 99 0 0 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0",
			"pid 77 (a b) c) is a zombie: it has exited and has no address space to trace"},
		{"zombie leader", "77 (srv) Z 1 77 77 0 -1 4227148 0 0 0 0 0 0 0 0 20 0 5 0 99 0 0 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0",
			"pid 77 (srv): its main thread has exited while other threads run on"},
		{"running", "77 (bash) S 1 77 77 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 99 0 0 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0", ""},
	} {
		err := statTraceable(uint32(pidOf(c.stat)), []byte(c.stat))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.HasPrefix(err.Error(), c.want)):
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

func pidOf(stat string) int {
	var pid int
	fmt.Sscan(stat, &pid)
	return pid
}

// The same against the running kernel: kthreadd, and a zombie this test
// makes (a child it does not wait for).
func TestPIDKernelThreadAndZombie(t *testing.T) {
	if b, err := os.ReadFile("/proc/2/stat"); err != nil || !bytes.Contains(b, []byte("(kthreadd)")) {
		t.Skip("pid 2 is not kthreadd here (a pid namespace?)")
	}
	if _, err := ReadImage(2); err == nil || err.Error() != "pid 2 (kthreadd) is a kernel thread: it has no address space to trace" {
		t.Errorf("--pid 2: %v", err)
	}
	pid := kerneltest.Zombie(t)
	want := fmt.Sprintf("pid %d (true) is a zombie: it has exited and has no address space to trace", pid)
	if _, err := ReadImage(uint32(pid)); err == nil || err.Error() != want {
		t.Errorf("--pid of a zombie: %v, want %q", err, want)
	}
}

// This test's own process, read as --pid reads one: its stat fields and
// the heap found in its maps, and the snapshot that stands in for the
// kernel's exec-time walk.
func TestReadImageSelf(t *testing.T) {
	p, err := ReadImage(uint32(os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	if p.Comm != "procfs.test" || p.PPID != uint32(os.Getppid()) || p.StartStack == 0 || p.StartBrk == 0 || p.Brk < p.StartBrk {
		t.Errorf("image %+v", p)
	}
	if p.ABI != events.ABI64 || len(p.Maps) == 0 {
		t.Errorf("abi %v, %d maps", p.ABI, len(p.Maps))
	}
	var stack bool
	for _, v := range ExecVMAs(uint32(os.Getpid())) {
		if v.Path == "[vsyscall]" {
			t.Error("the gate page is in the snapshot")
		}
		if v.Path == "[stack]" {
			stack = v.Flags == 0x1|0x2|0x100 // VM_READ|VM_WRITE|VM_GROWSDOWN (include/linux/mm.h)
		}
	}
	if !stack {
		t.Error("no [stack] VMA flagged rw and growing down")
	}
}
