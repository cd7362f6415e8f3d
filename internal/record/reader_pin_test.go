package record

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// Tests that pin the reader's and writer's behaviour against the file
// format in doc.go, with offsets and counts computed by hand from it.

// pinFrame builds one frame as doc.go defines it: marker, kind, flags,
// length, payload, CRC32C of bytes 2 .. 8+p.
func pinFrame(kind, flags byte, payload []byte) []byte {
	f := []byte{0xE5, 0x7A, kind, flags}
	f = le.AppendUint32(f, uint32(len(payload)))
	f = append(f, payload...)
	return le.AppendUint32(f, crcOf(f[2:]))
}

// pinFile is a header (written by NewWriter) followed by frames.
func pinFile(t *testing.T, frames ...[]byte) ([]byte, int64) {
	t.Helper()
	var buf bytes.Buffer
	if _, err := NewWriter(&buf, testHeader()); err != nil {
		t.Fatal(err)
	}
	hdr := int64(buf.Len())
	for _, f := range frames {
		buf.Write(f)
	}
	return buf.Bytes(), hdr
}

func pinEnd(n uint64) []byte { return pinFrame(kindEnd, 0, le.AppendUint64(nil, n)) }

// Damaged bytes that hold a false frame marker (E5 7A followed by a length
// and a wrong checksum): the scan must step over it and go on to the next
// intact frame, not stop at the first marker.
func TestPinResyncSkipsFalseMarkers(t *testing.T) {
	a, b := []byte("first record"), []byte("second record")
	fa, fb := pinFrame(kindRecord, 0, a), pinFrame(kindRecord, 0, b)
	for name, junk := range map[string][]byte{
		// A marker with a small length and a wrong checksum.
		"bad checksum": append([]byte{0x00, 0x11, 0xE5, 0x7A, 1, 0, 4, 0, 0, 0, 'x', 'y', 'z', 'w', 1, 2, 3, 4}, 0x22),
		// A marker with an impossible length (2^24 > MaxRecord).
		"impossible length": {0x33, 0xE5, 0x7A, 1, 0, 0, 0, 0, 1, 0x44, 0x55, 0x66, 0x77},
		// Two markers in a row.
		"markers in a row": {0x33, 0xE5, 0x7A, 0xE5, 0x7A, 1, 0, 1, 0, 0, 0, 9, 9, 9, 9, 9},
	} {
		t.Run(name, func(t *testing.T) {
			data, hdr := pinFile(t, fa, junk, fb, pinEnd(2))
			got, r := readAll(t, data)
			if !reflect.DeepEqual(got, [][]byte{a, b}) {
				t.Fatalf("records %q, want %q and %q", got, a, b)
			}
			bad := hdr + int64(len(fa))
			next := bad + int64(len(junk))
			want := []string{fmt.Sprintf("record at offset %d: bad frame marker, skipped %d bytes up to the next intact record at offset %d", bad, len(junk), next)}
			if w := warningTexts(r); !reflect.DeepEqual(w, want) {
				t.Errorf("warnings %q\nwant %q", w, want)
			}
			if r.Skipped() != 0 {
				// The end frame counts 2 records and 2 were read: nothing lost.
				t.Errorf("skipped %d, want 0 once the end frame says none was lost", r.Skipped())
			}
			if ws := r.Warnings(); len(ws) != 1 || ws[0].Offset != bad || ws[0].String() != want[0] {
				t.Errorf("warning offset %+v, want %d", ws, bad)
			}
		})
	}
}

// A damaged frame whose length is right: the next frame starts where it
// said it ends, and the warning says only "skipped".
func TestPinDamagedFrameOfTheRightLength(t *testing.T) {
	a, b := []byte("aaaa"), []byte("bbbbbbbb")
	fa, fb := pinFrame(kindRecord, 0, a), pinFrame(kindRecord, 0, b)
	fa[len(fa)-1] ^= 0xff
	data, hdr := pinFile(t, fa, fb, pinEnd(2))
	got, r := readAll(t, data)
	if !reflect.DeepEqual(got, [][]byte{b}) {
		t.Fatalf("records %q", got)
	}
	want := []string{
		fmt.Sprintf("record at offset %d: checksum mismatch, skipped", hdr),
		fmt.Sprintf("the recording holds 2 records, 1 of them lost to damage"),
	}
	// The end frame's count agrees with the one damaged stretch: no second
	// warning.
	if w := warningTexts(r); !reflect.DeepEqual(w, want[:1]) {
		t.Errorf("warnings %q, want %q", w, want[:1])
	}
	if r.Skipped() != 1 {
		t.Errorf("skipped %d, want 1", r.Skipped())
	}
}

