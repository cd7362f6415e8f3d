package hostabi

import (
	"bytes"
	"debug/elf"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// The probe program must be a well-formed i386 executable by the standard
// library's reading, or a "no" could mean a broken probe, not a kernel.
func TestTinyELF32IsI386Executable(t *testing.T) {
	f, err := elf.NewFile(bytes.NewReader(tinyELF32()))
	if err != nil {
		t.Fatal(err)
	}
	if f.Class != elf.ELFCLASS32 || f.Machine != elf.EM_386 || f.Type != elf.ET_EXEC {
		t.Fatalf("class %v machine %v type %v", f.Class, f.Machine, f.Type)
	}
	if len(f.Progs) != 1 || f.Progs[0].Type != elf.PT_LOAD || f.Entry < f.Progs[0].Vaddr ||
		f.Entry >= f.Progs[0].Vaddr+f.Progs[0].Filesz {
		t.Fatalf("entry %#x outside the one PT_LOAD %+v", f.Entry, f.Progs)
	}
}

// The answer agrees with what the kernel told at boot, where it told: the
// dmesg line of a kernel with IA-32 emulation off, or /proc/config.gz.
func TestCanRunIA32AgreesWithKernel(t *testing.T) {
	ok, err := CanRunIA32()
	if !ok && err != ErrNoIA32 {
		t.Fatalf("no without the ENOEXEC reason: %v", err)
	}
	if ok && err != nil {
		t.Logf("probe inconclusive, counted as yes: %v", err)
	}
	if b, rerr := os.ReadFile("/proc/cmdline"); rerr == nil && strings.Contains(string(b), "ia32_emulation=0") && ok {
		t.Errorf("the kernel was booted with ia32_emulation=0 but the probe ran a 32-bit program")
	}
	// x86's boot code logs "IA-32 emulation off" (or a hypervisor's
	// variant of it) when it turns the emulation off.
	buf := make([]byte, 1<<20)
	if n, kerr := unix.Klogctl(unix.SYSLOG_ACTION_READ_ALL, buf); kerr == nil {
		log := strings.ToLower(string(buf[:n]))
		if strings.Contains(log, "ia-32 emulation off") && ok {
			t.Errorf("the kernel log says IA-32 emulation is off but the probe ran a 32-bit program")
		}
	}
	t.Logf("this kernel runs 32-bit programs: %v (%v)", ok, err)
}
