// Package loader loads mmtrace's kernel programs against the running
// kernel, sets their filters, attaches them, and hands out the ring buffer
// records they produce. It owns the kernel objects' whole lifecycle.
package loader

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/mmtrace/mmtrace/bpf"
)

// DefaultRingSize is the ring buffer size in bytes. At the traced loop's
// full rate (~2 M records/s, 88-byte records) it holds about 50 ms of
// backlog, far more than the 2 ms drain interval.
const DefaultRingSize = 16 << 20

// Config says what to trace.
type Config struct {
	Comms    []string // trace new images whose comm (after exec) is one of these
	PIDs     []uint32 // trace these processes (and their children) from now on
	TraceAll bool     // trace every new image (no --comm, --pid or command)
	RingSize int      // ring buffer bytes, a power of two multiple of the page size; 0: DefaultRingSize
	BTFPath  string   // external BTF for the running kernel; "": /sys/kernel/btf/vmlinux
	// NoIA32 traces 64-bit syscalls only, through the syscalls:* tracepoints
	// of the memory and exec calls: untraced processes then pay only for
	// those calls, not for every syscall (see the README's numbers).
	NoIA32 bool
	// NoExecVMAs loads the exec program without the VMA walk even where
	// the kernel has the iterator: it tests the fallback on new kernels.
	NoExecVMAs bool
	// WakeupBytes forces a consumer wakeup once this much data waits in
	// the ring; 0: a quarter of the ring.
	WakeupBytes uint64
	// Backups is how many backup copies of each program to attach (see
	// Features.Backups): AutoBackups picks by the kernel's preemption
	// model; 0 attaches none, which tests use to show what they cover.
	Backups int
	// BackupsOnly attaches the backups but not the programs they back
	// up, as if the kernel skipped every one: tests use it to check that
	// the backups alone see everything, on any kernel.
	BackupsOnly bool
	// LockPath traces memory calls at the mmap lock where the kernel
	// allows it (see Features.LockPath); else at the syscall tracepoints.
	LockPath bool
}

// AutoBackups lets Open choose the number of backup programs.
const AutoBackups = -1

// autoBackups is how many backups Open attaches on a kernel that may
// preempt a task inside a program. In a 1-vCPU VM on 7.3 one backup left
// a call uncovered in 1 of 12 single-threaded churns (3000 calls each);
// with four threads hammering the CPU 388 of 3321 skips were lost with
// one, 22 with two, 1 with three. Each copy costs every syscall on the
// machine (README), so the default is two and --backups raises it.
const autoBackups = 2

// Features says what the running kernel lets mmtrace see.
type Features struct {
	// ExecVMAs: the VMA iterator kfuncs (Linux 6.7+) let the exec record
	// carry the image's VMAs. Without them the loader's mappings are
	// read from /proc by the consumer.
	ExecVMAs bool
	// ExecVMAsReason says why ExecVMAs is false.
	ExecVMAsReason string
	// Searches: the mmap:vm_unmapped_area tracepoint shows the kernel's
	// search for free space, which names top-down and bottom-up placement
	// exactly. Without it placement is inferred from the image's layout.
	Searches bool
	// ChangeOrder: the mmap_lock:mmap_lock_released tracepoint (6.1+)
	// numbers each memory call's change in the order it took effect, so
	// the consumer can put exit records of racing threads back in order.
	ChangeOrder bool
	// Backups: each program is followed on its tracepoint by this many
	// backup copies, which do its work for a call the kernel skipped it
	// for because another task was preempted inside it on the same CPU.
	Backups int
	// BackupsReason says why there are backups or none.
	BackupsReason string
	// LockPath: memory calls are seen when they take and release the
	// mmap lock (mmap_lock tracepoints, the saved user registers and the
	// mm's maple tree: 6.1+), so no syscall tracepoint is attached and
	// untraced tasks' syscalls cost nothing. Otherwise the raw syscall
	// tracepoints (or syscalls:* with NoIA32) carry them.
	LockPath bool
	// PathReason says which path memory calls take, and why.
	PathReason string
	// LockUnpreempted: the lock programs run with preemption off (the
	// bpf_preempt_disable kfunc, and a verifier that takes it with the
	// path walk's global function inside).
	LockUnpreempted bool
}

// Tracer is the loaded and attached set of kernel programs.
type Tracer struct {
	Features Features

	coll   *ebpf.Collection
	links  []link.Link
	reader *ringbuf.Reader
	traced *ebpf.Map

	lostSeen    map[uint32]uint64
	missesSeen  uint64
	unseenSkips uint64
}

type attachPoint struct{ prog, tracepoint string }

