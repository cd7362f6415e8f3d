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
	p := &prober{cfg: cfg, r: &KernelReport{Blockers: []string{}, Uncertain: []string{}}}
	p.checkHost()
	p.checkBTF()
	p.checkBPF()
	p.checkIA32()
	p.checkTracepoints()
	p.checkKernelHelp()
	p.choosePath()
	p.noteUncertain()
	p.loadAndAttach()
	p.r.CanTrace = len(p.r.Blockers) == 0
	return p.r
}

// prober is one Probe: the report so far and what its checks found that
// later ones depend on.
type prober struct {
	cfg Config
	r   *KernelReport

	permitted   bool      // privileges are not known to be missing
	kernel      *btf.Spec // nil: no BTF
	ia32        bool      // the kernel runs 32-bit programs
	noIA32      bool      // 64-bit syscalls only: asked for, or nothing else can run
	execVMAs    bool      // the exec program can walk VMAs
	execVMAsWhy string    // why it cannot
	preempt     string    // the preemption model; "": unknown
	backups     int       // backup programs Open would attach
	changeOrder bool      // mmap_lock_released numbers the changes
}

// add appends a check; a required one that says no blocks tracing.
func (p *prober) add(name, result string, required bool, detail string) {
	p.r.Checks = append(p.r.Checks, Check{name, result, required, detail})
	if required && result == No {
		p.r.Blockers = append(p.r.Blockers, detail)
	}
}

// checkHost names the kernel and machine and checks the architecture
// and privileges.
func (p *prober) checkHost() {
	var uts unix.Utsname
	if unix.Uname(&uts) == nil {
		p.r.Kernel = unix.ByteSliceToString(uts.Release[:])
		p.r.Machine = unix.ByteSliceToString(uts.Machine[:])
	}
	if p.r.Machine != "" && p.r.Machine != "x86_64" {
		p.add("architecture", No, true, fmt.Sprintf("mmtrace's kernel programs are built for x86_64, not %s", p.r.Machine))
	}
	p.add(privileges())
	p.permitted = p.r.Checks[len(p.r.Checks)-1].Result != No
}

// checkBTF reads the kernel's types: its own, or --btf.
func (p *prober) checkBTF() {
	source, err := "/sys/kernel/btf/vmlinux", error(nil)
	if p.cfg.BTFPath != "" {
		source = p.cfg.BTFPath
		p.kernel, err = loadBTF(p.cfg.BTFPath)
	} else if _, err = os.Stat(source); err != nil {
		err = errors.New("this kernel exposes no BTF at /sys/kernel/btf/vmlinux " +
			"(it needs CONFIG_DEBUG_INFO_BTF=y); pass --btf FILE with BTF for the running kernel")
	} else {
		p.kernel, err = btf.LoadKernelSpec()
	}
	if err != nil {
		p.add("BTF", No, true, err.Error())
	} else {
		p.add("BTF", Yes, true, "from "+source)
	}
}

// checkBPF checks what every program needs: the memlock limit, the ring
// buffer and tp_btf programs.
func (p *prober) checkBPF() {
	if err := rlimit.RemoveMemlock(); err != nil {
		result := No
		if !p.permitted {
			result = Unknown
		}
		p.add("memlock limit", result, true, fmt.Sprintf("cannot lift the memlock limit for BPF maps: %v", err))
	}
	p.add(featureCheck("BPF ring buffer", true, features.HaveMapType(ebpf.RingBuf),
		"BPF_MAP_TYPE_RINGBUF", "this kernel has no BPF ring buffer (Linux 5.8+ needed)"))

	// tp_btf: the features package's probe answers EPERM here although
	// the programs load, so load one of ours.
	var tpBTFErr error
	if p.kernel != nil {
		tpBTFErr = probeTracing(p.cfg, p.kernel)
	} else {
		tpBTFErr = errors.New("no BTF to load against")
	}
	switch {
	case tpBTFErr == nil:
		p.add("program type tracing (tp_btf)", Yes, true, "loaded mmtrace's sched_process_fork program")
	case p.kernel == nil:
		p.add("program type tracing (tp_btf)", Unknown, true, "not tried: no BTF")
	case errors.Is(tpBTFErr, os.ErrPermission) || !p.permitted:
		p.add("program type tracing (tp_btf)", Unknown, true, "loading one was not permitted: "+errPermission.Error())
	default:
		p.add("program type tracing (tp_btf)", No, true,
			fmt.Sprintf("tp_btf programs do not load (they need Linux 5.5+ with BTF): %v", explainLoadError(tpBTFErr, p.kernel)))
	}
}

