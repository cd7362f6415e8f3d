package loader

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"

	"github.com/cilium/ebpf/btf"
)

// maxBTFSize bounds an external BTF file (--btf). A distribution kernel's
// vmlinux BTF is 5-10 MiB and a vmlinux ELF with BTF a few hundred; a
// device, a pipe or anything larger is a mistake, and reading it whole
// would use unbounded memory.
const maxBTFSize = 256 << 20

// CheckBTFFile says, in one sentence, why path cannot be an external BTF
// file: missing, not a regular file, or too large.
func CheckBTFFile(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("BTF file %s: %w", path, unwrapPath(err))
	}
	return checkBTFInfo(path, fi)
}

func checkBTFInfo(path string, fi fs.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("BTF file %s is not a regular file (%s): give the kernel's BTF, "+
			"a raw BTF blob or a vmlinux ELF", path, fileKind(fi.Mode()))
	}
	if fi.Size() > maxBTFSize {
		return fmt.Errorf("BTF file %s is %d MiB, more than the %d MiB a kernel's BTF can sensibly be",
			path, fi.Size()>>20, maxBTFSize>>20)
	}
	return nil
}

// loadBTF reads an external BTF file, raw or in an ELF, after checking it
// on the open file itself (a FIFO is opened without blocking, then refused).
func loadBTF(path string) (*btf.Spec, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("BTF file %s: %w", path, unwrapPath(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("BTF file %s: %w", path, unwrapPath(err))
	}
	if err := checkBTFInfo(path, fi); err != nil {
		return nil, err
	}
	spec, err := btf.LoadSpecFromReader(io.NewSectionReader(f, 0, fi.Size()))
	if err != nil {
		return nil, fmt.Errorf("read BTF from %s: %w", path, err)
	}
	return spec, nil
}

func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	}
	return "not a plain file"
}

// unwrapPath drops the *PathError's repetition of the operation and path.
func unwrapPath(err error) error {
	if pe, ok := err.(*fs.PathError); ok {
		return pe.Err
	}
	return err
}