// Tracepoints the programs attach to, by program name.
var attachPoints = []attachPoint{
	{"handle_fork", "sched:sched_process_fork"},
	{"handle_exit", "sched:sched_process_exit"},
	// The exec program is chosen at load time (chooseExecProgram); the search
	// program is attached where the kernel has its tracepoint.
}

// Open loads the programs, seeds the filters and attaches everything. On
// error nothing stays loaded.
func Open(cfg Config) (_ *Tracer, err error) {
	if err := checkPrerequisites(cfg); err != nil {
		return nil, err
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("lift the memlock limit for BPF maps: %w", err)
	}

	opts := ebpf.CollectionOptions{}
	if cfg.BTFPath != "" {
		spec, err := loadBTF(cfg.BTFPath)
		if err != nil {
			return nil, err
		}
		opts.Programs.KernelTypes = spec
	}

	t := &Tracer{lostSeen: map[uint32]uint64{}}
	defer func() {
		if err != nil {
			t.Close()
		}
	}()

	execProg := t.chooseExecProgram(cfg, opts.Programs.KernelTypes)
	kernelTypes := opts.Programs.KernelTypes
	if kernelTypes == nil {
		kernelTypes, _ = btf.LoadKernelSpec()
	}
	lockProg := t.chooseMemoryPath(&cfg, kernelTypes)
	points := t.attachPointsFor(cfg, execProg, lockProg)
	if err := t.load(cfg, &opts, points, kernelTypes); err != nil {
		return nil, err
	}

	t.traced = t.coll.Maps[bpf.MmtraceMapTraced]
	if err := t.seedFilters(cfg); err != nil {
		return nil, err
	}
	if err := t.attach(cfg, points); err != nil {
		return nil, err
	}

	t.reader, err = ringbuf.NewReader(t.coll.Maps[bpf.MmtraceMapEvents])
	if err != nil {
		return nil, fmt.Errorf("open ring buffer reader: %w", err)
	}
	return t, nil
}

// chooseExecProgram prefers the exec program that walks VMAs with the
// iterator kfuncs; on kernels without them it takes the one that does
// not. (The features package's program probes answer EPERM for tp_btf
// here, so it asks BTF.)
func (t *Tracer) chooseExecProgram(cfg Config, kernelTypes *btf.Spec) string {
	if cfg.NoExecVMAs {
		t.Features.ExecVMAsReason = "the VMA walk at exec is turned off (--no-exec-vmas): " +
			"the ELF loader's mappings at exec are read from /proc/PID/maps instead"
		return "handle_exec"
	}
	ok, why := haveVMAIterator(kernelTypes)
	if !ok {
		t.Features.ExecVMAsReason = why
		return "handle_exec"
	}
	t.Features.ExecVMAs = true
	return "handle_exec_vmas"
}

// chooseMemoryPath decides where memory calls are seen (the mmap lock or
// the syscall tracepoints), what the kernel numbers and searches, and how
// many backups run. It returns the mmap_lock_released program for this
// kernel ("": none). The lock path sees both ABIs, so it clears
// cfg.NoIA32.
func (t *Tracer) chooseMemoryPath(cfg *Config, kernelTypes *btf.Spec) string {
	t.Features.Searches = hasType[*btf.Typedef](kernelTypes, "btf_trace_vm_unmapped_area")
	lockProg := lockReleasedProgram(kernelTypes)
	t.Features.ChangeOrder = lockProg != ""
	t.Features.LockPath, t.Features.PathReason = chooseLockPath(*cfg, kernelTypes, lockProg)
	if t.Features.LockPath {
		cfg.NoIA32 = false // both ABIs are seen at the lock, at no cost
	}
	t.Features.Backups, t.Features.BackupsReason = chooseBackups(*cfg)
	if t.Features.LockPath && t.Features.Backups > 0 && !hasMember(kernelTypes, "mm_struct", "mm_lock_seq") {
		// The lock programs' backups tell events apart by the mm's count
		// of write sections (see lock_event_id in the BPF source).
		t.Features.Backups, t.Features.BackupsReason = 0,
			"this kernel does not count mmap lock write sections (mm_struct.mm_lock_seq, 6.4+): no backup programs"
	}
	return lockProg
}