// Damage with nothing intact after it: one warning with the byte count to
// the end of the file, one record skipped.
func TestPinDamageToTheEnd(t *testing.T) {
	a := []byte("only record")
	fa := pinFrame(kindRecord, 0, a)
	junk := []byte{0x01, 0x02, 0xE5, 0x7A, 0x01, 0x00, 0x03, 0x00, 0x00, 0x00, 'a', 'b', 'c', 0, 0, 0, 0, 0x09}
	data, hdr := pinFile(t, fa, junk)
	got, r := readAll(t, data)
	if !reflect.DeepEqual(got, [][]byte{a}) {
		t.Fatalf("records %q", got)
	}
	bad := hdr + int64(len(fa))
	want := []string{fmt.Sprintf("record at offset %d: bad frame marker, skipped; nothing intact after it (%d bytes to the end of the file)", bad, len(junk))}
	if w := warningTexts(r); !reflect.DeepEqual(w, want) {
		t.Errorf("warnings %q\nwant %q", w, want)
	}
	if r.Skipped() != 1 {
		t.Errorf("skipped %d, want 1", r.Skipped())
	}
}

// Damage longer than the reader's 64 KiB buffer, read a byte at a time and
// all at once: the scan reads on until it finds the next frame.
func TestPinLongDamage(t *testing.T) {
	a, b := []byte("before"), []byte("after")
	fa, fb := pinFrame(kindRecord, 0, a), pinFrame(kindRecord, 0, b)
	junk := bytes.Repeat([]byte{0xE5, 0x00, 0x7A}, 100<<10/3) // halves of markers, never a whole one
	data, hdr := pinFile(t, fa, junk, fb, pinEnd(2))
	bad := hdr + int64(len(fa))
	want := []string{fmt.Sprintf("record at offset %d: bad frame marker, skipped %d bytes up to the next intact record at offset %d", bad, len(junk), bad+int64(len(junk)))}
	for name, src := range map[string]io.Reader{
		"whole":    bytes.NewReader(data),
		"one byte": iotest.OneByteReader(bytes.NewReader(data)),
		"half":     iotest.HalfReader(bytes.NewReader(data)),
	} {
		recs, warn, _ := readFrom(t, src)
		var texts []string
		for _, w := range warn {
			texts = append(texts, w.Msg)
		}
		if !reflect.DeepEqual(recs, [][]byte{a, b}) || !reflect.DeepEqual(texts, want) {
			t.Errorf("%s: records %q warnings %q\nwant %q", name, recs, texts, want)
		}
	}
}

// A frame of exactly MaxRecord bytes is intact (the limit is inclusive),
// also when the scan after damage lands on it.
func TestPinMaxRecordFrameAfterDamage(t *testing.T) {
	big := bytes.Repeat([]byte{0x5a}, MaxRecord)
	fa := pinFrame(kindRecord, 0, []byte("damaged"))
	fa[9] ^= 1
	data, hdr := pinFile(t, fa, pinFrame(kindRecord, 0, big), pinEnd(2))
	got, r := readAll(t, data)
	if len(got) != 1 || !bytes.Equal(got[0], big) {
		t.Fatalf("%d records, want the MaxRecord one", len(got))
	}
	want := fmt.Sprintf("record at offset %d: checksum mismatch, skipped", hdr)
	if w := warningTexts(r); len(w) != 1 || w[0] != want {
		t.Errorf("warnings %q, want %q", w, want)
	}
	// One byte more is damage.
	huge := pinFrame(kindRecord, 0, append(big, 0))
	data, hdr = pinFile(t, huge, pinFrame(kindRecord, 0, []byte("x")), pinEnd(2))
	got, r = readAll(t, data)
	if len(got) != 1 || string(got[0]) != "x" {
		t.Fatalf("after a MaxRecord+1 frame: %d records", len(got))
	}
	if w := warningTexts(r); len(w) == 0 || !strings.HasPrefix(w[0], fmt.Sprintf("record at offset %d: impossible length %d", hdr, MaxRecord+1)) {
		t.Errorf("warnings %q", w)
	}
}

