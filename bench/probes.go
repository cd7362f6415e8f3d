package main

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
)

// A probeSet is a minimal alternative design for issue 3's cost question:
// programs built at run time (no C) that do nothing, or only mmtrace's
// first step, attached where a design would attach. What an untraced
// process pays for them is the floor of that design.
type probeSet struct {
	name  string
	note  string
	build func() (*attached, error)
}

// attached holds what one probe set loaded; Close undoes it.
type attached struct {
	progs []*ebpf.Program
	maps  []*ebpf.Map
	links []link.Link
}

func (a *attached) Close() error {
	var errs []error
	for _, l := range a.links {
		errs = append(errs, l.Close())
	}
	for _, p := range a.progs {
		errs = append(errs, p.Close())
	}
	for _, m := range a.maps {
		errs = append(errs, m.Close())
	}
	return errors.Join(errs...)
}

// memSyscalls are the syscalls a 64-bit-only design would trace through
// the syscalls:sys_enter_*/sys_exit_* tracepoints (which miss ia32 calls).
var memSyscalls = []string{"mmap", "munmap", "mremap", "mprotect", "brk", "personality", "execve", "execveat"}

var probeSets = []probeSet{
	{
		name: "empty tp_btf raw_syscalls",
		note: "(a) empty programs on raw_syscalls sys_enter+sys_exit (tp_btf): every syscall of every task runs them; 32-bit covered",
		build: func() (*attached, error) {
			return attachRawSyscalls(false)
		},
	},
	{
		name: "tp_btf raw_syscalls + pid lookup",
		note: "(a') the same with mmtrace's first step, a traced-pid hash lookup that misses",
		build: func() (*attached, error) {
			return attachRawSyscalls(true)
		},
	},
	{
		name:  "empty syscalls:sys_*_<mem> (64-bit)",
		note:  "(b) empty programs on syscalls:sys_enter/sys_exit of " + fmt.Sprint(len(memSyscalls)) + " memory and exec syscalls only: 64-bit only design",
		build: attachMemSyscalls,
	},
}

// returnZero is the body of an empty program.
var returnZero = asm.Instructions{
	asm.Mov.Imm(asm.R0, 0),
	asm.Return(),
}

// lookupPid is mmtrace's untraced path: look the current tgid up in a
// hash map, find nothing, return.
func lookupPid(m *ebpf.Map) asm.Instructions {
	return asm.Instructions{
		asm.FnGetCurrentPidTgid.Call(),
		asm.RSh.Imm(asm.R0, 32),
		asm.StoreMem(asm.RFP, -4, asm.R0, asm.Word),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.LoadMapPtr(asm.R1, m.FD()),
		asm.FnMapLookupElem.Call(),
		asm.Mov.Imm(asm.R0, 0),
		asm.Return(),
	}
}

func attachRawSyscalls(withLookup bool) (_ *attached, err error) {
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("lift memlock limit: %w", err)
	}
	a := &attached{}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	body := returnZero
	if withLookup {
		m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 1, MaxEntries: 32768})
		if err != nil {
			return nil, fmt.Errorf("create pid map: %w", err)
		}
		a.maps = append(a.maps, m)
		body = lookupPid(m)
	}
	for _, tp := range []string{"sys_enter", "sys_exit"} {
		prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
			Name:         "bench_" + tp,
			Type:         ebpf.Tracing,
			AttachType:   ebpf.AttachTraceRawTp,
			AttachTo:     tp,
			Instructions: body,
			License:      "GPL",
		})
		if err != nil {
			return nil, fmt.Errorf("load tp_btf program for %s: %w", tp, err)
		}
		a.progs = append(a.progs, prog)
		l, err := link.AttachTracing(link.TracingOptions{Program: prog, AttachType: ebpf.AttachTraceRawTp})
		if err != nil {
			return nil, fmt.Errorf("attach tp_btf %s: %w", tp, err)
		}
		a.links = append(a.links, l)
	}
	return a, nil
}

func attachMemSyscalls() (_ *attached, err error) {
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("lift memlock limit: %w", err)
	}
	a := &attached{}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "bench_syscalls",
		Type:         ebpf.TracePoint,
		Instructions: returnZero,
		License:      "GPL",
	})
	if err != nil {
		return nil, fmt.Errorf("load tracepoint program: %w", err)
	}
	a.progs = append(a.progs, prog)
	for _, sc := range memSyscalls {
		for _, dir := range []string{"enter", "exit"} {
			tp := "sys_" + dir + "_" + sc
			l, err := link.Tracepoint("syscalls", tp, prog, nil)
			if err != nil {
				return nil, fmt.Errorf("attach syscalls:%s: %w", tp, err)
			}
			a.links = append(a.links, l)
		}
	}
	return a, nil
}

// otherTracers counts the tracing BPF programs loaded by others (another
// mmtrace, a test suite): every syscall pays for them, bare runs too, so
// they make every ratio smaller and noisier.
func otherTracers() (names []string) {
	var id ebpf.ProgramID
	for {
		next, err := ebpf.ProgramGetNextID(id)
		if err != nil {
			return names
		}
		id = next
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue
		}
		info, err := p.Info()
		p.Close()
		if err != nil {
			continue
		}
		switch info.Type {
		case ebpf.Tracing, ebpf.RawTracepoint, ebpf.TracePoint, ebpf.Kprobe:
			names = append(names, info.Name)
		}
	}
}