// attachPointsFor lists the tracepoints and their programs, by the
// programs' plain names, for the features chosen.
func (t *Tracer) attachPointsFor(cfg Config, execProg, lockProg string) []attachPoint {
	points := append(attachPoints[:len(attachPoints):len(attachPoints)],
		attachPoint{execProg, "sched:sched_process_exec"})
	switch {
	case t.Features.LockPath:
		memcg := lockProg == lockPrograms[1]
		points = append(points,
			attachPoint{pick(memcg, "lock_acquired_memcg", "lock_acquired"), "mmap_lock:mmap_lock_acquire_returned"},
			attachPoint{pick(memcg, "lock_released_memcg", "lock_released"), "mmap_lock:mmap_lock_released"})
	case !cfg.NoIA32:
		points = append(points,
			attachPoint{"handle_sys_enter", "raw_syscalls:sys_enter"},
			attachPoint{"handle_sys_exit", "raw_syscalls:sys_exit"})
	}
	if t.Features.ChangeOrder && !t.Features.LockPath {
		points = append(points, attachPoint{lockProg, "mmap_lock:mmap_lock_released"})
	}
	if t.Features.Searches {
		points = append(points, attachPoint{"handle_unmapped_area", "mmap:vm_unmapped_area"})
	}
	return points
}

// load loads the programs of points (and, with NoIA32, the 64-bit-only
// ones) with the maps they use.
func (t *Tracer) load(cfg Config, opts *ebpf.CollectionOptions, points []attachPoint, kernelTypes *btf.Spec) error {
	wanted := map[string]bool{}
	for _, p := range points {
		wanted[p.prog] = true
	}
	if cfg.NoIA32 {
		wanted["handle_enter64"], wanted["handle_exit64"] = true, true
	}
	// The lock programs turn preemption off where the verifier lets
	// them; one that refuses them that way gets them without (6.12:
	// no global function calls with preemption off).
	t.Features.LockUnpreempted = t.Features.LockPath && hasType[*btf.Func](kernelTypes, "bpf_preempt_disable")
	var err error
	t.coll, err = loadCollection(cfg, opts, wanted, t.Features)
	var verr *ebpf.VerifierError
	if err != nil && t.Features.LockUnpreempted && errors.As(err, &verr) {
		t.Features.LockUnpreempted = false
		t.coll, err = loadCollection(cfg, opts, wanted, t.Features)
	}
	if err != nil {
		return explainLoadError(err, kernelTypes)
	}
	return nil
}

// attach attaches the loaded programs to points, then with NoIA32 the
// 64-bit-only programs to their syscalls:* tracepoints.
func (t *Tracer) attach(cfg Config, points []attachPoint) error {
	// With backups: each program's guarded form, then the copies of its
	// backup (a tracepoint calls its programs in attach order).
	for _, p := range points {
		for _, form := range programOf(p.prog).forms(cfg, t.Features) {
			name := form.name
			l, err := link.AttachTracing(link.TracingOptions{
				Program:    t.coll.Programs[name],
				AttachType: ebpf.AttachTraceRawTp,
			})
			if err != nil {
				return fmt.Errorf("attach %s to tracepoint %s: %w", name, p.tracepoint, err)
			}
			t.links = append(t.links, l)
		}
	}
	if !cfg.NoIA32 {
		return nil
	}
	if err := ensureTracefs(); err != nil {
		return err
	}
	// One program for all the entries, one for all the exits.
	for _, call := range syscalls64 {
		for _, dir := range []struct{ prog, event string }{
			{"handle_enter64", "sys_enter_" + call}, {"handle_exit64", "sys_exit_" + call},
		} {
			l, err := link.Tracepoint("syscalls", dir.event, t.coll.Programs[dir.prog], nil)
			if err != nil {
				return fmt.Errorf("attach to tracepoint syscalls:%s: %w", dir.event, err)
			}
			t.links = append(t.links, l)
		}
	}
	return nil
}

// ensureTracefs mounts tracefs where the kernel documents it if nothing
// has: classic tracepoints are found by their ids in tracefs.
func ensureTracefs() error {
	for _, dir := range []string{"/sys/kernel/tracing/events", "/sys/kernel/debug/tracing/events"} {
		if _, err := os.Stat(dir); err == nil {
			return nil
		}
	}
	if err := unix.Mount("nodev", "/sys/kernel/tracing", "tracefs", 0, ""); err != nil {
		return fmt.Errorf("--no-ia32 attaches to syscalls:* tracepoints, which need tracefs; "+
			"mounting it at /sys/kernel/tracing failed: %w", err)
	}
	return nil
}

// syscalls64 are the calls the 64-bit-only programs attach to.
var syscalls64 = []string{"mmap", "munmap", "mremap", "mprotect", "brk", "personality", "execve", "execveat",
	"pkey_mprotect", "shmat", "shmdt", "prctl", "io_setup", "io_destroy", "remap_file_pages"}

