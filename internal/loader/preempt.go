package loader

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"golang.org/x/sys/unix"
)

// haveCmpXchg says whether the kernel's verifier takes BPF
// compare-and-exchange (Linux 5.12+), by loading a program that uses it:
// a probe answers for backported or patched kernels, a version number
// does not.
var haveCmpXchg = sync.OnceValue(func() error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type: ebpf.SocketFilter,
		Instructions: asm.Instructions{
			asm.Mov.Imm(asm.R0, 0),
			asm.StoreMem(asm.RFP, -8, asm.R0, asm.DWord),
			asm.Mov.Imm(asm.R2, 1),
			asm.Mov.Reg(asm.R1, asm.RFP),
			asm.Add.Imm(asm.R1, -8),
			asm.CmpXchg.Mem(asm.R1, asm.R2, asm.DWord, 0),
			asm.Mov.Imm(asm.R0, 0),
			asm.Return(),
		},
		License: "Dual BSD/GPL",
	})
	if err != nil {
		return fmt.Errorf("%w: BPF compare-and-exchange (Linux 5.12+): %v", ebpf.ErrNotSupported, err)
	}
	prog.Close()
	return nil
})

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	if strings.HasSuffix(what, "y") {
		return fmt.Sprintf("%d %sies", n, strings.TrimSuffix(what, "y"))
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// chooseBackups decides how many backup copies of each program to
// attach, and says why in a sentence.
//
// A kernel skips a BPF program on a CPU where another task is inside it.
// Tasks are inside our programs for a moment only, but newer kernels run
// tracepoint programs preemptibly (7.3 skipped syscall, exit and mmap_lock
// programs), and a kernel that preempts in kernel mode (preempt=full or
// lazy, the 7.x default in Debian) then parks a task there now and then. Under preempt=none or
// voluntary no task is preempted inside a program, so backups would only
// cost time.
func chooseBackups(cfg Config) (int, string) {
	if cfg.Backups == 0 {
		return 0, ""
	}
	if cfg.NoIA32 {
		// The syscalls:* programs share one guard per CPU: no copy of
		// them would run when one is skipped.
		return 0, "--no-ia32: no backup programs"
	}
	// The guarded programs keep their marks in task storage (5.11+) and
	// claim path scratch with BPF compare-and-exchange (5.12+).
	if features.HaveMapType(ebpf.TaskStorage) != nil || haveCmpXchg() != nil {
		return 0, "this kernel has no task storage maps or BPF compare-and-exchange (Linux 5.12+): no backup programs"
	}
	if cfg.Backups > 0 {
		return cfg.Backups, fmt.Sprintf("each kernel program has %s (--backups), "+
			"run when the kernel skips it", plural(cfg.Backups, "backup copy"))
	}
	mode, source := preemptionModel()
	switch mode {
	case "none", "voluntary":
		return 0, fmt.Sprintf("this kernel does not preempt in kernel mode (preempt=%s, from %s)", mode, source)
	case "":
		return autoBackups, fmt.Sprintf("this kernel's preemption model is unknown: each kernel program "+
			"has %s in case a task is preempted inside one", plural(autoBackups, "backup copy"))
	}
	return autoBackups, fmt.Sprintf("this kernel preempts in kernel mode (preempt=%s, from %s): "+
		"each kernel program has %s, run when the kernel skips it", mode, source, plural(autoBackups, "backup copy"))
}

// preemptionModel is the running kernel's preemption model (none,
// voluntary, full, lazy or rt) and where it was read, or "" if unknown.
func preemptionModel() (mode, source string) {
	// PREEMPT_DYNAMIC kernels say which model is in force.
	if b, err := os.ReadFile("/sys/kernel/debug/sched/preempt"); err == nil {
		if m := regexp.MustCompile(`\((\w+)\)`).FindSubmatch(b); m != nil {
			return string(m[1]), "/sys/kernel/debug/sched/preempt"
		}
	}
	if b, err := os.ReadFile("/proc/cmdline"); err == nil {
		for _, f := range strings.Fields(string(b)) {
			if v, ok := strings.CutPrefix(f, "preempt="); ok {
				return v, "the kernel command line"
			}
		}
	}
	// The build's default.
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	release := unix.ByteSliceToString(uts.Release[:])
	for _, path := range []string{"/proc/config.gz", "/boot/config-" + release} {
		if mode := configPreemption(path); mode != "" {
			return mode, path
		}
	}
	return "", ""
}

// configPreemption reads the preemption model from a kernel config file,
// gzipped or not; "" if the file or the setting is missing.
func configPreemption(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return ""
		}
		r = zr
	}
	return preemptionFromConfig(r)
}

func preemptionFromConfig(r io.Reader) string {
	models := map[string]string{
		"CONFIG_PREEMPT_RT=y":        "rt",
		"CONFIG_PREEMPT_LAZY=y":      "lazy",
		"CONFIG_PREEMPT=y":           "full",
		"CONFIG_PREEMPT_VOLUNTARY=y": "voluntary",
		"CONFIG_PREEMPT_NONE=y":      "none",
	}
	found := ""
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if m, ok := models[string(line)]; ok {
			// RT wins over the rest: PREEMPT_RT builds set PREEMPT too.
			if found != "rt" {
				found = m
			}
		}
	}
	return found
}