// A source that returns its last bytes together with io.EOF: the last
// frame is whole and must not be taken for a cut-short one.
func TestPinDataWithEOF(t *testing.T) {
	recs := sampleRecords(5)
	data := write(t, recs, true)
	for name, src := range map[string]io.Reader{
		"one byte, EOF with the last": iotest.DataErrReader(iotest.OneByteReader(bytes.NewReader(data))),
		"half, EOF with the last":     iotest.DataErrReader(iotest.HalfReader(bytes.NewReader(data))),
	} {
		got, warn, skipped := readFrom(t, src)
		if !reflect.DeepEqual(got, recs) || len(warn) != 0 || skipped != 0 {
			t.Errorf("%s: %d records, warnings %v, skipped %d", name, len(got), warn, skipped)
		}
	}
}

// The end frame counts the records written: fewer read means damage that
// the warnings undercounted; more read is said too; data after it is
// ignored with a warning.
func TestPinEndFrameCounts(t *testing.T) {
	fa := pinFrame(kindRecord, 0, []byte("r1"))
	for _, c := range []struct {
		name    string
		frames  [][]byte
		want    func(hdr int64) []string
		skipped int
	}{
		{"agrees", [][]byte{fa, pinEnd(1)}, func(int64) []string { return nil }, 0},
		{"three lost, none seen", [][]byte{fa, pinEnd(4)}, func(hdr int64) []string {
			return []string{fmt.Sprintf("the recording holds 4 records, 3 of them lost to damage")}
		}, 3},
		{"more read than written", [][]byte{fa, fa, pinEnd(1)}, func(int64) []string {
			return []string{"the end of the recording counts 1 records but 2 were read"}
		}, 0},
		{"short end payload: no count", [][]byte{fa, pinFrame(kindEnd, 0, []byte{1, 2, 3, 4, 5, 6, 7})}, func(int64) []string { return nil }, 0},
		{"data after the end", [][]byte{fa, pinEnd(1), {0}}, func(hdr int64) []string {
			at := hdr + int64(len(fa)) + int64(frameOverhead+8)
			return []string{fmt.Sprintf("data after the end of the recording at offset %d, ignored", at)}
		}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			data, hdr := pinFile(t, c.frames...)
			_, r := readAll(t, data)
			if w := warningTexts(r); !reflect.DeepEqual(w, c.want(hdr)) {
				t.Errorf("warnings %q, want %q", w, c.want(hdr))
			}
			if r.Skipped() != c.skipped {
				t.Errorf("skipped %d, want %d", r.Skipped(), c.skipped)
			}
		})
	}
}

// Frames of unknown kinds or flags are skipped and counted; one warning
// for each kind/flags pair.
func TestPinUnknownFrames(t *testing.T) {
	rec := []byte("r")
	data, hdr := pinFile(t,
		pinFrame(9, 0, []byte("new kind")),
		pinFrame(kindRecord, 0, rec),
		pinFrame(9, 0, []byte("again")),
		pinFrame(kindRecord, 4, []byte("new flag")),
		pinFrame(9, 4, nil),
		pinEnd(1),
	)
	got, r := readAll(t, data)
	if !reflect.DeepEqual(got, [][]byte{rec}) || r.Unknown() != 4 {
		t.Fatalf("records %q unknown %d, want 1 record, 4 unknown", got, r.Unknown())
	}
	o1 := hdr
	o2 := o1 + int64(frameOverhead+8) + int64(frameOverhead+1) + int64(frameOverhead+5)
	o3 := o2 + int64(frameOverhead+8)
	want := []string{
		fmt.Sprintf("record at offset %d: unknown kind 9 (from a newer mmtrace?), skipped; more like it are only counted", o1),
		fmt.Sprintf("record at offset %d: kind 1 with unknown flags 0x4 (from a newer mmtrace?), skipped; more like it are only counted", o2),
		fmt.Sprintf("record at offset %d: kind 9 with unknown flags 0x4 (from a newer mmtrace?), skipped; more like it are only counted", o3),
	}
	if w := warningTexts(r); !reflect.DeepEqual(w, want) {
		t.Errorf("warnings %q\nwant %q", w, want)
	}
}

// Exactly maxWarnings are kept; the rest are counted in one last line.
func TestPinWarningCap(t *testing.T) {
	var frames [][]byte
	for i := range maxWarnings + 5 {
		frames = append(frames, pinFrame(byte(10+i), 0, nil)) // each a new unknown kind
	}
	data, _ := pinFile(t, append(frames, pinEnd(0))...)
	_, r := readAll(t, data)
	w := r.Warnings()
	if len(w) != maxWarnings+1 || w[maxWarnings].Msg != "and 5 more warnings" {
		t.Errorf("%d warnings, last %q; want %d and \"and 5 more warnings\"", len(w), w[len(w)-1].Msg, maxWarnings+1)
	}
	// Exactly maxWarnings: no extra line.
	data, _ = pinFile(t, append(frames[:maxWarnings], pinEnd(0))...)
	_, r = readAll(t, data)
	if w := r.Warnings(); len(w) != maxWarnings {
		t.Errorf("%d warnings for %d, want %d", len(w), maxWarnings, maxWarnings)
	}
}

