package loader

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/mmtrace/mmtrace/bpf"
	"github.com/mmtrace/mmtrace/internal/kerneltest"
)

func TestPreemptionFromConfig(t *testing.T) {
	for _, c := range []struct{ config, want string }{
		// Debian 7.3 (trixie-backports): lazy by default.
		{"CONFIG_PREEMPT_BUILD=y\n# CONFIG_PREEMPT is not set\nCONFIG_PREEMPT_LAZY=y\nCONFIG_PREEMPT_DYNAMIC=y\n", "lazy"},
		// Debian 6.12: voluntary.
		{"CONFIG_PREEMPT_BUILD=y\n# CONFIG_PREEMPT_NONE is not set\nCONFIG_PREEMPT_VOLUNTARY=y\n# CONFIG_PREEMPT is not set\n", "voluntary"},
		{"CONFIG_PREEMPT_NONE=y\n# CONFIG_PREEMPT_LAZY is not set\n", "none"},
		{"CONFIG_PREEMPT=y\n", "full"},
		// PREEMPT_RT builds set CONFIG_PREEMPT as well, in either order.
		{"CONFIG_PREEMPT_RT=y\nCONFIG_PREEMPT=y\n", "rt"},
		{"CONFIG_PREEMPT=y\nCONFIG_PREEMPT_RT=y\n", "rt"},
		{"# CONFIG_PREEMPT_RT is not set\nCONFIG_HZ=250\n", ""},
		{"", ""},
	} {
		if got := preemptionFromConfig(strings.NewReader(c.config)); got != c.want {
			t.Errorf("%q: %q, want %q", c.config, got, c.want)
		}
	}
}

func TestChooseBackupsOnRequest(t *testing.T) {
	if n, _ := chooseBackups(Config{Backups: 0}); n != 0 {
		t.Errorf("--backups 0 gave %d backups", n)
	}
	if n, _ := chooseBackups(Config{NoIA32: true, Backups: 3}); n != 0 {
		t.Errorf("--no-ia32 gave %d backups to programs it does not load", n)
	}
}

// The compare-and-exchange probe agrees with the kernel's release: the
// verifier took the instruction from 5.12 on (the VMs run 5.10 too).
func TestCmpXchgProbe(t *testing.T) {
	kerneltest.RequireRoot(t)
	if err := rlimit.RemoveMemlock(); err != nil {
		t.Fatal(err)
	}
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		t.Fatal(err)
	}
	release := unix.ByteSliceToString(uts.Release[:])
	var major, minor int
	if _, err := fmt.Sscanf(release, "%d.%d", &major, &minor); err != nil {
		t.Fatalf("release %q: %v", release, err)
	}
	want := major > 5 || major == 5 && minor >= 12
	if err := haveCmpXchg(); (err == nil) != want {
		t.Errorf("kernel %s: the probe says %v", release, err)
	}
}

// Each program's forms, in the order they attach to its tracepoint.
func TestProgramForms(t *testing.T) {
	exit := programOf("handle_exit")
	lock := programOf("lock_acquired")
	enter64 := programOf("handle_enter64")
	for _, c := range []struct {
		p       kernelProgram
		cfg     Config
		backups int
		want    string
	}{
		{exit, Config{}, 0, "handle_exit<handle_exit"},
		{exit, Config{}, 2, "handle_exit_guarded<handle_exit_guarded handle_exit_backup1<handle_exit_backup handle_exit_backup2<handle_exit_backup"},
		{exit, Config{BackupsOnly: true}, 1, "handle_exit_backup1<handle_exit_backup"},
		{lock, Config{}, 1, "lock_acquired_guarded<lock_acquired_guarded lock_acquired_backup1<lock_acquired_backup"},
		{enter64, Config{}, 2, "handle_enter64<handle_enter64"}, // syscalls:* share one guard: no backups
	} {
		var got []string
		for _, f := range c.p.forms(c.cfg, Features{Backups: c.backups}) {
			got = append(got, f.name+"<"+f.spec)
		}
		if strings.Join(got, " ") != c.want {
			t.Errorf("%s with %d backups (only %v): %v, want %s", c.p.plain, c.backups, c.cfg.BackupsOnly, got, c.want)
		}
	}
}

// A load error names the missing tracepoint types only when the BTF lacks
// them: the program object's own BTF has none, the kernel's has them.
func TestExplainLoadError(t *testing.T) {
	obj, err := bpf.LoadMmtrace()
	if err != nil {
		t.Fatal(err)
	}
	cause := errors.New("boom")
	if got := explainLoadError(cause, obj.Types).Error(); !strings.Contains(got, "no btf_trace_sched_process_exec") || !errors.Is(explainLoadError(cause, obj.Types), cause) {
		t.Errorf("without tracepoint types: %q", got)
	}
	kernel, err := btf.LoadKernelSpec()
	if err != nil {
		t.Fatalf("no kernel BTF: %v", err)
	}
	if got := explainLoadError(cause, kernel).Error(); got != "load kernel programs: boom" {
		t.Errorf("with the kernel's BTF: %q", got)
	}
}
