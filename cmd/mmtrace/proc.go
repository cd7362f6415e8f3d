package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/mmtrace/mmtrace/internal/events"
	"github.com/mmtrace/mmtrace/internal/layout"
)

// procImagesOption is the recording header option that holds the --pid
// processes' layouts as read from /proc (JSON []layout.ProcImage).
const procImagesOption = "proc_images"

// seed starts the model of a running process (--pid) from what /proc
// said about it.
func (s *session) seed(p layout.ProcImage) {
	s.tracker.SeedFromProc(p)
	if snap := s.tracker.Snapshot(p.PID); snap != nil {
		s.out.Snapshot(snap)
	}
}

func readProcImage(pid uint32) (layout.ProcImage, error) {
	dir := fmt.Sprintf("/proc/%d", pid)
	p := layout.ProcImage{PID: pid}
	if err := checkTraceable(pid); err != nil {
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
	// Exiting since checkTraceable: its mm is gone, and a layout made of
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

// checkTraceable refuses, in one sentence, a --pid that has no address
// space of its own: a kernel thread, or a zombie. /proc shows either as
// an empty maps file, which would read as a layout of nothing.
func checkTraceable(pid uint32) error {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if os.IsNotExist(err) || errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("--pid %d: no such process", pid)
	}
	if err != nil {
		return fmt.Errorf("--pid %d: read its stat: %w", pid, err)
	}
	return statTraceable(pid, stat)
}

// statTraceable is checkTraceable on the contents of /proc/PID/stat
// (proc(5): field 3 the state, 9 the flags, 20 the number of threads).
func statTraceable(pid uint32, b []byte) error {
	open, close := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || close < open {
		return fmt.Errorf("--pid %d: unexpected /proc stat format", pid)
	}
	comm := string(b[open+1 : close])
	fields := strings.Fields(string(b[close+1:])) // fields[0] is field 3
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

// parseStat reads comm, ppid, startstack and start_brk from
// /proc/PID/stat (proc(5): fields 2, 4, 28, 47). Field 48 is arg_start,
// not the break: stat does not show the current break.
func parseStat(b []byte, p *layout.ProcImage) error {
	open, close := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || close < open {
		return fmt.Errorf("unexpected /proc stat format")
	}
	p.Comm = string(b[open+1 : close])
	fields := strings.Fields(string(b[close+1:])) // fields[0] is field 3
	field := func(n int) uint64 {
		if n-3 >= len(fields) {
			return 0
		}
		v, _ := strconv.ParseUint(fields[n-3], 10, 64)
		return v
	}
	if len(fields) < 46 {
		return fmt.Errorf("/proc stat has %d fields, want 48 (Linux 3.3+)", len(fields)+2)
	}
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

// VM flags as the kernel's snapshot records carry them (include/linux/mm.h).
const (
	vmRead      = 0x1
	vmWrite     = 0x2
	vmExec      = 0x4
	vmMayShare  = 0x80
	vmGrowsDown = 0x100
)

// execVMAsFromProc stands in for the kernel's exec-time VMA snapshot on
// kernels without the VMA iterator: it reads the new image's maps from
// /proc as soon as the exec record arrives. By then the process may have
// mapped more (ld.so's libraries); those calls arrive as events after the
// exec and re-applying them to the snapshot is harmless. The report says
// that these facts came from /proc.
func execVMAsFromProc(execRaw []byte, pid uint32) [][]byte {
	f, err := os.Open(fmt.Sprintf("/proc/%d/maps", pid))
	var maps []layout.Mapping
	if err == nil {
		maps, err = layout.ParseProcMaps(f)
		f.Close()
	}
	var vmas []events.VMA
	if err == nil {
		for _, m := range maps {
			if m.Path == "[vsyscall]" {
				continue
			}
			vmas = append(vmas, events.VMA{Start: m.Start, End: m.End, Flags: protFlags(m.Prot, m.Path), PgOff: m.Offset / 4096, Path: m.Path})
		}
	}
	recs, encErr := events.EncodeProcVMAs(execRaw, vmas)
	if encErr != nil || len(vmas) == 0 {
		return [][]byte{execRaw} // gone already: the report will say the layout is uncertain
	}
	return recs
}

func protFlags(prot, path string) uint64 {
	var f uint64
	if len(prot) == 4 {
		if prot[0] == 'r' {
			f |= vmRead
		}
		if prot[1] == 'w' {
			f |= vmWrite
		}
		if prot[2] == 'x' {
			f |= vmExec
		}
		if prot[3] == 's' {
			f |= vmMayShare
		}
	}
	if path == "[stack]" {
		f |= vmGrowsDown
	}
	return f
}
