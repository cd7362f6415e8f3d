package loader

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/mmtrace/mmtrace/internal/hostabi"
	"github.com/mmtrace/mmtrace/internal/kerneltest"
)

// On a kernel the other kernel tests run on, the probe says mmtrace can
// trace, checks every tracepoint Open attaches to, and agrees with Open
// on the path it takes.
func TestProbeRunningKernel(t *testing.T) {
	kerneltest.RequireRoot(t)
	r := Probe(Config{Backups: AutoBackups})
	if !r.CanTrace || len(r.Blockers) != 0 {
		t.Fatalf("cannot trace: %q\n%+v", r.Blockers, r.Checks)
	}
	names := map[string]Check{}
	for _, c := range r.Checks {
		if c.Result != Yes && c.Result != No && c.Result != Unknown {
			t.Errorf("check %q: result %q", c.Name, c.Result)
		}
		if c.Detail == "" {
			t.Errorf("check %q has no detail", c.Name)
		}
		names[c.Name] = c
	}
	for _, want := range []string{
		"privileges", "BTF", "BPF ring buffer", "program type tracing (tp_btf)", "32-bit programs",
		"tracepoint sched:sched_process_exec", "tracepoint sched:sched_process_fork", "tracepoint sched:sched_process_exit",
		"tracepoint raw_syscalls:sys_enter", "tracepoint raw_syscalls:sys_exit", "tracepoint mmap:vm_unmapped_area",
		"tracepoint mmap_lock:mmap_lock_released", "kfunc bpf_iter_task_vma_new", "task storage and compare-and-exchange",
		"preemption inside programs", "load and attach",
	} {
		if _, ok := names[want]; !ok {
			t.Errorf("no check %q", want)
		}
	}
	if c := names["load and attach"]; c.Result != Yes {
		t.Errorf("load and attach: %+v", c)
	}
	// The path is the one Open takes, on whichever kernel this runs.
	ia32, _ := hostabi.CanRunIA32()
	tr, err := Open(Config{Backups: AutoBackups, NoIA32: !ia32})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	f := tr.Features
	tr.Close()
	path := map[string]string{}
	for _, c := range r.Path {
		path[c.What] = c.Choice
	}
	for _, c := range []struct {
		what   string
		open   bool
		prefix string
	}{
		{"syscalls", !ia32, "syscalls:*"},
		{"exec-time mappings", f.ExecVMAs, "walked in the kernel"},
		{"placement", f.Searches, "from the kernel's own search"},
		{"change order", f.ChangeOrder, "numbered"},
	} {
		if c.open != strings.HasPrefix(path[c.what], c.prefix) {
			t.Errorf("%s: Open says %v, the probe %q", c.what, c.open, path[c.what])
		}
	}
	if path["backup programs"] != strconv.Itoa(f.Backups) {
		t.Errorf("backups: Open attaches %d, the probe says %q", f.Backups, path["backup programs"])
	}
	if len(r.Uncertain) == 0 {
		t.Errorf("nothing uncertain: at least ring buffer drops are")
	}
	t.Logf("%+v", r)
}

// Without usable BTF the probe says mmtrace cannot trace, and why.
func TestProbeWithoutBTF(t *testing.T) {
	kerneltest.RequireRoot(t)
	empty := filepath.Join(t.TempDir(), "empty.btf")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{empty, "/dev/zero"} {
		r := Probe(Config{BTFPath: path})
		if r.CanTrace || len(r.Blockers) == 0 || !strings.Contains(r.Blockers[0], path) {
			t.Errorf("--btf %s: can trace %v, blockers %q", path, r.CanTrace, r.Blockers)
		}
	}
}

// An external BTF file is refused unless regular and of a sane size.
func TestLoadBTFRefusesHostileFiles(t *testing.T) {
	big := filepath.Join(t.TempDir(), "big.btf")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(maxBTFSize + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := mkfifo(fifo); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"/dev/zero": "not a regular file (a character device)",
		"/":         "not a regular file (a directory)",
		fifo:        "not a regular file (a named pipe)",
		big:         "more than the 256 MiB",
	} {
		for name, f := range map[string]func(string) error{
			"CheckBTFFile": CheckBTFFile,
			"loadBTF":      func(p string) error { _, err := loadBTF(p); return err },
		} {
			if err := f(path); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s(%s) = %v, want %q", name, path, err, want)
			}
		}
	}
	// The kernel's own BTF, as a file, loads.
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err == nil {
		if _, err := loadBTF("/sys/kernel/btf/vmlinux"); err != nil {
			t.Errorf("loadBTF(/sys/kernel/btf/vmlinux): %v", err)
		}
	}
}

func mkfifo(path string) error { return unix.Mkfifo(path, 0o600) }