// loadCollection loads the wanted programs (by plain name) in the forms
// feat.Backups asks for, and the maps they use.
func loadCollection(cfg Config, opts *ebpf.CollectionOptions, wanted map[string]bool, feat Features) (*ebpf.Collection, error) {
	spec, err := bpf.LoadMmtrace()
	if err != nil {
		return nil, fmt.Errorf("read embedded BPF object: %w", err)
	}
	keep := map[string]*ebpf.ProgramSpec{}
	for _, p := range programs {
		if !wanted[p.plain] {
			continue
		}
		for _, form := range p.forms(cfg, feat) {
			// Copies of one backup are distinct kernel programs, each
			// with its own recursion guard.
			keep[form.name] = spec.Programs[form.spec].Copy()
		}
	}
	spec.Programs = keep
	if feat.Backups == 0 {
		// Task storage maps need 5.11+; only the guarded programs use it.
		delete(spec.Maps, "marks")
	}

	ring := cfg.RingSize
	if ring == 0 {
		ring = DefaultRingSize
	}
	spec.Maps[bpf.MmtraceMapEvents].MaxEntries = uint32(ring)
	wakeup := cfg.WakeupBytes
	if wakeup == 0 {
		wakeup = uint64(ring) / 4
	}
	set := map[string]any{
		"trace_all":        boolByte(cfg.TraceAll),
		"filter_comm":      boolByte(len(cfg.Comms) > 0),
		"self_tgid":        uint32(os.Getpid()),
		"wakeup_bytes":     wakeup,
		"change_order":     boolByte(feat.ChangeOrder),
		"lock_unpreempted": boolByte(feat.LockPath && feat.LockUnpreempted),
	}
	for name, v := range set {
		if err := spec.Variables[name].Set(v); err != nil {
			return nil, fmt.Errorf("set %s: %w", name, err)
		}
	}
	coll, err := ebpf.NewCollectionWithOptions(spec, *opts)
	if err != nil {
		return nil, err
	}
	return coll, nil
}

// lockPrograms are the variants of the mmap_lock_released program: the
// tracepoint lost its memcg path argument in 6.13 or so.
var lockPrograms = [2]string{"handle_lock_released", "handle_lock_released_memcg"}

// lockReleasedProgram picks the mmap_lock_released program for the
// kernel's form of the tracepoint, or "" where it has none.
func lockReleasedProgram(kernel *btf.Spec) string {
	var td *btf.Typedef
	if kernel == nil || kernel.TypeByName("btf_trace_mmap_lock_released", &td) != nil {
		return ""
	}
	ptr, ok := td.Type.(*btf.Pointer)
	if !ok {
		return ""
	}
	proto, ok := ptr.Target.(*btf.FuncProto)
	if !ok {
		return ""
	}
	// (void *data, struct mm_struct *mm, [const char *memcg_path,] bool write)
	switch len(proto.Params) {
	case 3:
		return lockPrograms[0]
	case 4:
		return lockPrograms[1]
	}
	return ""
}

// LockPathPossible reports whether Open with cfg traces memory calls at
// the mmap lock on this kernel, and says why in a sentence.
func LockPathPossible(cfg Config) (bool, string) {
	var kernel *btf.Spec
	var err error
	if cfg.BTFPath != "" {
		kernel, err = loadBTF(cfg.BTFPath)
	} else {
		kernel, err = btf.LoadKernelSpec()
	}
	if err != nil {
		return false, fmt.Sprintf("cannot read kernel BTF: %v", err)
	}
	return chooseLockPath(cfg, kernel, lockReleasedProgram(kernel))
}

// chooseLockPath decides whether memory calls are traced at the mmap
// lock, and says why in a sentence.
func chooseLockPath(cfg Config, kernel *btf.Spec, lockProg string) (bool, string) {
	if !cfg.LockPath {
		return false, "memory calls are traced at the syscall tracepoints (--lock-path asks for the mmap lock)"
	}
	var missing []string
	if lockProg == "" || !hasType[*btf.Typedef](kernel, "btf_trace_mmap_lock_acquire_returned") {
		missing = append(missing, "the mmap_lock tracepoints")
	}
	if !hasMember(kernel, "mm_struct", "mm_mt") {
		missing = append(missing, "the maple tree of VMAs (6.1+)")
	}
	if !hasEnumValue(kernel, "bpf_func_id", "BPF_FUNC_task_pt_regs") {
		missing = append(missing, "bpf_task_pt_regs (5.15+)")
	}
	if len(missing) > 0 {
		return false, "this kernel lacks " + strings.Join(missing, ", ") +
			": memory calls are traced at the syscall tracepoints, which every task's syscalls pay for"
	}
	return true, "memory calls are traced at the mmap lock: no syscall tracepoint is attached"
}

func pick(cond bool, yes, no string) string {
	if cond {
		return yes
	}
	return no
}

// hasMember reports whether the kernel's struct has a member of that name.
func hasMember(kernel *btf.Spec, typ, member string) bool {
	var st *btf.Struct
	if kernel == nil || kernel.TypeByName(typ, &st) != nil {
		return false
	}
	return structHas(st.Members, member)
}

