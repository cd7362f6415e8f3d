package record

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// FuzzReader feeds the reader arbitrary bytes: it must never panic, never
// loop, never return a record larger than MaxRecord, and from an in-memory
// source only ever end with io.EOF. Refusals are one sentence. Stepping
// over damage is linear: the bytes examined stay within a constant factor
// of the input (testdata/fuzz/FuzzReader holds crafted damage whose
// markers claim frames far longer than the step to the next marker).
func FuzzReader(f *testing.F) {
	recs := sampleRecords(20)
	full := write(f, recs, true)
	f.Add(full)
	f.Add(full[:len(full)*2/3])
	f.Add(write(f, recs[:3], false))
	f.Add(write(f, nil, true))
	damaged := bytes.Clone(full)
	damaged[len(damaged)/2] ^= 0x10
	f.Add(damaged)
	f.Add([]byte{})
	f.Add(magic[:])
	f.Add([]byte("\x7fELF\x02\x01\x01"))

	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader(bytes.NewReader(data))
		if err != nil {
			if msg := err.Error(); msg == "" || strings.Contains(msg, "\n") {
				t.Fatalf("refusal is not one sentence: %q", msg)
			}
			return
		}
		for n := 0; ; n++ {
			if n > len(data)/frameOverhead {
				t.Fatalf("%d records from %d bytes", n, len(data))
			}
			rec, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			if len(rec) > MaxRecord {
				t.Fatalf("record of %d bytes", len(rec))
			}
		}
		if _, err := r.Next(); err != io.EOF {
			t.Fatalf("Next after the end = %v", err)
		}
		if r.examined > 40*int64(len(data))+4096 {
			t.Fatalf("damage handling examined %d bytes of %d", r.examined, len(data))
		}
		for _, w := range r.Warnings() {
			if w.Msg == "" || w.Offset < 0 || w.Offset > int64(len(data)) {
				t.Fatalf("warning %+v", w)
			}
		}
	})
}
