package loader

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/mmtrace/mmtrace/internal/hostabi"
)

// A KernelReport says what the running kernel lets mmtrace do and see:
// each thing mmtrace uses, the path it will take here, and what its
// reports will call uncertain. CanTrace is false when mmtrace cannot
// trace at all; Blockers then says why, one sentence each.
type KernelReport struct {
	Kernel    string   `json:"kernel"`
	Machine   string   `json:"machine"`
	CanTrace  bool     `json:"can_trace"`
	Blockers  []string `json:"blockers"`
	Checks    []Check  `json:"checks"`
	Path      []Choice `json:"path"`
	Uncertain []string `json:"uncertain"`
}

// A Check is one thing mmtrace uses, probed on the running kernel.
type Check struct {
	Name   string `json:"name"`
	Result string `json:"result"` // Yes, No or Unknown
	// Required: without it mmtrace cannot trace (on the path it takes).
	Required bool   `json:"required"`
	Detail   string `json:"detail"`
}

// Check results: a probe that cannot tell says Unknown, never yes or no.
const (
	Yes     = "yes"
	No      = "no"
	Unknown = "unknown"
)

// A Choice is one decision mmtrace makes on this kernel.
type Choice struct {
	What   string `json:"what"`
	Choice string `json:"choice"`
	Why    string `json:"why,omitempty"`
}

