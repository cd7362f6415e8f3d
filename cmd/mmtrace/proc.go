package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/mmtrace/mmtrace/internal/events"
	"github.com/mmtrace/mmtrace/internal/layout"
)

// seedFromProc starts the model of a running process (--pid) from what
// /proc says about it now.
func (s *session) seedFromProc(pid uint32) error {
	p, err := readProcImage(pid)
	if err != nil {
		return err
	}
	s.tracker.SeedFromProc(p)
	if snap := s.tracker.Snapshot(pid); snap != nil {
		s.out.Snapshot(snap)
	}
	return nil
}

func readProcImage(pid uint32) (layout.ProcImage, error) {
	dir := fmt.Sprintf("/proc/%d", pid)
	p := layout.ProcImage{PID: pid}
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
	p.Exe, _ = os.Readlink(dir + "/exe")
	if b, err := os.ReadFile(dir + "/personality"); err == nil {
		v, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 16, 32)
		p.Personality = uint32(v)
	}
	p.ABI = elfABI(dir + "/exe")
	return p, nil
}

// parseStat reads comm, ppid, startstack, start_brk and brk from
// /proc/PID/stat (proc(5): fields 2, 4, 28, 47, 48).
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
	p.Brk = field(48)
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