// checkIA32 asks whether the kernel runs 32-bit programs at all: one
// that refuses them needs no 32-bit tracing.
func (p *prober) checkIA32() {
	ia32, ia32Err := hostabi.CanRunIA32()
	switch {
	case !ia32:
		p.add("32-bit programs", No, false, ia32Err.Error())
	case ia32Err != nil:
		p.add("32-bit programs", Unknown, false, fmt.Sprintf("counted as yes: %v", ia32Err))
	default:
		p.add("32-bit programs", Yes, false, "an i386 program ran")
	}
	p.ia32 = ia32
	p.noIA32 = p.cfg.NoIA32 || !ia32
}

// hasTracepoint looks a tracepoint up by its BTF (tp_btf) name.
func (p *prober) hasTracepoint(name string) bool {
	return hasType[*btf.Typedef](p.kernel, "btf_trace_"+name)
}

// checkTracepoints looks up the tracepoints, by their BTF (tp_btf) or
// tracefs (classic) names.
func (p *prober) checkTracepoints() {
	for _, tp := range []struct {
		group, name string
		required    bool
		missing     string
	}{
		{"sched", "sched_process_exec", true, "no exec records"},
		{"sched", "sched_process_fork", true, "no fork records"},
		{"sched", "sched_process_exit", true, "no exit records"},
		{"raw_syscalls", "sys_enter", !p.noIA32, "no syscall records for 32-bit processes"},
		{"raw_syscalls", "sys_exit", !p.noIA32, "no syscall records for 32-bit processes"},
		{"mmap", "vm_unmapped_area", false, "top-down and bottom-up placement are inferred from each image's layout"},
		{"mmap_lock", "mmap_lock_released", false, "memory calls of racing threads are taken in the order their records arrive"},
	} {
		name := "tracepoint " + tp.group + ":" + tp.name
		switch {
		case p.kernel == nil:
			p.add(name, Unknown, tp.required, "no BTF to look it up in")
		case p.hasTracepoint(tp.name):
			p.add(name, Yes, tp.required, "tp_btf")
		default:
			p.add(name, No, tp.required, fmt.Sprintf("this kernel has no %s:%s tracepoint: %s", tp.group, tp.name, tp.missing))
		}
	}
	if p.noIA32 {
		p.add(featureCheck("program type tracepoint", true, features.HaveProgramType(ebpf.TracePoint),
			"for the 64-bit-only syscalls:* tracepoints", "this kernel cannot attach BPF programs to classic tracepoints"))
		p.add(syscallTracepoints())
	}
}

// checkKernelHelp checks what the kernel can walk and keep for us, and
// whether it may preempt a task inside a program.
func (p *prober) checkKernelHelp() {
	p.execVMAs, p.execVMAsWhy = false, "no BTF to look it up in"
	if p.kernel != nil {
		p.execVMAs, p.execVMAsWhy = haveVMAIterator(p.kernel)
	}
	if p.execVMAs {
		p.add("kfunc bpf_iter_task_vma_new", Yes, false, "the exec program walks the new image's VMAs (Linux 6.7+)")
	} else {
		p.add("kfunc bpf_iter_task_vma_new", No, false, p.execVMAsWhy)
	}
	taskStorage := features.HaveMapType(ebpf.TaskStorage)
	if taskStorage == nil {
		taskStorage = haveCmpXchg()
	}
	p.add(featureCheck("task storage and compare-and-exchange", false, taskStorage,
		"for backup programs (Linux 5.12+)", "this kernel has no task storage maps or BPF compare-and-exchange (Linux 5.12+): no backup programs"))
	mode, source := preemptionModel()
	p.preempt = mode
	switch mode {
	case "":
		p.add("preemption inside programs", Unknown, false, "the preemption model is not in /sys/kernel/debug/sched/preempt, "+
			"the command line or the kernel config: mmtrace assumes a task can be preempted inside a BPF program")
	case "none", "voluntary":
		p.add("preemption inside programs", No, false, fmt.Sprintf("preempt=%s (from %s): no task is preempted inside a BPF program", mode, source))
	default:
		p.add("preemption inside programs", Yes, false, fmt.Sprintf("preempt=%s (from %s): a task can be preempted inside a BPF program, "+
			"and the kernel then skips that program for other tasks on its CPU", mode, source))
	}
}