// Probe checks the running kernel for everything Open uses, then opens a
// tracer that traces nothing (loaded and attached, then closed) as the
// final word on whether mmtrace can trace here. cfg carries the choices a
// user can make on the command line: BTFPath, NoIA32, Backups.
func Probe(cfg Config) *KernelReport {
	r := &KernelReport{Blockers: []string{}, Uncertain: []string{}}
	var uts unix.Utsname
	if unix.Uname(&uts) == nil {
		r.Kernel = unix.ByteSliceToString(uts.Release[:])
		r.Machine = unix.ByteSliceToString(uts.Machine[:])
	}
	add := func(name, result string, required bool, detail string) {
		r.Checks = append(r.Checks, Check{name, result, required, detail})
		if required && result == No {
			r.Blockers = append(r.Blockers, detail)
		}
	}
	if r.Machine != "" && r.Machine != "x86_64" {
		add("architecture", No, true, fmt.Sprintf("mmtrace's kernel programs are built for x86_64, not %s", r.Machine))
	}
	add(privileges())
	permitted := r.Checks[len(r.Checks)-1].Result != No

	// BTF: the kernel's own, or --btf.
	var kernel *btf.Spec
	{
		source, err := "/sys/kernel/btf/vmlinux", error(nil)
		if cfg.BTFPath != "" {
			source = cfg.BTFPath
			kernel, err = loadBTF(cfg.BTFPath)
		} else if _, err = os.Stat(source); err != nil {
			err = errors.New("this kernel exposes no BTF at /sys/kernel/btf/vmlinux " +
				"(it needs CONFIG_DEBUG_INFO_BTF=y); pass --btf FILE with BTF for the running kernel")
		} else {
			kernel, err = btf.LoadKernelSpec()
		}
		if err != nil {
			add("BTF", No, true, err.Error())
		} else {
			add("BTF", Yes, true, "from "+source)
		}
	}

	if err := rlimit.RemoveMemlock(); err != nil {
		result := No
		if !permitted {
			result = Unknown
		}
		add("memlock limit", result, true, fmt.Sprintf("cannot lift the memlock limit for BPF maps: %v", err))
	}
	add(featureCheck("BPF ring buffer", true, features.HaveMapType(ebpf.RingBuf),
		"BPF_MAP_TYPE_RINGBUF", "this kernel has no BPF ring buffer (Linux 5.8+ needed)"))

	// tp_btf: the features package's probe answers EPERM here although
	// the programs load, so load one of ours.
	var tpBTFErr error
	if kernel != nil {
		tpBTFErr = probeTracing(cfg, kernel)
	} else {
		tpBTFErr = errors.New("no BTF to load against")
	}
	switch {
	case tpBTFErr == nil:
		add("program type tracing (tp_btf)", Yes, true, "loaded mmtrace's sched_process_fork program")
	case kernel == nil:
		add("program type tracing (tp_btf)", Unknown, true, "not tried: no BTF")
	case errors.Is(tpBTFErr, os.ErrPermission) || !permitted:
		add("program type tracing (tp_btf)", Unknown, true, "loading one was not permitted: "+errPermission.Error())
	default:
		add("program type tracing (tp_btf)", No, true,
			fmt.Sprintf("tp_btf programs do not load (they need Linux 5.5+ with BTF): %v", explainLoadError(tpBTFErr, kernel)))
	}

	// 32-bit programs: the kernel may refuse to run them at all.
	ia32, ia32Err := hostabi.CanRunIA32()
	switch {
	case !ia32:
		add("32-bit programs", No, false, ia32Err.Error())
	case ia32Err != nil:
		add("32-bit programs", Unknown, false, fmt.Sprintf("counted as yes: %v", ia32Err))
	default:
		add("32-bit programs", Yes, false, "an i386 program ran")
	}
	noIA32 := cfg.NoIA32 || !ia32

	// Tracepoints, by their BTF (tp_btf) or tracefs (classic) names.
	hasTP := func(name string) bool { return hasType[*btf.Typedef](kernel, "btf_trace_"+name) }
	for _, tp := range []struct {
		group, name string
		required    bool
		missing     string
	}{
		{"sched", "sched_process_exec", true, "no exec records"},
		{"sched", "sched_process_fork", true, "no fork records"},
		{"sched", "sched_process_exit", true, "no exit records"},
		{"raw_syscalls", "sys_enter", !noIA32, "no syscall records for 32-bit processes"},
		{"raw_syscalls", "sys_exit", !noIA32, "no syscall records for 32-bit processes"},
		{"mmap", "vm_unmapped_area", false, "top-down and bottom-up placement are inferred from each image's layout"},
		{"mmap_lock", "mmap_lock_released", false, "memory calls of racing threads are taken in the order their records arrive"},
	} {
		name := "tracepoint " + tp.group + ":" + tp.name
		switch {
		case kernel == nil:
			add(name, Unknown, tp.required, "no BTF to look it up in")
		case hasTP(tp.name):
			add(name, Yes, tp.required, "tp_btf")
		default:
			add(name, No, tp.required, fmt.Sprintf("this kernel has no %s:%s tracepoint: %s", tp.group, tp.name, tp.missing))
		}
	}
	if noIA32 {
		add(featureCheck("program type tracepoint", true, features.HaveProgramType(ebpf.TracePoint),
			"for the 64-bit-only syscalls:* tracepoints", "this kernel cannot attach BPF programs to classic tracepoints"))
		add(syscallTracepoints())
	}

	// What the kernel can walk and keep for us.
	execVMAs, why := false, "no BTF to look it up in"
	if kernel != nil {
		execVMAs, why = haveVMAIterator(kernel)
	}
	if execVMAs {
		add("kfunc bpf_iter_task_vma_new", Yes, false, "the exec program walks the new image's VMAs (Linux 6.7+)")
	} else {
		add("kfunc bpf_iter_task_vma_new", No, false, why)
	}
	taskStorage := features.HaveMapType(ebpf.TaskStorage)
	if taskStorage == nil {
		taskStorage = haveCmpXchg()
	}
	add(featureCheck("task storage and compare-and-exchange", false, taskStorage,
		"for backup programs (Linux 5.12+)", "this kernel has no task storage maps or BPF compare-and-exchange (Linux 5.12+): no backup programs"))
	mode, source := preemptionModel()
	switch mode {
	case "":
		add("preemption inside programs", Unknown, false, "the preemption model is not in /sys/kernel/debug/sched/preempt, "+
			"the command line or the kernel config: mmtrace assumes a task can be preempted inside a BPF program")
	case "none", "voluntary":
		add("preemption inside programs", No, false, fmt.Sprintf("preempt=%s (from %s): no task is preempted inside a BPF program", mode, source))
	default:
		add("preemption inside programs", Yes, false, fmt.Sprintf("preempt=%s (from %s): a task can be preempted inside a BPF program, "+
			"and the kernel then skips that program for other tasks on its CPU", mode, source))
	}

	// The path Open will take.
	bcfg := cfg
	bcfg.NoIA32 = noIA32
	backups, backupsWhy := chooseBackups(bcfg)
	if noIA32 && !cfg.NoIA32 {
		backupsWhy = "the 64-bit-only syscalls:* programs share one guard per CPU: no backup programs"
	}
	changeOrder := lockReleasedProgram(kernel) != ""
	searches := hasTP("vm_unmapped_area")
	switch {
	case !noIA32:
		r.Path = append(r.Path, Choice{"syscalls", "raw_syscalls:sys_enter/sys_exit (tp_btf), 64-bit and 32-bit calls", ""})
	case cfg.NoIA32:
		r.Path = append(r.Path, Choice{"syscalls", "syscalls:* tracepoints, 64-bit calls only", "--no-ia32"})
	default:
		r.Path = append(r.Path, Choice{"syscalls", "syscalls:* tracepoints, 64-bit calls only",
			"the kernel runs no 32-bit programs, so none needs tracing"})
	}
	if execVMAs && !cfg.NoExecVMAs {
		r.Path = append(r.Path, Choice{"exec-time mappings", "walked in the kernel at exec", ""})
	} else {
		r.Path = append(r.Path, Choice{"exec-time mappings", "read from /proc/PID/maps just after each exec", why})
	}
	if searches {
		r.Path = append(r.Path, Choice{"placement", "from the kernel's own search (mmap:vm_unmapped_area)", ""})
	} else {
		r.Path = append(r.Path, Choice{"placement", "inferred from each image's layout", "no mmap:vm_unmapped_area tracepoint"})
	}
	if changeOrder {
		r.Path = append(r.Path, Choice{"change order", "numbered at mmap_lock:mmap_lock_released", ""})
	} else {
		r.Path = append(r.Path, Choice{"change order", "the order records arrive", "no usable mmap_lock:mmap_lock_released tracepoint (6.1+)"})
	}
	r.Path = append(r.Path, Choice{"backup programs", strconv.Itoa(backups), backupsWhy})

	// What reports will call uncertain, or note.
	r.Uncertain = append(r.Uncertain, "records dropped because the ring buffer was full are counted, "+
		"and the reports of the processes they belonged to say uncertain")
	if !execVMAs || cfg.NoExecVMAs {
		r.Uncertain = append(r.Uncertain, "a mapping made or removed between an exec and mmtrace's read of /proc/PID/maps "+
			"is missed: each report notes that its exec-time layout came from /proc")
	}
	if !changeOrder {
		r.Uncertain = append(r.Uncertain, "memory calls of racing threads are modelled in the order their records arrive, "+
			"which can differ from the order they took effect")
	}
	if noIA32 && ia32 {
		r.Uncertain = append(r.Uncertain, "32-bit images: their syscalls are not seen, so their reports say uncertain")
	}
	if mode != "none" && mode != "voluntary" {
		if backups > 0 {
			r.Uncertain = append(r.Uncertain, "records the kernel skipped (a task preempted inside a program) "+
				"that no backup copy covered are counted lost, and live reports say uncertain")
		} else {
			r.Uncertain = append(r.Uncertain, "records the kernel skipped (a task preempted inside a program) "+
				"are counted lost, and live reports say uncertain: there are no backup programs here")
		}
	}

	// The final word: load and attach everything, tracing nothing.
	if len(r.Blockers) == 0 {
		ocfg := cfg
		ocfg.NoIA32 = noIA32
		ocfg.Comms, ocfg.PIDs, ocfg.TraceAll = nil, nil, false
		ocfg.RingSize = os.Getpagesize()
		start := time.Now()
		tr, err := Open(ocfg)
		if err != nil {
			add("load and attach", No, true, err.Error())
		} else {
			n := len(tr.links)
			tr.Close()
			add("load and attach", Yes, true, fmt.Sprintf("%d programs loaded and attached in %d ms (tracing nothing), then detached",
				n, time.Since(start).Milliseconds()))
		}
	} else {
		add("load and attach", Unknown, true, "not tried: something required is missing")
	}
	r.CanTrace = len(r.Blockers) == 0
	return r
}

