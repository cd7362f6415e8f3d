package record

import (
	"bytes"
	"fmt"
	"io"
	"testing"
)

// Damage crafted to make stepping over it expensive: frame markers that
// each claim a frame as long as a record may be.
var resyncCases = []struct {
	name string
	// unit is repeated after a valid header until the file has size
	// bytes; records is how many intact records one unit holds.
	unit    func() []byte
	records int
}{
	// A marker and a 1 MiB length, repeated (issue 13.4: 2 MiB cost
	// 13.5 s of CPU, 4 MiB over 25 s).
	{"markers", func() []byte { return frameHead(MaxRecord) }, 0},
	// Markers four bytes apart claiming two different lengths.
	{"dense", func() []byte { return []byte{sync0, sync1, kindRecord, 0, sync0, sync1, 0, 0} }, 0},
	// Three markers in eight bytes, all claiming possible lengths.
	{"densest", func() []byte { return []byte{sync0, sync1, sync0, sync1, sync0, sync1, 0, 0} }, 0},
	// A damaged frame claiming 1 MiB before each intact small one: each
	// checksum mismatch is followed by a short step to the next record.
	{"alternating", func() []byte {
		return append(frameHead(MaxRecord), frame([]byte{1, 2, 3, 4, 5})...)
	}, 1},
}

// frameHead is the head of a record frame claiming an n-byte payload.
func frameHead(n uint32) []byte {
	return le.AppendUint32([]byte{sync0, sync1, kindRecord, 0}, n)
}

// frame is an intact record frame.
func frame(payload []byte) []byte {
	f := append(frameHead(uint32(len(payload))), payload...)
	return le.AppendUint32(f, crcOf(f[2:]))
}

// craftedDamage is a valid header, then c's unit repeated up to size.
func craftedDamage(tb testing.TB, unit []byte, size int) []byte {
	tb.Helper()
	data := write(tb, nil, false)
	for len(data)+len(unit) <= size {
		data = append(data, unit...)
	}
	return data
}

// Stepping over damage is linear in the file size: the bytes the reader
// examines (markers searched, frame heads, bytes checksummed) stay within
// a small constant factor of the file's size, however the damage is
// crafted. Counted, not timed.
func TestResyncIsLinear(t *testing.T) {
	const factor = 10
	for _, c := range resyncCases {
		for _, mib := range []int{1, 2, 4} {
			t.Run(fmt.Sprintf("%s/%dMiB", c.name, mib), func(t *testing.T) {
				unit := c.unit()
				data := craftedDamage(t, unit, mib<<20)
				recs, r := readAll(t, data)
				if want := c.records * ((len(data) - len(write(t, nil, false))) / len(unit)); len(recs) != want {
					t.Errorf("%d records, want %d", len(recs), want)
				}
				if r.examined > factor*int64(len(data)) {
					t.Errorf("examined %d bytes of a %d-byte file (%.1fx), want at most %dx",
						r.examined, len(data), float64(r.examined)/float64(len(data)), factor)
				}
				t.Logf("examined %.2fx the file size; %d warnings", float64(r.examined)/float64(len(data)), len(r.Warnings()))
			})
		}
	}
}

// BenchmarkResync reads crafted damage of 1, 2 and 4 MiB: the time per
// MiB (ns/op divided by the size) stays flat when the cost is linear.
func BenchmarkResync(b *testing.B) {
	for _, c := range resyncCases {
		for _, mib := range []int{1, 2, 4} {
			data := craftedDamage(b, c.unit(), mib<<20)
			b.Run(fmt.Sprintf("%s/%dMiB", c.name, mib), func(b *testing.B) {
				b.SetBytes(int64(len(data)))
				for b.Loop() {
					r, err := NewReader(bytes.NewReader(data))
					if err != nil {
						b.Fatal(err)
					}
					for {
						if _, err := r.Next(); err == io.EOF {
							break
						} else if err != nil {
							b.Fatal(err)
						}
					}
				}
			})
		}
	}
}
