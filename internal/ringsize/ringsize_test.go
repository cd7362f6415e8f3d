package ringsize

import "testing"

func TestAdvice(t *testing.T) {
	for _, c := range []struct {
		name                     string
		ring                     int
		received, recBytes, lost uint64
		want                     string
	}{
		{"replay: no ring", 0, 1000, 48000, 10, "; a larger --ring-size helps"},
		{"nothing received", 16 << 20, 0, 0, 10, "; a larger --ring-size helps"},
		// 44.5 bytes a record: 48 aligned, 56 with the header; 16 MiB +
		// 100000*56 bytes is 22.4 MB, so 32 MiB.
		{"default ring", 16 << 20, 1000, 44500, 100000, ": 99% of 101000; --ring-size 32MiB would have held them"},
		// Exactly a power of two is enough as it is.
		{"exact fit", 16 << 20, 1, 40, (16 << 20) / 48, ": 100% of 349526; --ring-size 32MiB would have held them"},
		// 56-byte records, 64 in the ring: 262144 of them are 16 MiB.
		{"exactly a power of two", 16 << 20, 1, 56, 262144, ": 100% of 262145; --ring-size 32MiB would have held them"},
		{"one more byte", 16 << 20, 1, 40, (16<<20)/48 + 1, ": 100% of 349527; --ring-size 64MiB would have held them"},
		{"smallest ring", Min, 3, 3 * 24, 1, ": 25% of 4; --ring-size 32KiB would have held them"},
		{"gigabytes", 1 << 30, 10, 480, 1 << 20, ": 100% of 1048586; --ring-size 2GiB would have held them"},
		{"beyond the largest", 1 << 30, 10, 480, 1 << 25, ": 100% of 33554442; even --ring-size 2GiB, the largest, would not have held them: trace fewer processes"},
		{"a small share", 16 << 20, 1000, 48000, 25, ": 2.4% of 1025; --ring-size 32MiB would have held them"},
		{"a tiny share", 16 << 20, 100000000, 4800000000, 1, ": <0.01% of 100000001; --ring-size 32MiB would have held them"},
		{"overflow", 16 << 20, 1, 1 << 40, 1 << 40, ": 100% of 1099511627777; even --ring-size 2GiB, the largest, would not have held them: trace fewer processes"},
	} {
		if got := Advice(c.ring, c.received, c.recBytes, c.lost); got != c.want {
			t.Errorf("%s: Advice(%d, %d, %d, %d) = %q, want %q", c.name, c.ring, c.received, c.recBytes, c.lost, got, c.want)
		}
	}
}

func TestText(t *testing.T) {
	for n, want := range map[uint64]string{Min: "16KiB", 512 << 10: "512KiB", 1 << 20: "1MiB", 16 << 20: "16MiB", Max: "2GiB"} {
		if got := Text(n); got != want {
			t.Errorf("Text(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestCheck(t *testing.T) {
	for n, ok := range map[uint64]bool{
		Min: true, 16 << 20: true, Max: true,
		0: false, Min / 2: false, 3 << 20: false, Max + 1: false, 2 * Max: false, 1<<64 - 1: false,
	} {
		if err := Check(n); (err == nil) != ok {
			t.Errorf("Check(%d) = %v, want ok %v", n, err, ok)
		}
	}
}