// structHas looks for member among members and inside anonymous ones
// (mm_struct keeps its fields in an unnamed struct).
func structHas(members []btf.Member, member string) bool {
	for _, m := range members {
		if m.Name == member {
			return true
		}
		if m.Name == "" {
			if st, ok := btf.UnderlyingType(m.Type).(*btf.Struct); ok && structHas(st.Members, member) {
				return true
			}
		}
	}
	return false
}

// hasEnumValue reports whether the kernel's enum has a value of that name.
func hasEnumValue(kernel *btf.Spec, typ, value string) bool {
	var en *btf.Enum
	if kernel == nil || kernel.TypeByName(typ, &en) != nil {
		return false
	}
	for _, v := range en.Values {
		if v.Name == value {
			return true
		}
	}
	return false
}

// hasType reports whether the kernel's BTF has a type of that kind and name.
func hasType[T btf.Type](kernel *btf.Spec, name string) bool {
	if kernel == nil {
		return false
	}
	var typ T
	return kernel.TypeByName(name, &typ) == nil
}

// haveVMAIterator reports whether the kernel has the bpf_iter_task_vma
// kfuncs, and if not, the sentence saying so.
func haveVMAIterator(kernel *btf.Spec) (bool, string) {
	if kernel == nil {
		var err error
		if kernel, err = btf.LoadKernelSpec(); err != nil {
			return false, fmt.Sprintf("cannot read kernel BTF to look for the VMA iterator: %v", err)
		}
	}
	var fn *btf.Func
	if err := kernel.TypeByName("bpf_iter_task_vma_new", &fn); err != nil {
		return false, "this kernel has no bpf_iter_task_vma kfuncs (Linux 6.7+): " +
			"the ELF loader's mappings at exec are read from /proc/PID/maps instead"
	}
	return true, ""
}

func boolByte(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

func (t *Tracer) seedFilters(cfg Config) error {
	comms := t.coll.Maps[bpf.MmtraceMapCommFilter]
	for _, c := range cfg.Comms {
		var key [16]byte
		copy(key[:15], c) // the kernel keeps 15 bytes of comm
		if err := comms.Put(key, uint8(1)); err != nil {
			return fmt.Errorf("add comm %q to the filter: %w", c, err)
		}
	}
	for _, pid := range cfg.PIDs {
		if err := t.trace(pid); err != nil {
			return err
		}
	}
	return nil
}

// trace adds a running process to the traced set: its syscalls, exec,
// children and exit are reported from now on.
func (t *Tracer) trace(pid uint32) error {
	// One byte per tgid, len(Pid) to an element (struct traced_block). Only
	// called before the programs are attached, so the read-modify-write
	// cannot race with the kernel's own updates.
	var block bpf.MmtraceTracedBlock
	n := uint32(len(block.Pid))
	key := pid / n
	if err := t.traced.Lookup(key, &block); err != nil {
		return fmt.Errorf("trace pid %d: %w", pid, err)
	}
	block.Pid[pid%n] = 1
	if err := t.traced.Put(key, block); err != nil {
		return fmt.Errorf("trace pid %d: %w", pid, err)
	}
	return nil
}

// SetDeadline makes a pending ReadInto return os.ErrDeadlineExceeded at
// t after handing out whatever records were submitted without a wakeup.
func (t *Tracer) SetDeadline(d time.Time) { t.reader.SetDeadline(d) }

// ReadInto reads the next record into rec, reusing its buffer.
func (t *Tracer) ReadInto(rec *ringbuf.Record) error { return t.reader.ReadInto(rec) }

// Flush makes a blocked ReadInto hand out every pending record and then
// return ringbuf.ErrFlushed.
func (t *Tracer) Flush() error { return t.reader.Flush() }

// Lost is the number of records dropped for one process since the last
// call to NewLosses.
type Lost struct {
	PID   uint32
	Count uint64
}

// NewLosses returns drops counted in the kernel since the last call, per
// process. Drops are counted when the ring buffer is full.
func (t *Tracer) NewLosses() ([]Lost, error) {
	var (
		out []Lost
		pid uint32
		n   uint64
	)
	it := t.coll.Maps[bpf.MmtraceMapLostByPid].Iterate()
	for it.Next(&pid, &n) {
		if n > t.lostSeen[pid] {
			out = append(out, Lost{PID: pid, Count: n - t.lostSeen[pid]})
			t.lostSeen[pid] = n
		}
	}
	if err := it.Err(); err != nil {
		return out, fmt.Errorf("read lost counters: %w", err)
	}
	return out, nil
}

// NewLossesOf is NewLosses for one process: called before its exit
// record is handled (upTo -1: every drop counted so far), or before its
// exec record with the counter the kernel read just before the exec
// (upTo), so drops are counted in the image they hit.
func (t *Tracer) NewLossesOf(pid uint32, upTo int64) (uint64, error) {
	n := uint64(upTo)
	if upTo < 0 {
		if err := t.coll.Maps[bpf.MmtraceMapLostByPid].Lookup(pid, &n); err != nil {
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				return 0, nil
			}
			return 0, fmt.Errorf("read lost counter of pid %d: %w", pid, err)
		}
	}
	if n <= t.lostSeen[pid] {
		return 0, nil
	}
	d := n - t.lostSeen[pid]
	t.lostSeen[pid] = n
	return d, nil
}