// privileges says whether mmtrace may load and attach its programs.
func privileges() (string, string, bool, string) {
	if os.Geteuid() == 0 {
		return "privileges", Yes, true, "root"
	}
	// CAP_BPF is 39, CAP_PERFMON 38 (Linux 5.8+).
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "privileges", Unknown, true, fmt.Sprintf("cannot read /proc/self/status: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				break
			}
			if caps&(1<<39) != 0 && caps&(1<<38) != 0 {
				return "privileges", Yes, true, "CAP_BPF and CAP_PERFMON"
			}
			return "privileges", No, true, errPermission.Error()
		}
	}
	return "privileges", Unknown, true, "no CapEff line in /proc/self/status"
}

// featureCheck turns a features-package answer into a check: nil is yes,
// ErrNotSupported is no (with the sentence no), anything else unknown.
func featureCheck(name string, required bool, err error, yes, no string) (string, string, bool, string) {
	switch {
	case err == nil:
		return name, Yes, required, yes
	case errors.Is(err, ebpf.ErrNotSupported):
		return name, No, required, no
	case errors.Is(err, os.ErrPermission):
		return name, Unknown, required, "the probe was not permitted: " + errPermission.Error()
	}
	return name, Unknown, required, fmt.Sprintf("the probe failed: %v", err)
}

