// Package ringsize sizes the BPF ring buffer for the user: which
// --ring-size would have held the records a live run lost. It is pure
// arithmetic, apart from the loader, so that a unit test pins it.
package ringsize

import (
	"errors"
	"fmt"
	"strconv"
)

// Min and Max bound --ring-size: a BPF ring buffer is a power of two
// pages, and the kernel refuses more than 2 GiB (its max_entries is 32
// bits). Below 16 KiB an exec record and the execve before it (2 KiB of
// command line each) would not fit beside the records around them.
const (
	Min = 16 << 10
	Max = 1 << 31
)

// Huge is the size beyond which mmtrace warns: the ring is locked kernel
// memory for the whole run.
const Huge = 1 << 30

// Check says why n cannot be a ring buffer's size, in words that follow
// the size as the user wrote it; nil when it can.
func Check(n uint64) error {
	switch {
	case n > Max:
		return errors.New("is too large: a BPF ring buffer holds at most 2 GiB")
	case n < Min || n&(n-1) != 0:
		return errors.New("must be a power of two from 16KiB to 2GiB")
	}
	return nil
}

// Advice says how much of the stream lost records were and which
// --ring-size would have held them as well: the ring plus their bytes (at
// the average record size received, 8-byte aligned, plus the ring's 8-byte
// header), rounded up to a power of two. ring is the ring's size, received
// and recBytes the records delivered and their bytes. It is said after
// "ring buffer full", so it starts with its separator. Without a ring size
// or a record to average (a replay), it can only say that more helps.
func Advice(ring int, received, recBytes, lost uint64) string {
	if ring <= 0 || received == 0 {
		return "; a larger --ring-size helps"
	}
	pct := percent(100 * float64(lost) / float64(lost+received))
	per := (recBytes/received+7)&^7 + 8
	need := uint64(ring) + lost*per
	if lost > (Max-uint64(ring))/per || need > Max {
		return fmt.Sprintf(": %s%% of %d; even --ring-size %s, the largest, would not have held them: trace fewer processes",
			pct, lost+received, Text(Max))
	}
	size := uint64(Min)
	for size < need {
		size <<= 1
	}
	return fmt.Sprintf(": %s%% of %d; --ring-size %s would have held them", pct, lost+received, Text(size))
}

// Text writes a power of two the way --ring-size reads it.
func Text(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%dGiB", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%dMiB", n>>20)
	}
	return fmt.Sprintf("%dKiB", n>>10)
}

// percent writes a share for people: "99", "2.5", "0.012"; %.2g wrote
// "1e+02" for the usual case, a ring losing nearly everything.
func percent(p float64) string {
	switch {
	case p >= 10:
		return strconv.FormatFloat(p, 'f', 0, 64)
	case p >= 0.01:
		return strconv.FormatFloat(p, 'g', 2, 64)
	}
	return "<0.01"
}
