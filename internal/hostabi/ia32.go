// Package hostabi answers whether the running kernel executes 32-bit
// (i386) programs. Some kernels boot with IA-32 emulation off
// (ia32_emulation=0, CONFIG_IA32_EMULATION=n, or a hypervisor that forces
// it): there an i386 execve fails with ENOEXEC, so no 32-bit process can
// exist and nothing needs the costlier tracepoints that see 32-bit calls.
package hostabi

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// tinyELF32 is a complete static i386 executable that calls exit(0): an
// ELF header, one PT_LOAD program header, and three instructions. Building
// it here, rather than shipping a fixture, lets any host be probed with no
// compiler and no 32-bit libraries.
func tinyELF32() []byte {
	const (
		base    = 0x08048000
		ehsize  = 52
		phsize  = 32
		codeOff = ehsize + phsize
	)
	code := []byte{
		0xb8, 0x01, 0x00, 0x00, 0x00, // mov eax, 1 (i386 exit)
		0x31, 0xdb, // xor ebx, ebx
		0xcd, 0x80, // int 0x80
	}
	var b bytes.Buffer
	w := func(v any) { _ = binary.Write(&b, binary.LittleEndian, v) }
	b.Write([]byte{0x7f, 'E', 'L', 'F', 1 /* 32-bit */, 1 /* LE */, 1 /* version */})
	b.Write(make([]byte, 9))
	w(uint16(2))              // e_type: ET_EXEC
	w(uint16(3))              // e_machine: EM_386
	w(uint32(1))              // e_version
	w(uint32(base + codeOff)) // e_entry
	w(uint32(ehsize))         // e_phoff
	w(uint32(0))              // e_shoff
	w(uint32(0))              // e_flags
	w(uint16(ehsize))         // e_ehsize
	w(uint16(phsize))         // e_phentsize
	w(uint16(1))              // e_phnum
	w(uint16(0))              // e_shentsize
	w(uint16(0))              // e_shnum
	w(uint16(0))              // e_shstrndx
	size := uint32(codeOff + len(code))
	w(uint32(1))    // p_type: PT_LOAD
	w(uint32(0))    // p_offset
	w(uint32(base)) // p_vaddr
	w(uint32(base)) // p_paddr
	w(size)         // p_filesz
	w(size)         // p_memsz
	w(uint32(5))    // p_flags: R+X
	w(uint32(0x1000))
	b.Write(code)
	return b.Bytes()
}

var (
	once   sync.Once
	can    bool
	reason error
)

// CanRunIA32 reports whether the kernel executes i386 programs, by running
// a tiny one (once per process). A "no" comes with the reason; an error
// that says neither (no memfd, fork failed) counts as "yes", so mmtrace
// keeps its 32-bit coverage when in doubt.
func CanRunIA32() (bool, error) {
	once.Do(func() { can, reason = probe() })
	return can, reason
}

// ErrNoIA32 is the reason when the kernel refuses i386 programs.
var ErrNoIA32 = errors.New("the kernel runs no 32-bit programs (IA-32 emulation is off: an i386 execve fails with ENOEXEC)")

func probe() (bool, error) {
	fd, err := unix.MemfdCreate("mmtrace-ia32-probe", unix.MFD_CLOEXEC)
	if err != nil {
		return true, fmt.Errorf("probe 32-bit support: memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "mmtrace-ia32-probe")
	defer f.Close()
	if _, err := f.Write(tinyELF32()); err != nil {
		return true, fmt.Errorf("probe 32-bit support: %w", err)
	}
	if err := f.Chmod(0o700); err != nil {
		return true, fmt.Errorf("probe 32-bit support: %w", err)
	}
	// The child gets the memfd as fd 3 (ExtraFiles) and execs it by path.
	cmd := exec.Command("/proc/self/fd/3")
	cmd.ExtraFiles = []*os.File{f}
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, syscall.ENOEXEC):
		return false, ErrNoIA32
	case errors.As(err, &ee):
		return true, fmt.Errorf("probe 32-bit support: the i386 probe program %v", err)
	default:
		return true, fmt.Errorf("probe 32-bit support: %w", err)
	}
}