// choosePath says which path Open will take.
func (p *prober) choosePath() {
	cfg := p.cfg
	bcfg := cfg
	bcfg.NoIA32 = p.noIA32
	backups, backupsWhy := chooseBackups(bcfg)
	if p.noIA32 && !cfg.NoIA32 {
		backupsWhy = "the 64-bit-only syscalls:* programs share one guard per CPU: no backup programs"
	}
	p.backups = backups
	p.changeOrder = lockReleasedProgram(p.kernel) != ""
	path := func(what, choice, why string) { p.r.Path = append(p.r.Path, Choice{what, choice, why}) }
	switch {
	case !p.noIA32:
		path("syscalls", "raw_syscalls:sys_enter/sys_exit (tp_btf), 64-bit and 32-bit calls", "")
	case cfg.NoIA32:
		path("syscalls", "syscalls:* tracepoints, 64-bit calls only", "--no-ia32")
	default:
		path("syscalls", "syscalls:* tracepoints, 64-bit calls only", "the kernel runs no 32-bit programs, so none needs tracing")
	}
	if p.execVMAs && !cfg.NoExecVMAs {
		path("exec-time mappings", "walked in the kernel at exec", "")
	} else {
		path("exec-time mappings", "read from /proc/PID/maps just after each exec", p.execVMAsWhy)
	}
	if p.hasTracepoint("vm_unmapped_area") {
		path("placement", "from the kernel's own search (mmap:vm_unmapped_area)", "")
	} else {
		path("placement", "inferred from each image's layout", "no mmap:vm_unmapped_area tracepoint")
	}
	if p.changeOrder {
		path("change order", "numbered at mmap_lock:mmap_lock_released", "")
	} else {
		path("change order", "the order records arrive", "no usable mmap_lock:mmap_lock_released tracepoint (6.1+)")
	}
	path("backup programs", strconv.Itoa(backups), backupsWhy)
}

// noteUncertain says what reports will call uncertain, or note.
func (p *prober) noteUncertain() {
	note := func(s string) { p.r.Uncertain = append(p.r.Uncertain, s) }
	note("records dropped because the ring buffer was full are counted, " +
		"and the reports of the processes they belonged to say uncertain")
	if !p.execVMAs || p.cfg.NoExecVMAs {
		note("a mapping made or removed between an exec and mmtrace's read of /proc/PID/maps " +
			"is missed: each report notes that its exec-time layout came from /proc")
	}
	if !p.changeOrder {
		note("memory calls of racing threads are modelled in the order their records arrive, " +
			"which can differ from the order they took effect")
	}
	if p.noIA32 && p.ia32 {
		note("32-bit images: their syscalls are not seen, so their reports say uncertain")
	}
	if p.preempt != "none" && p.preempt != "voluntary" {
		if p.backups > 0 {
			note("records the kernel skipped (a task preempted inside a program) " +
				"that no backup copy covered are counted lost, and live reports say uncertain")
		} else {
			note("records the kernel skipped (a task preempted inside a program) " +
				"are counted lost, and live reports say uncertain: there are no backup programs here")
		}
	}
}

// loadAndAttach is the final word: load and attach everything, tracing
// nothing.
func (p *prober) loadAndAttach() {
	if len(p.r.Blockers) > 0 {
		p.add("load and attach", Unknown, true, "not tried: something required is missing")
		return
	}
	ocfg := p.cfg
	ocfg.NoIA32 = p.noIA32
	ocfg.Comms, ocfg.PIDs, ocfg.TraceAll = nil, nil, false
	ocfg.RingSize = os.Getpagesize()
	start := time.Now()
	tr, err := Open(ocfg)
	if err != nil {
		p.add("load and attach", No, true, err.Error())
		return
	}
	n := len(tr.links)
	tr.Close()
	p.add("load and attach", Yes, true, fmt.Sprintf("%d programs loaded and attached in %d ms (tracing nothing), then detached",
		n, time.Since(start).Milliseconds()))
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
