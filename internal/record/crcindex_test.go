package record

import (
	"hash/crc32"
	"math/rand/v2"
	"testing"
)

// The index's range checksums are the checksums of the ranges.
func TestResyncRangeChecksum(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	w := make([]byte, 5000)
	for i := range w {
		w[i] = byte(rng.Uint32())
	}
	var examined int64
	x := crcIndex{examined: &examined}
	x.reset(0)
	for range 2000 {
		a := rng.IntN(len(w) + 1)
		b := a + rng.IntN(len(w)-a+1)
		if got, want := x.sum(w, a, b), crc32.Checksum(w[a:b], castagnoli); got != want {
			t.Fatalf("crc of [%d,%d) = %#x, want %#x", a, b, got, want)
		}
	}
	if xPow8n(0) != 1<<31 {
		t.Errorf("x^0 = %#x", xPow8n(0))
	}
}