// probeTracing loads one tp_btf program of ours, with the maps it uses.
func probeTracing(cfg Config, kernel *btf.Spec) error {
	opts := ebpf.CollectionOptions{}
	opts.Programs.KernelTypes = kernel
	c := cfg
	c.RingSize = os.Getpagesize()
	coll, err := loadCollection(c, &opts, map[string]bool{"handle_fork": true}, Features{})
	if err != nil {
		return err
	}
	coll.Close()
	return nil
}

// syscallTracepoints checks the classic syscalls:* tracepoints that
// --no-ia32 attaches to, in tracefs.
func syscallTracepoints() (string, string, bool, string) {
	const name = "tracepoints syscalls:sys_{enter,exit}_*"
	var root string
	for _, dir := range []string{"/sys/kernel/tracing/events", "/sys/kernel/debug/tracing/events"} {
		if _, err := os.Stat(dir); err == nil {
			root = dir
			break
		}
	}
	if root == "" {
		return name, Unknown, true, "tracefs is not mounted (mmtrace mounts it at /sys/kernel/tracing when it needs it)"
	}
	var missing []string
	for _, call := range syscalls64 {
		for _, dir := range []string{"sys_enter_", "sys_exit_"} {
			if _, err := os.Stat(filepath.Join(root, "syscalls", dir+call, "id")); err != nil {
				missing = append(missing, dir+call)
			}
		}
	}
	if len(missing) > 0 {
		return name, No, true, fmt.Sprintf("this kernel has no syscalls:%s tracepoints (CONFIG_FTRACE_SYSCALLS=y needed)",
			strings.Join(missing, ", "))
	}
	return name, Yes, true, fmt.Sprintf("all %d in %s", 2*len(syscalls64), root)
}