// Header.Wall: wall = WallBase + (t - MonoBase), for times before the
// reference too.
func TestPinWallClock(t *testing.T) {
	h := Header{MonoBase: 5_000_000_000, WallBase: 1_700_000_000_000_000_000}
	for mono, want := range map[uint64]int64{
		5_000_000_000: 1_700_000_000_000_000_000,
		5_000_000_123: 1_700_000_000_000_000_123,
		7_500_000_000: 1_700_000_002_500_000_000,
		4_000_000_000: 1_699_999_999_000_000_000,
	} {
		if got := h.Wall(mono); !got.Equal(time.Unix(0, want)) {
			t.Errorf("Wall(%d) = %d, want %d", mono, got.UnixNano(), want)
		}
	}
}

// The header's JSON may be up to 1 MiB (inclusive); one byte more is
// refused when writing.
func TestPinHeaderSizeLimit(t *testing.T) {
	h := testHeader()
	h.Args = []string{""}
	js, err := encodeHeader(h)
	if err != nil {
		t.Fatal(err)
	}
	h.Args[0] = strings.Repeat("a", maxHeader-len(js))
	if js, err := encodeHeader(h); err != nil || len(js) != maxHeader {
		t.Fatalf("header of %d bytes: %v", len(js), err)
	}
	var buf bytes.Buffer
	w, err := NewWriter(&buf, h)
	if err != nil {
		t.Fatalf("a header of exactly 1 MiB refused: %v", err)
	}
	w.Close()
	r, err := NewReader(&buf)
	if err != nil || len(r.Header().Args[0]) != len(h.Args[0]) {
		t.Fatalf("reading it back: %v", err)
	}
	h.Args[0] += "a"
	if _, err := NewWriter(io.Discard, h); err == nil {
		t.Error("a header of 1 MiB + 1 byte accepted")
	}
}