// NewMisses is how many records, since the last call, the kernel skipped
// with nobody seeing whom they belonged to. The kernel runs a program at
// most once per CPU at a time, so a task preempted inside one makes every
// other task on that CPU skip it, counted only in the program's recursion
// misses. Where that can happen the programs have backups (see the BPF
// source) that do the skipped work and count what they did, for every
// task: only skips beyond those are lost. They name no process, so every
// live image is affected. (A skipped mmap_lock_released program is not a
// lost record: the record it would have numbered says so itself.)
func (t *Tracer) NewMisses() (uint64, error) {
	// The kernel counts a skip before the backups run, so the misses are
	// read first and the backups' counts after: a skip read here has
	// been done by a backup by then, or never, unless the task that was
	// skipped is itself preempted before its backups ran. That does not
	// last: a count that looks like a loss is read again for a while.
	misses := make([]uint64, len(programs))
	for i, p := range programs {
		n, err := t.missesOf(p)
		if err != nil {
			return 0, err
		}
		misses[i] = n
	}
	var total uint64
	for try := 0; ; try++ {
		total = 0
		for i, p := range programs {
			n, err := t.unseen(p, misses[i])
			if err != nil {
				return 0, err
			}
			total += n
		}
		if total <= t.missesSeen || try == missesRereads || t.Features.Backups == 0 {
			break
		}
		time.Sleep(missesRereadDelay)
	}
	if total <= t.missesSeen {
		return 0, nil
	}
	d := total - t.missesSeen
	t.missesSeen = total
	return d, nil
}

// A skipped task parked before its backups waits for the CPU: with a few
// busy tasks on one (the 1-vCPU test VMs), tens of milliseconds.
const (
	missesRereads     = 5
	missesRereadDelay = 10 * time.Millisecond
)

// missesOf is how often the kernel skipped p's primary (for
// --backups-only, its first backup copy, which stands in for it).
func (t *Tracer) missesOf(p kernelProgram) (uint64, error) {
	if !p.counted {
		return 0, nil
	}
	for _, name := range []string{p.plain, p.guarded, backupName(p.backup, 0)} {
		if prog := t.coll.Programs[name]; name != "" && prog != nil {
			return recursionMisses(prog)
		}
	}
	return 0, nil
}

// unseen is how many of p's skips no backup did.
func (t *Tracer) unseen(p kernelProgram, misses uint64) (uint64, error) {
	if !p.counted {
		return 0, nil
	}
	if t.coll.Programs[p.plain] != nil || t.coll.Programs[backupName(p.backup, 0)] == nil {
		return misses, nil // no backups
	}
	seen, err := sumPerCPU(t.coll.Maps[bpf.MmtraceMapBackupSeen], p.slot)
	if err != nil {
		return 0, err
	}
	unknown, err := sumPerCPU(t.coll.Maps[bpf.MmtraceMapPhaseUnknown], p.slot)
	if err != nil {
		return 0, err
	}
	if t.coll.Programs[p.guarded] == nil {
		// --backups-only: every event looked skipped to the copies, so
		// their count says nothing about the first copy's own skips.
		seen = 0
	}
	if n := misses + unknown; n > seen {
		return n - seen, nil
	}
	return 0, nil
}

// programs lists each kernel program in its three forms: plain (no
// backups), guarded (the primary where there are backups) and backup,
// with the slot of the counter maps its backups use. Counted: its skips
// are lost records.
type kernelProgram struct {
	plain, guarded, backup string
	slot                   bpf.MmtraceProgramSlot // its backups' counters
	counted                bool
}

