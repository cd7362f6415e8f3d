// Package size reads the sizes mmtrace's flags take (--squeeze-threshold,
// --ring-size): 4096, 64K, 64KiB, 1.5G, 64MB, all powers of 1024.
package size

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
)

// Parse reads a size. Sizes that do not fit in 64 bits are refused, never
// wrapped.
func Parse(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, errors.New("empty size")
	}
	i := len(t)
	for i > 0 && (t[i-1] < '0' || t[i-1] > '9') && t[i-1] != '.' {
		i--
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	mult, ok := map[string]uint64{
		"": 1, "b": 1,
		"k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10,
		"m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20,
		"g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30,
		"t": 1 << 40, "tb": 1 << 40, "tib": 1 << 40,
	}[unit]
	if !ok {
		return 0, fmt.Errorf("unknown unit %q in %q (use K, M, G or T)", unit, s)
	}
	tooLarge := fmt.Errorf("%q is too large (more than 64 bits)", s)
	// Whole numbers exactly; fractions through float64.
	if n, err := strconv.ParseUint(num, 10, 64); err == nil {
		hi, lo := bits.Mul64(n, mult)
		if hi != 0 {
			return 0, tooLarge
		}
		return lo, nil
	} else if errors.Is(err, strconv.ErrRange) {
		return 0, tooLarge
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 || math.IsNaN(f) {
		return 0, fmt.Errorf("%q is not a size", s)
	}
	if f*float64(mult) >= 1<<64 {
		return 0, tooLarge
	}
	return uint64(f * float64(mult)), nil
}
