// Package procfs reads what /proc says about a running process: its
// layout for --pid, and the maps that stand in for the kernel's exec-time
// VMA walk on kernels without the VMA iterator.
package procfs

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/mmtrace/mmtrace/internal/events"
	"github.com/mmtrace/mmtrace/internal/layout"
)

// ReadImage reads a running process's layout (--pid PID).
func ReadImage(pid uint32) (layout.ProcImage, error) {
	dir := fmt.Sprintf("/proc/%d", pid)
	p := layout.ProcImage{PID: pid}
	if err := CheckTraceable(pid); err != nil {
		return p, err
	}
	f, err := os.Open(dir + "/maps")
	if err != nil {
		if os.IsNotExist(err) {
			return p, fmt.Errorf("--pid %d: no such process", pid)
		}
		return p, fmt.Errorf("--pid %d: read its maps: %w", pid, err)
	}
	p.Maps, err = layout.ParseProcMaps(f)
	f.Close()
	if err != nil {
		return p, fmt.Errorf("--pid %d: %w", pid, err)
	}
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return p, fmt.Errorf("--pid %d: read its stat: %w", pid, err)
	}
	if err := parseStat(stat, &p); err != nil {
		return p, fmt.Errorf("--pid %d: %w", pid, err)
	}
	// Exiting since CheckTraceable: its mm is gone, and a layout made of
	// nothing would be made up.
	if len(p.Maps) == 0 {
		return p, fmt.Errorf("pid %d (%s) has no address space to trace (it is exiting)", pid, p.Comm)
	}
	// /proc has no field for the current break; the heap VMA ends at it,
	// page-aligned. No [heap] mapping: the break has not moved.
	p.Brk = p.StartBrk
	for _, m := range p.Maps {
		if m.Path == "[heap]" {
			p.Brk = m.End
		}
	}
	p.Exe, _ = os.Readlink(dir + "/exe")
	if b, err := os.ReadFile(dir + "/personality"); err == nil {
		v, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 16, 32)
		p.Personality = uint32(v)
	}
	p.ABI = elfABI(dir + "/exe")
	return p, nil
}

// pfKthread is PF_KTHREAD in the flags of /proc/PID/stat
// (include/linux/sched.h).
const pfKthread = 0x00200000

// CheckTraceable refuses, in one sentence, a --pid that has no address
// space of its own: a kernel thread, or a zombie. /proc shows either as
// an empty maps file, which would read as a layout of nothing.
func CheckTraceable(pid uint32) error {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if os.IsNotExist(err) || errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("--pid %d: no such process", pid)
	}
	if err != nil {
		return fmt.Errorf("--pid %d: read its stat: %w", pid, err)
	}
	return statTraceable(pid, stat)
}

// statTraceable is CheckTraceable on the contents of /proc/PID/stat
// (proc(5): field 3 the state, 9 the flags, 20 the number of threads).
func statTraceable(pid uint32, b []byte) error {
	comm, fields, err := splitStat(b)
	if err != nil {
		return fmt.Errorf("--pid %d: %w", pid, err)
	}
	if len(fields) < 18 {
		return fmt.Errorf("--pid %d: /proc stat has %d fields, want 48 (Linux 3.3+)", pid, len(fields)+2)
	}
	flags, _ := strconv.ParseUint(fields[9-3], 10, 64)
	threads, _ := strconv.ParseUint(fields[20-3], 10, 64)
	switch state := fields[0]; {
	case flags&pfKthread != 0:
		return fmt.Errorf("pid %d (%s) is a kernel thread: it has no address space to trace", pid, comm)
	case (state == "Z" || state == "X") && threads > 1:
		// A thread-group leader that exited before its threads: the
		// process lives on, but /proc shows no maps through the leader.
		return fmt.Errorf("pid %d (%s): its main thread has exited while other threads run on, "+
			"and /proc shows no address space through it: mmtrace cannot read its layout", pid, comm)
	case state == "Z" || state == "X":
		return fmt.Errorf("pid %d (%s) is a zombie: it has exited and has no address space to trace", pid, comm)
	}
	return nil
}

// splitStat splits /proc/PID/stat into the comm (field 2, which may hold
// spaces and parentheses) and the fields from 3 on.
func splitStat(b []byte) (comm string, fields []string, err error) {
	open, close := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || close < open {
		return "", nil, errors.New("unexpected /proc stat format")
	}
	return string(b[open+1 : close]), strings.Fields(string(b[close+1:])), nil
}

// parseStat reads comm, ppid, startstack and start_brk from
// /proc/PID/stat (proc(5): fields 2, 4, 28, 47). Field 48 is arg_start,
// not the break: stat does not show the current break.
func parseStat(b []byte, p *layout.ProcImage) error {
	comm, fields, err := splitStat(b)
	if err != nil {
		return err
	}
	if len(fields) < 46 {
		return fmt.Errorf("/proc stat has %d fields, want 48 (Linux 3.3+)", len(fields)+2)
	}
	field := func(n int) uint64 {
		v, _ := strconv.ParseUint(fields[n-3], 10, 64)
		return v
	}
	p.Comm = comm
	p.PPID = uint32(field(4))
	p.StartStack = field(28)
	p.StartBrk = field(47)
	return nil
}

// elfABI reads the ELF class of a binary: 32-bit ELF means an i386 image.
func elfABI(path string) events.ABI {
	f, err := os.Open(path)
	if err != nil {
		return events.ABI64
	}
	defer f.Close()
	var ident [5]byte
	if _, err := f.Read(ident[:]); err == nil && string(ident[:4]) == "\x7fELF" && ident[4] == 1 {
		return events.ABI32
	}
	return events.ABI64
}

// ExecVMAs reads a process's mappings as the kernel's exec-time snapshot
// would carry them (the gate page left out, as the kernel's walk never
// sees it). Nil when the process is gone.
func ExecVMAs(pid uint32) []events.VMA {
	f, err := os.Open(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		return nil
	}
	maps, err := layout.ParseProcMaps(f)
	f.Close()
	if err != nil {
		return nil
	}
	var vmas []events.VMA
	for _, m := range maps {
		if m.Path == "[vsyscall]" {
			continue
		}
		vmas = append(vmas, events.VMA{Start: m.Start, End: m.End, Flags: layout.VMFlags(m.Prot, m.Path), PgOff: m.Offset / 4096, Path: m.Path})
	}
	return vmas
}

// LegacyVALayout reads the vm.legacy_va_layout sysctl: true when every
// new image maps bottom-up.
func LegacyVALayout() bool {
	b, err := os.ReadFile("/proc/sys/vm/legacy_va_layout")
	return err == nil && strings.TrimSpace(string(b)) == "1"
}

// OwnMountNS is the calling process's mount namespace inode number, 0 if
// unknown.
func OwnMountNS() uint32 {
	var st unix.Stat_t
	if unix.Stat("/proc/self/ns/mnt", &st) != nil {
		return 0
	}
	return uint32(st.Ino)
}