var programs = []kernelProgram{
	{bpf.MmtraceProgHandleSysEnter, bpf.MmtraceProgHandleSysEnterGuarded, bpf.MmtraceProgHandleSysEnterBackup, bpf.MmtraceProgramSlotSLOT_ENTER, true},
	{bpf.MmtraceProgHandleSysExit, bpf.MmtraceProgHandleSysExitGuarded, bpf.MmtraceProgHandleSysExitBackup, bpf.MmtraceProgramSlotSLOT_EXIT, true},
	{bpf.MmtraceProgHandleExit, bpf.MmtraceProgHandleExitGuarded, bpf.MmtraceProgHandleExitBackup, bpf.MmtraceProgramSlotSLOT_PROC_EXIT, true},
	{bpf.MmtraceProgHandleFork, bpf.MmtraceProgHandleForkGuarded, bpf.MmtraceProgHandleForkBackup, bpf.MmtraceProgramSlotSLOT_FORK, true},
	{bpf.MmtraceProgHandleExecVmas, bpf.MmtraceProgHandleExecVmasGuarded, bpf.MmtraceProgHandleExecVmasBackup, bpf.MmtraceProgramSlotSLOT_EXEC, true},
	{bpf.MmtraceProgHandleExec, bpf.MmtraceProgHandleExecGuarded, bpf.MmtraceProgHandleExecBackup, bpf.MmtraceProgramSlotSLOT_EXEC, true},
	{bpf.MmtraceProgHandleUnmappedArea, bpf.MmtraceProgHandleUnmappedAreaGuarded, bpf.MmtraceProgHandleUnmappedAreaBackup, bpf.MmtraceProgramSlotSLOT_SEARCH, true},
	{bpf.MmtraceProgHandleLockReleased, "", bpf.MmtraceProgHandleLockReleasedBackup, bpf.MmtraceProgramSlotSLOT_LOCK, false},
	{bpf.MmtraceProgHandleLockReleasedMemcg, "", bpf.MmtraceProgHandleLockReleasedMemcgBackup, bpf.MmtraceProgramSlotSLOT_LOCK, false},
	{bpf.MmtraceProgLockAcquired, bpf.MmtraceProgLockAcquiredGuarded, bpf.MmtraceProgLockAcquiredBackup, bpf.MmtraceProgramSlotSLOT_LOCK_ACQUIRED, true},
	{bpf.MmtraceProgLockAcquiredMemcg, bpf.MmtraceProgLockAcquiredMemcgGuarded, bpf.MmtraceProgLockAcquiredMemcgBackup, bpf.MmtraceProgramSlotSLOT_LOCK_ACQUIRED, true},
	{bpf.MmtraceProgLockReleased, bpf.MmtraceProgLockReleasedGuarded, bpf.MmtraceProgLockReleasedBackup, bpf.MmtraceProgramSlotSLOT_LOCK, true},
	{bpf.MmtraceProgLockReleasedMemcg, bpf.MmtraceProgLockReleasedMemcgGuarded, bpf.MmtraceProgLockReleasedMemcgBackup, bpf.MmtraceProgramSlotSLOT_LOCK, true},
	{bpf.MmtraceProgHandleEnter64, "", "", bpf.MmtraceProgramSlotSLOT_ENTER, true},
	{bpf.MmtraceProgHandleExit64, "", "", bpf.MmtraceProgramSlotSLOT_ENTER, true},
}

// programOf is the programs entry of a plain name.
// programForm is one kernel program standing in for a kernelProgram on
// its tracepoint: name is what it is loaded as, spec the program in the
// object it is a copy of.
type programForm struct{ name, spec string }

// forms lists the programs that stand in for p, in attach order (a
// tracepoint runs its programs in that order): p itself without backups;
// else its guarded form, then the copies of its backup.
func (p kernelProgram) forms(cfg Config, feat Features) []programForm {
	if feat.Backups == 0 || p.guarded == "" && p.backup == "" {
		return []programForm{{p.plain, p.plain}}
	}
	var out []programForm
	if !cfg.BackupsOnly {
		primary := cmp.Or(p.guarded, p.plain)
		out = append(out, programForm{primary, primary})
	}
	for i := range feat.Backups {
		out = append(out, programForm{backupName(p.backup, i), p.backup})
	}
	return out
}

func programOf(plain string) kernelProgram {
	for _, p := range programs {
		if p.plain == plain {
			return p
		}
	}
	return kernelProgram{plain: plain}
}

func backupName(backup string, i int) string {
	return fmt.Sprintf("%s%d", backup, i+1)
}

func recursionMisses(p *ebpf.Program) (uint64, error) {
	st, err := p.Stats()
	if err != nil {
		return 0, fmt.Errorf("read run statistics of a kernel program: %w", err)
	}
	return st.RecursionMisses, nil
}

func sumPerCPU[K ~uint32](m *ebpf.Map, key K) (uint64, error) {
	var perCPU []uint64
	if err := m.Lookup(key, &perCPU); err != nil {
		return 0, fmt.Errorf("read %s: %w", m, err)
	}
	var sum uint64
	for _, n := range perCPU {
		sum += n
	}
	return sum, nil
}