// Close of a Reader made by NewReader does nothing; Open refuses a
// directory with a sentence that says so.
func TestPinReaderCloseAndDirectory(t *testing.T) {
	data := write(t, sampleRecords(1), true)
	r, err := NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("Close of a NewReader reader: %v", err)
	}
	dir := t.TempDir()
	if _, err := Open(dir); err == nil || err.Error() != dir+" is a directory, not an mmtrace recording" {
		t.Errorf("Open(dir) = %v", err)
	}
	p := filepath.Join(dir, "rec")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err = Open(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// The version in a new header has no stray spaces (module version, then
// the revision when the build has one).
func TestPinBuildVersionShape(t *testing.T) {
	v := NewHeader().MmtraceVersion
	if strings.TrimSpace(v) != v || strings.Contains(v, "  ") {
		t.Errorf("version %q", v)
	}
}

// shortWriter accepts only part of each write, without an error.
type shortWriter struct{ n int }

func (w *shortWriter) Write(b []byte) (int, error) {
	w.n++
	if w.n == 1 {
		return len(b), nil // the header
	}
	return len(b) / 2, nil
}

// A writer whose destination fails must say so: on the Write that fills
// the buffer, on Flush, on Close, and on every call after.
func TestPinWriterReportsFailedFlush(t *testing.T) {
	rec := make([]byte, 1000)
	fill := func(w *Writer) error {
		// bufSize / (frameOverhead + 1000) frames fit; the next Write flushes.
		for range bufSize/(frameOverhead+len(rec)) + 1 {
			if err := w.Write(rec); err != nil {
				return err
			}
		}
		return nil
	}
	w, err := NewWriter(&failingWriter{ok: 1}, testHeader())
	if err != nil {
		t.Fatal(err)
	}
	err = fill(w)
	if err == nil || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("Write that flushes a full buffer to a failing destination = %v", err)
	}
	if err2 := w.Flush(); err2 != err {
		t.Errorf("Flush after = %v, want %v", err2, err)
	}

	w, err = NewWriter(&shortWriter{}, testHeader())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); !errors.Is(err, io.ErrShortWrite) {
		t.Errorf("Flush with a short write = %v, want io.ErrShortWrite", err)
	}

	// A frame bigger than the buffer goes straight to the destination:
	// its failure is reported too.
	w, err = NewWriter(&failingWriter{ok: 1}, testHeader())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(make([]byte, bufSize)); err == nil {
		t.Error("a direct write to a failing destination succeeded")
	}
	// Close's own flush of the end frame.
	w, err = NewWriter(&failingWriter{ok: 1}, testHeader())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err == nil {
		t.Error("Close to a failing destination succeeded")
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

// Frames written straight to the destination (bigger than the buffer)
// read back, and frames of exactly the buffer's size too; the end frame
// counts them.
func TestPinBigFramesRoundTrip(t *testing.T) {
	recs := [][]byte{
		[]byte("small"),
		bytes.Repeat([]byte{1}, bufSize-frameOverhead),   // exactly fills an empty buffer
		bytes.Repeat([]byte{2}, bufSize-frameOverhead+1), // one byte too many: direct
		[]byte("small again"),
		bytes.Repeat([]byte{3}, MaxRecord),
	}
	var buf bytes.Buffer
	w, err := NewWriter(&buf, testHeader())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Write(make([]byte, MaxRecord+1)); err == nil {
		t.Error("a record of MaxRecord+1 bytes accepted")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, r := readAll(t, buf.Bytes())
	if !reflect.DeepEqual(got, recs) || len(r.Warnings()) != 0 {
		t.Errorf("%d records back, warnings %v", len(got), warningTexts(r))
	}
}

// The header's checksum covers version, length and JSON: a damaged
// checksum with JSON that still parses is a warning at offset 0 (where
// the header starts), not a refusal.
func TestPinHeaderChecksumWarningOffset(t *testing.T) {
	data := write(t, sampleRecords(1), true)
	js, _ := encodeHeader(testHeader())
	data[preambleLen+len(js)] ^= 0xff // first byte of the header CRC
	_, r := readAll(t, data)
	w := r.Warnings()
	if len(w) != 1 || w[0].Offset != 0 || !strings.HasPrefix(w[0].Msg, "recording header: checksum mismatch") {
		t.Errorf("warnings %+v", w)
	}
}

// hiccupReader returns nothing, without an error, three times before each
// real read: io.Reader allows it, and the reader retries (as
// io.ReadAtLeast does) rather than giving up.
type hiccupReader struct {
	r io.Reader
	n int
}

func (h *hiccupReader) Read(b []byte) (int, error) {
	if h.n++; h.n%4 != 0 {
		return 0, nil
	}
	return h.r.Read(b)
}

func TestPinEmptyReadsAreRetried(t *testing.T) {
	recs := sampleRecords(50)
	data := write(t, recs, true)
	got, warn, skipped := readFrom(t, &hiccupReader{r: iotest.HalfReader(bytes.NewReader(data))})
	if !reflect.DeepEqual(got, recs) || len(warn) != 0 || skipped != 0 {
		t.Errorf("%d records, warnings %v, skipped %d", len(got), warn, skipped)
	}
}

// countingWriter counts the bytes handed to it.
type countingWriter struct{ n int }

func (c *countingWriter) Write(b []byte) (int, error) { c.n += len(b); return len(b), nil }

// The Writer hands frames over in whole buffers (one write(2) per 64 KiB):
// frames that exactly fill the buffer stay in it until the next Write or
// Flush, and a frame of exactly the buffer's size is buffered, not
// written on its own.
func TestPinWriterBuffersWholeBuffers(t *testing.T) {
	dst := &countingWriter{}
	w, err := NewWriter(dst, testHeader())
	if err != nil {
		t.Fatal(err)
	}
	hdr := dst.n
	// Four frames of a quarter of the buffer each.
	rec := make([]byte, bufSize/4-frameOverhead)
	for range 4 {
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
	}
	if dst.n != hdr {
		t.Errorf("%d bytes handed over with the buffer exactly full, want none yet", dst.n-hdr)
	}
	if err := w.Write([]byte{1}); err != nil || dst.n != hdr+bufSize {
		t.Errorf("the next Write handed over %d bytes (%v), want the full buffer, %d", dst.n-hdr, err, bufSize)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	before := dst.n
	if err := w.Write(make([]byte, bufSize-frameOverhead)); err != nil || dst.n != before {
		t.Errorf("a frame of exactly the buffer's size: %d bytes written at once (%v), want 0", dst.n-before, err)
	}
	if err := w.Flush(); err != nil || dst.n != before+bufSize {
		t.Errorf("Flush handed over %d bytes, want %d", dst.n-before, bufSize)
	}
}
