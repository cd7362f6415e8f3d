package size

import "testing"

func TestParse(t *testing.T) {
	for in, want := range map[string]uint64{
		"4096": 4096, "64K": 64 << 10, "64KiB": 64 << 10, "64MiB": 64 << 20, "1.5G": 3 << 29,
		"2 GB": 2 << 30, "1t": 1 << 40, "0": 0,
		"18446744073709551615": 1<<64 - 1, "16777215T": 16777215 << 40,
	} {
		got, err := Parse(in)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "K", "-1", "1..2M", "12 parsecs",
		"99999999999999999999", "18446744073709551616", "16777216T", "1e20", "17179869184G"} {
		if _, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) accepted", in)
		}
	}
}