// SkipStats says, for -v, how often the kernel skipped each program
// and what the backups made of it.
func (t *Tracer) SkipStats() []string {
	var lines []string
	for _, p := range programs {
		name := p.plain
		if t.coll.Programs[name] == nil {
			name = p.guarded
		}
		prog := t.coll.Programs[name]
		if prog == nil {
			continue
		}
		misses, err := recursionMisses(prog)
		if err != nil {
			return append(lines, err.Error())
		}
		line := fmt.Sprintf("%s: the kernel skipped it %d times", name, misses)
		if t.coll.Programs[backupName(p.backup, 0)] != nil {
			seen, _ := sumPerCPU(t.coll.Maps[bpf.MmtraceMapBackupSeen], p.slot)
			unknown, _ := sumPerCPU(t.coll.Maps[bpf.MmtraceMapPhaseUnknown], p.slot)
			line += fmt.Sprintf("; backups did %d, %d without task storage; skips of the backups:", seen, unknown)
			for i := range t.Features.Backups {
				n, _ := recursionMisses(t.coll.Programs[backupName(p.backup, i)])
				line += fmt.Sprintf(" %d", n)
			}
		}
		lines = append(lines, line)
	}
	return lines
}

// SkipsCovered is how many calls the backups did because the kernel
// skipped the primary program.
func (t *Tracer) SkipsCovered() (uint64, error) {
	if t.Features.Backups == 0 {
		return 0, nil
	}
	var sum uint64
	for slot := bpf.MmtraceProgramSlotSLOT_ENTER; slot <= bpf.MmtraceProgramSlotSLOT_LOCK; slot++ {
		n, err := sumPerCPU(t.coll.Maps[bpf.MmtraceMapBackupSeen], slot)
		if err != nil {
			return 0, err
		}
		sum += n
	}
	return sum, nil
}

// LostTotal is every record the kernel failed to reserve since load.
func (t *Tracer) LostTotal() (uint64, error) {
	var perCPU []uint64
	if err := t.coll.Maps[bpf.MmtraceMapLostTotal].Lookup(uint32(0), &perCPU); err != nil {
		return 0, fmt.Errorf("read lost total: %w", err)
	}
	var sum uint64
	for _, n := range perCPU {
		sum += n
	}
	return sum, nil
}

// Close detaches and unloads everything, in reverse order.
func (t *Tracer) Close() error {
	var errs []error
	for i := len(t.links) - 1; i >= 0; i-- {
		errs = append(errs, t.links[i].Close())
	}
	t.links = nil
	if t.reader != nil {
		errs = append(errs, t.reader.Close())
		t.reader = nil
	}
	if t.coll != nil {
		t.coll.Close()
		t.coll = nil
	}
	return errors.Join(errs...)
}

// checkPrerequisites turns the common reasons for failing into one
// sentence each, before the verifier gets a chance to be cryptic.
func checkPrerequisites(cfg Config) error {
	if cfg.BTFPath == "" {
		if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
			return errors.New("this kernel exposes no BTF at /sys/kernel/btf/vmlinux " +
				"(it needs CONFIG_DEBUG_INFO_BTF=y); pass --btf FILE with BTF for the running kernel")
		}
	} else if err := CheckBTFFile(cfg.BTFPath); err != nil {
		return err
	}
	if err := features.HaveMapType(ebpf.RingBuf); err != nil {
		if errors.Is(err, ebpf.ErrNotSupported) {
			return errors.New("this kernel has no BPF ring buffer (Linux 5.8+ needed)")
		}
		if errors.Is(err, os.ErrPermission) && os.Geteuid() != 0 {
			return errPermission
		}
	}
	return nil
}

var errPermission = errors.New("tracing needs root, or CAP_BPF with CAP_PERFMON, to load the kernel programs (replaying with -r does not)")

// explainLoadError says why loading failed: the verifier's words, missing
// privileges, or a kernel whose BTF has no tracepoint types for tp_btf
// programs to attach to (kernel nil: unknown).
func explainLoadError(err error, kernel *btf.Spec) error {
	// The verifier answers EACCES too: say what it said, not "need root".
	var verr *ebpf.VerifierError
	if errors.As(err, &verr) {
		return fmt.Errorf("load kernel programs: the verifier refused them: %+v", verr)
	}
	if errors.Is(err, os.ErrPermission) && os.Geteuid() != 0 {
		return errPermission
	}
	if kernel != nil && !hasType[*btf.Typedef](kernel, "btf_trace_sched_process_exec") {
		return fmt.Errorf("load kernel programs (tp_btf tracepoints need Linux 5.5+ with BTF; "+
			"this kernel's BTF has no btf_trace_sched_process_exec): %w", err)
	}
	return fmt.Errorf("load kernel programs: %w", err)
}
