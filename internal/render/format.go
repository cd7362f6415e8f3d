package render

import (
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// appendSize appends n bytes in binary units: "512 B", "4.0 KiB", "132 KiB", "2.3 TiB".
func appendSize(b []byte, n uint64) []byte {
	if n < 1024 {
		b = strconv.AppendUint(b, n, 10)
		return append(b, " B"...)
	}
	const units = "KMGTPE"
	if n < 1<<53 {
		// Every event line has a size: in integers, it costs a fifth of
		// strconv's float formatting, and prints the same (the value is
		// n/2^k exactly, and ties round to even as strconv does).
		i := 0
		for i < len(units)-1 && n>>(10*(i+2)) != 0 {
			i++
		}
		k := uint(10 * (i + 1))
		prec1 := n < 100<<k
		x := n
		if prec1 {
			x *= 10
		}
		q, r, half := x>>k, x&(1<<k-1), uint64(1)<<(k-1)
		if r > half || r == half && q&1 == 1 {
			q++
		}
		if prec1 {
			b = strconv.AppendUint(b, q/10, 10)
			b = append(b, '.', byte('0'+q%10))
		} else {
			b = strconv.AppendUint(b, q, 10)
		}
		return append(b, ' ', units[i], 'i', 'B')
	}
	v := float64(n) / 1024
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	prec := 1
	if v >= 100 {
		prec = 0
	}
	b = strconv.AppendFloat(b, v, 'f', prec, 64)
	b = append(b, ' ', units[i], 'i', 'B')
	return b
}

// appendSeconds appends ns nanoseconds as seconds with 6 decimals, as
// strconv's 'f' of float64(ns)/1e9 would. Off a tie (ns%1000 == 500) and
// below 2^52 ns (52 days) the float's error cannot cross a rounding
// boundary, so integers give the same digits, much more cheaply: the
// float path stays for the rest.
func appendSeconds(b []byte, ns int64) []byte {
	if ns < 0 || ns >= 1<<52 || ns%1000 == 500 {
		return strconv.AppendFloat(b, float64(ns)/1e9, 'f', 6, 64)
	}
	us := (ns + 500) / 1000
	b = strconv.AppendInt(b, us/1e6, 10)
	frac := us % 1e6
	b = append(b, '.')
	for d := int64(1e5); d > 0; d /= 10 {
		b = append(b, byte('0'+frac/d%10))
	}
	return b
}

// Size formats n bytes in binary units, as the text output shows them.
func Size(n uint64) string { return string(appendSize(nil, n)) }

func appendHex(b []byte, v uint64) []byte {
	b = append(b, "0x"...)
	return strconv.AppendUint(b, v, 16)
}

func hex(v uint64) string { return string(appendHex(nil, v)) }

// appendProt appends PROT_* bits as "rwx" with dashes, e.g. "r-x".
func appendProt(b []byte, prot uint32) []byte {
	c := func(bit uint32, ch byte) byte {
		if prot&bit != 0 {
			return ch
		}
		return '-'
	}
	return append(b, c(unix.PROT_READ, 'r'), c(unix.PROT_WRITE, 'w'), c(unix.PROT_EXEC, 'x'))
}

type flagName struct {
	bit  uint32
	name string
}

// map32Bit is x86's MAP_32BIT. The events are x86's; the other flags have
// the same values in asm-generic, so a replay on arm64 names them alike.
const map32Bit = 0x40

// mmapFlags lists MAP_* flags after the sharing type (the low two bits).
var mmapFlags = []flagName{
	{unix.MAP_FIXED, "FIXED"},
	{unix.MAP_ANONYMOUS, "ANONYMOUS"},
	{map32Bit, "32BIT"},
	{unix.MAP_GROWSDOWN, "GROWSDOWN"},
	{unix.MAP_DENYWRITE, "DENYWRITE"},
	{unix.MAP_EXECUTABLE, "EXECUTABLE"},
	{unix.MAP_LOCKED, "LOCKED"},
	{unix.MAP_NORESERVE, "NORESERVE"},
	{unix.MAP_POPULATE, "POPULATE"},
	{unix.MAP_NONBLOCK, "NONBLOCK"},
	{unix.MAP_STACK, "STACK"},
	{unix.MAP_HUGETLB, "HUGETLB"},
	{unix.MAP_SYNC, "SYNC"},
	{unix.MAP_FIXED_NOREPLACE, "FIXED_NOREPLACE"},
}

var mremapFlags = []flagName{
	{unix.MREMAP_MAYMOVE, "MAYMOVE"},
	{unix.MREMAP_FIXED, "FIXED"},
	{unix.MREMAP_DONTUNMAP, "DONTUNMAP"},
}

// appendMmapFlags appends mmap flags as names joined by "|", each with
// prefix ("MAP_" for JSON, "" for text); unknown bits as hex.
func appendMmapFlags(b []byte, flags uint32, prefix string) []byte {
	start := len(b)
	sep := func() {
		if len(b) > start {
			b = append(b, '|')
		}
	}
	switch flags & 0x3 {
	case unix.MAP_SHARED:
		b = append(b, prefix...)
		b = append(b, "SHARED"...)
	case unix.MAP_PRIVATE:
		b = append(b, prefix...)
		b = append(b, "PRIVATE"...)
	case unix.MAP_SHARED_VALIDATE:
		b = append(b, prefix...)
		b = append(b, "SHARED_VALIDATE"...)
	}
	rest := flags &^ 0x3
	for _, f := range mmapFlags {
		if rest&f.bit != 0 {
			sep()
			b = append(b, prefix...)
			b = append(b, f.name...)
			rest &^= f.bit
		}
	}
	if rest != 0 {
		sep()
		b = appendHex(b, uint64(rest))
	}
	if len(b) == start {
		b = append(b, '0')
	}
	return b
}

func appendFlagNames(b []byte, flags uint32, names []flagName, prefix string) []byte {
	start := len(b)
	rest := flags
	for _, f := range names {
		if rest&f.bit != 0 {
			if len(b) > start {
				b = append(b, '|')
			}
			b = append(b, prefix...)
			b = append(b, f.name...)
			rest &^= f.bit
		}
	}
	if rest != 0 {
		if len(b) > start {
			b = append(b, '|')
		}
		b = appendHex(b, uint64(rest))
	}
	if len(b) == start {
		b = append(b, '0')
	}
	return b
}

// Personality bits from include/uapi/linux/personality.h (x/sys/unix does
// not export them). They are kernel ABI and never change.
var personalityFlags = []flagName{
	{0x0008, "PER_LINUX32"},
	{0x0040000, "ADDR_NO_RANDOMIZE"},
	{0x0200000, "ADDR_COMPAT_LAYOUT"},
	{0x0400000, "READ_IMPLIES_EXEC"},
	{0x0800000, "ADDR_LIMIT_32BIT"},
	{0x1000000, "SHORT_INODE"},
	{0x4000000, "WHOLE_SECONDS"},
	{0x8000000, "ADDR_LIMIT_3GB"},
}

// personalityQuery is the argument that asks for the persona without changing it.
const personalityQuery = 0xffffffff

// personalityNames spells a persona like "PER_LINUX32|ADDR_COMPAT_LAYOUT",
// or "PER_LINUX" for 0.
func personalityNames(p uint32) string {
	if p == 0 {
		return "PER_LINUX"
	}
	return string(appendFlagNames(nil, p, personalityFlags, ""))
}

// errnoName returns "ENOMEM" for a negative syscall result of -12.
func errnoName(ret int64) string {
	if ret >= 0 || ret < -4095 {
		return strconv.FormatInt(ret, 10)
	}
	if n := unix.ErrnoName(syscall.Errno(-ret)); n != "" {
		return n
	}
	return "errno " + strconv.FormatInt(-ret, 10)
}

// isErr reports whether a syscall result is a -errno value.
func isErr(ret int64) bool { return ret < 0 && ret >= -4095 }

// baseName is the last element of a path, or the path itself.
func baseName(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 && i < len(p)-1 {
		return p[i+1:]
	}
	return p
}
