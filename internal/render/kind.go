package render

import (
	"strings"

	"github.com/mmtrace/mmtrace/internal/events"
	"github.com/mmtrace/mmtrace/internal/layout"
)

// kind is what a mapping is, for colour and labels.
type kind uint8

const (
	kindAnon    kind = iota // anonymous memory (malloc arenas, thread stacks, bss of libraries)
	kindText                // the executable's code
	kindData                // the executable's other mappings and its bss
	kindHeap                // [heap], the brk area
	kindFile                // any other file: shared libraries, data files
	kindStack               // [stack]
	kindSpecial             // [vdso], [vvar], [vsyscall] and other kernel-provided ranges
	kindKernel              // kernel space above the task size (pictures only)
)

var kindNames = [...]string{
	kindAnon: "anon", kindText: "text", kindData: "data", kindHeap: "heap",
	kindFile: "file", kindStack: "stack", kindSpecial: "special", kindKernel: "kernel",
}

func (k kind) String() string { return kindNames[k] }

// kindOf classifies m within an image whose executable is exe.
func kindOf(m *layout.Mapping, exe string) kind {
	switch {
	case m.Path == "[heap]" || m.Placement == layout.PlacementBrk:
		return kindHeap
	case m.Path == "[stack]":
		return kindStack
	case strings.HasPrefix(m.Path, "["):
		return kindSpecial
	case m.Path == "":
		return kindAnon
	case exe != "" && m.Path == exe:
		if strings.IndexByte(m.Prot, 'x') >= 0 {
			return kindText
		}
		return kindData
	}
	return kindFile
}

// taskSize is the top of user space for an image of the given ABI on
// x86_64 (4-level paging; a mapping above it widens it).
func taskSize(abi events.ABI, vmas []layout.Mapping) uint64 {
	top := layout.TaskSize(abi)
	for i := range vmas {
		if vmas[i].End > top {
			top = vmas[i].End
		}
	}
	return top
}

// hexDigits is the width that prints every user address of the ABI.
func hexDigits(abi events.ABI, top uint64) int {
	if abi == events.ABI32 && top <= 1<<32 {
		return 8
	}
	n := 12
	for top>>(4*n) != 0 {
		n++
	}
	return n
}
