package record

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// sampleRecords makes n records shaped like ring-buffer records: a kind
// byte first, sizes varying, contents telling them apart.
func sampleRecords(n int) [][]byte {
	recs := make([][]byte, n)
	for i := range recs {
		rec := make([]byte, 24+(i*37)%200)
		rec[0] = byte(1 + i%12)
		for j := 1; j < len(rec); j++ {
			rec[j] = byte(i*7 + j)
		}
		recs[i] = rec
	}
	return recs
}

func testHeader() Header {
	return Header{
		FormatVersion:  FormatVersion,
		MmtraceVersion: "v0.0.0-test",
		KernelRelease:  "6.18.0-test",
		Hostname:       "testhost",
		BootID:         "0b6a5b0e-5e4f-4d61-9f3a-3d0f3c1f2a11",
		MonoBase:       123456789,
		WallBase:       1700000000123456789,
		Args:           []string{"mmtrace", "--comm", "bash", "-w", "out.mmtrace", "--", "sh", "-c", "echo 'a b'"},
		Options:        map[string]string{"squeeze-threshold": "64MiB"},
	}
}

// write records recs; with closed false it stops after a Flush, as a
// killed mmtrace would leave the file.
func write(t testing.TB, recs [][]byte, closed bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, testHeader())
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range recs {
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
	}
	if closed {
		err = w.Close()
	} else {
		err = w.Flush()
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// readAll reads every record of data, copying each.
func readAll(t testing.TB, data []byte) ([][]byte, *Reader) {
	t.Helper()
	r, err := NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	var recs [][]byte
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		recs = append(recs, bytes.Clone(rec))
		if len(recs) > len(data) {
			t.Fatal("Next does not come to an end")
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("Next after the end = %v, want io.EOF", err)
	}
	return recs, r
}

// frameOffsets returns the file offset of each record frame of recs and
// the offset of the end frame, computed from the format definition.
func frameOffsets(t *testing.T, recs [][]byte) ([]int64, int64) {
	t.Helper()
	js, err := encodeHeader(testHeader())
	if err != nil {
		t.Fatal(err)
	}
	off := int64(preambleLen + len(js) + crcLen)
	offs := make([]int64, len(recs))
	for i, rec := range recs {
		offs[i] = off
		off += int64(frameOverhead + len(rec))
	}
	return offs, off
}

func warningTexts(r *Reader) []string {
	var s []string
	for _, w := range r.Warnings() {
		s = append(s, w.Msg)
	}
	return s
}

func TestRoundTrip(t *testing.T) {
	recs := sampleRecords(500)
	recs = append(recs, []byte{}, bytes.Repeat([]byte{7}, bufSize+100), bytes.Repeat([]byte{9}, MaxRecord))
	data := write(t, recs, true)
	got, r := readAll(t, data)
	if !reflect.DeepEqual(got, recs) {
		t.Fatalf("read %d records, wrote %d; they differ", len(got), len(recs))
	}
	if w := r.Warnings(); len(w) != 0 {
		t.Errorf("warnings on an intact file: %v", w)
	}
	if r.Skipped() != 0 || r.Unknown() != 0 {
		t.Errorf("Skipped() = %d, Unknown() = %d, want 0, 0", r.Skipped(), r.Unknown())
	}
	if h := r.Header(); !reflect.DeepEqual(h, testHeader()) {
		t.Errorf("header:\n got %+v\nwant %+v", h, testHeader())
	}
	_, end := frameOffsets(t, recs)
	if want := end + frameOverhead + 8; int64(len(data)) != want {
		t.Errorf("file is %d bytes, the format says %d", len(data), want)
	}
}

func TestWriteRefusesHugeRecord(t *testing.T) {
	w, err := NewWriter(io.Discard, testHeader())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(make([]byte, MaxRecord+1)); err == nil {
		t.Fatal("Write of a record above MaxRecord succeeded")
	}
	if err := w.Write([]byte{1}); err != nil {
		t.Fatalf("Write after refusing a huge record: %v", err)
	}
}

func TestCutAtTwoThirds(t *testing.T) {
	recs := sampleRecords(300)
	data := write(t, recs, true)
	cut := len(data) * 2 / 3
	offs, _ := frameOffsets(t, recs)
	complete := 0 // records wholly before the cut
	for i, off := range offs {
		if off+int64(frameOverhead+len(recs[i])) <= int64(cut) {
			complete = i + 1
		}
	}
	if offs[complete] == int64(cut) {
		t.Fatal("the cut falls on a frame boundary; pick another record count")
	}
	got, r := readAll(t, data[:cut])
	if !reflect.DeepEqual(got, recs[:complete]) {
		t.Fatalf("read %d records, want the %d complete ones", len(got), complete)
	}
	want := []string{fmt.Sprintf("file ends mid-record at offset %d (cut short?)", offs[complete])}
	if w := warningTexts(r); !reflect.DeepEqual(w, want) {
		t.Errorf("warnings = %q, want %q", w, want)
	}
}

// TestCutAnywhere cuts a small recording at every length: the header
// is refused with an error while incomplete; after that every complete
// record replays and exactly one warning says where the file ends.
func TestCutAnywhere(t *testing.T) {
	recs := sampleRecords(6)
	data := write(t, recs, true)
	offs, endFrame := frameOffsets(t, recs)
	for cut := 0; cut < len(data); cut++ {
		r, err := NewReader(bytes.NewReader(data[:cut]))
		if cut < int(offs[0]) {
			if err == nil {
				t.Fatalf("cut at %d inside the header: no error", cut)
			}
			if cut > 0 && !strings.Contains(err.Error(), "cut short") {
				t.Fatalf("cut at %d: error %q does not say the header is cut short", cut, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		n := 0
		for ; ; n++ {
			rec, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("cut at %d: %v", cut, err)
			}
			if !bytes.Equal(rec, recs[n]) {
				t.Fatalf("cut at %d: record %d differs", cut, n)
			}
		}
		complete := 0
		for i, off := range offs {
			if off+int64(frameOverhead+len(recs[i])) <= int64(cut) {
				complete = i + 1
			}
		}
		if n != complete {
			t.Fatalf("cut at %d: read %d records, want %d", cut, n, complete)
		}
		w := r.Warnings()
		if len(w) != 1 {
			t.Fatalf("cut at %d: warnings %v, want one", cut, w)
		}
		next := endFrame
		if complete < len(recs) {
			next = offs[complete]
		}
		if w[0].Offset != next {
			t.Fatalf("cut at %d: warning at offset %d, want %d: %s", cut, w[0].Offset, next, w[0].Msg)
		}
	}
}

func TestFlippedByteInTheMiddle(t *testing.T) {
	recs := sampleRecords(100)
	data := write(t, recs, true)
	offs, _ := frameOffsets(t, recs)
	const victim = 50
	data[offs[victim]+frameHeaderLen+5] ^= 0x40 // in the payload

	got, r := readAll(t, data)
	want := append(append([][]byte{}, recs[:victim]...), recs[victim+1:]...)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("read %d records, want all %d but the damaged one", len(got), len(want))
	}
	wantWarn := []string{fmt.Sprintf("record at offset %d: checksum mismatch, skipped", offs[victim])}
	if w := warningTexts(r); !reflect.DeepEqual(w, wantWarn) {
		t.Errorf("warnings = %q, want %q", w, wantWarn)
	}
	if r.Skipped() != 1 {
		t.Errorf("Skipped() = %d, want 1", r.Skipped())
	}
}

// TestAnyFlippedByte damages each byte after the header in turn: one
// damaged byte costs at most the record it is in, the others replay in
// order, and the damage is reported.
func TestAnyFlippedByte(t *testing.T) {
	recs := sampleRecords(8)
	data := write(t, recs, true)
	offs, endFrame := frameOffsets(t, recs)
	for i := int(offs[0]); i < len(data); i++ {
		for _, flip := range []byte{0x01, 0x80, 0xff} {
			damaged := bytes.Clone(data)
			damaged[i] ^= flip
			got, r := readAll(t, damaged)
			victim := -1 // the record frame holding byte i
			for j, off := range offs {
				if int64(i) >= off && int64(i) < off+int64(frameOverhead+len(recs[j])) {
					victim = j
				}
			}
			want := recs
			if victim >= 0 {
				want = append(append([][]byte{}, recs[:victim]...), recs[victim+1:]...)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("byte %d ^ %#x: read %d records, want %d", i, flip, len(got), len(want))
			}
			w := r.Warnings()
			if len(w) == 0 {
				t.Fatalf("byte %d ^ %#x: no warning", i, flip)
			}
			wantOff := endFrame
			if victim >= 0 {
				wantOff = offs[victim]
				if r.Skipped() != 1 {
					t.Fatalf("byte %d ^ %#x: Skipped() = %d, want 1", i, flip, r.Skipped())
				}
			}
			if w[0].Offset != wantOff {
				t.Fatalf("byte %d ^ %#x: first warning at offset %d, want %d: %s", i, flip, w[0].Offset, wantOff, w[0].Msg)
			}
		}
	}
}

// TestZeroedPage wipes a stretch covering several records, as a damaged
// disk block would; the end frame makes the count of lost records exact.
func TestZeroedPage(t *testing.T) {
	recs := sampleRecords(200)
	data := write(t, recs, true)
	offs, _ := frameOffsets(t, recs)
	from, to := offs[40]+3, offs[40]+4096
	clear(data[from:to])
	lost := 0
	var want [][]byte
	for i, off := range offs {
		end := off + int64(frameOverhead+len(recs[i]))
		if end <= from || off >= to {
			want = append(want, recs[i])
		} else {
			lost++
		}
	}
	got, r := readAll(t, data)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("read %d records, want the %d intact ones", len(got), len(want))
	}
	if r.Skipped() != lost {
		t.Errorf("Skipped() = %d, want %d", r.Skipped(), lost)
	}
	t.Logf("warnings: %q", warningTexts(r))
}

func TestManyWarningsAreCapped(t *testing.T) {
	recs := sampleRecords(3 * maxWarnings)
	data := write(t, recs, true)
	offs, _ := frameOffsets(t, recs)
	for i := 0; i < len(offs); i += 2 {
		data[offs[i]+frameHeaderLen] ^= 1
	}
	_, r := readAll(t, data)
	w := r.Warnings()
	if len(w) != maxWarnings+1 {
		t.Fatalf("%d warnings, want %d", len(w), maxWarnings+1)
	}
	if want := fmt.Sprintf("and %d more warnings", len(offs)/2-maxWarnings); w[maxWarnings].Msg != want {
		t.Errorf("last warning %q, want %q", w[maxWarnings].Msg, want)
	}
	if r.Skipped() != len(offs)/2 {
		t.Errorf("Skipped() = %d, want %d", r.Skipped(), len(offs)/2)
	}
}

func TestKilledWriter(t *testing.T) {
	recs := sampleRecords(50)
	data := write(t, recs, false)
	got, r := readAll(t, data)
	if !reflect.DeepEqual(got, recs) {
		t.Fatalf("read %d records, want %d", len(got), len(recs))
	}
	_, end := frameOffsets(t, recs)
	want := []string{fmt.Sprintf("recording ends at offset %d without its end marker (mmtrace was killed or the file was cut short)", end)}
	if w := warningTexts(r); !reflect.DeepEqual(w, want) {
		t.Errorf("warnings = %q, want %q", w, want)
	}
}

func TestDataAfterTheEnd(t *testing.T) {
	recs := sampleRecords(3)
	data := write(t, recs, true)
	n := len(data)
	data = append(data, write(t, recs, true)...) // two recordings concatenated
	got, r := readAll(t, data)
	if !reflect.DeepEqual(got, recs) {
		t.Fatalf("read %d records, want the first recording's %d", len(got), len(recs))
	}
	want := []string{fmt.Sprintf("data after the end of the recording at offset %d, ignored", n)}
	if w := warningTexts(r); !reflect.DeepEqual(w, want) {
		t.Errorf("warnings = %q, want %q", w, want)
	}
}

func TestUnknownKindsAreSkipped(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, testHeader())
	if err != nil {
		t.Fatal(err)
	}
	recs := sampleRecords(4)
	steps := []struct {
		kind byte
		rec  []byte
	}{{kindRecord, recs[0]}, {7, []byte("future")}, {kindRecord, recs[1]}, {7, []byte("again")}, {kindRecord, recs[2]}, {0, nil}, {kindRecord, recs[3]}}
	for _, s := range steps {
		if err := w.writeFrame(s.kind, s.rec); err != nil {
			t.Fatal(err)
		}
	}
	// A record frame with a flag this version does not know.
	w.buf = append(w.buf, sync0, sync1, kindRecord, 0x10, 1, 0, 0, 0, 42)
	w.buf = le.AppendUint32(w.buf, crcOf(w.buf[len(w.buf)-7:]))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	got, r := readAll(t, buf.Bytes())
	if !reflect.DeepEqual(got, recs) {
		t.Fatalf("read %d records, want the %d known ones", len(got), len(recs))
	}
	if r.Unknown() != 4 || r.Skipped() != 0 {
		t.Errorf("Unknown() = %d, Skipped() = %d, want 4, 0", r.Unknown(), r.Skipped())
	}
	ws := warningTexts(r)
	if len(ws) != 3 || !strings.Contains(ws[0], "unknown kind 7") || !strings.Contains(ws[1], "unknown kind 0") || !strings.Contains(ws[2], "unknown flags 0x10") {
		t.Errorf("warnings = %q, want one per unknown kind or flag", ws)
	}
}

func crcOf(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// withPreamble returns a valid recording with its preamble fields replaced.
func withPreamble(t *testing.T, version, hlen uint32) []byte {
	data := write(t, sampleRecords(2), true)
	le.PutUint32(data[len(magic):], version)
	if hlen != 0 {
		le.PutUint32(data[len(magic)+4:], hlen)
	}
	return data
}

func TestRefusedFiles(t *testing.T) {
	valid := write(t, sampleRecords(2), true)
	garbage := make([]byte, 4096)
	for i := range garbage {
		garbage[i] = byte(i*131 + i*i*7)
	}
	badJSON := bytes.Clone(valid)
	badJSON[preambleLen] = '[' // the header's opening brace, and its checksum fails too
	bigEndian := write(t, nil, true)
	bigEndian = bytes.Replace(bigEndian, []byte(`"little"`), []byte(`"big"`+"\x20\x20\x20"), 1)
	for _, c := range []struct {
		name string
		data []byte
		is   error
		msg  string
	}{
		{"empty", nil, ErrNotRecording, "empty file, not an mmtrace recording"},
		{"garbage", garbage, ErrNotRecording, "not an mmtrace recording"},
		{"png", []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR"), ErrNotRecording, "not an mmtrace recording (it is a PNG image)"},
		{"elf", []byte("\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00"), ErrNotRecording, "not an mmtrace recording (it is an ELF binary)"},
		{"gzip", []byte("\x1f\x8b\x08\x00\x00\x00\x00\x00"), ErrNotRecording, "not an mmtrace recording (it is gzip-compressed; decompress it first)"},
		{"json output", []byte(`{"type":"report","pid":1}` + "\n"), ErrNotRecording, "not an mmtrace recording (it looks like mmtrace JSON output; -r reads files written with -w)"},
		{"text", []byte("hello\n"), ErrNotRecording, "not an mmtrace recording"},
		{"magic only", magic[:], nil, fmt.Sprintf("recording header is cut short (file ends at offset %d)", len(magic))},
		{"half magic", magic[:5], nil, "recording header is cut short (file ends at offset 5)"},
		{"newer", withPreamble(t, 2, 0), ErrNewerFormat, "recorded by a newer mmtrace (format 2); this one reads up to 1"},
		{"version 0", withPreamble(t, 0, 0), nil, "recording header is damaged (format version 0)"},
		{"huge header", withPreamble(t, 1, 1<<30), nil, "recording header is damaged (impossible length 1073741824)"},
		{"header past the end", withPreamble(t, 1, 100000), nil, fmt.Sprintf("recording header is cut short (file ends at offset %d)", len(valid))},
		{"header damaged", badJSON, nil, "recording header is damaged (checksum mismatch)"},
		{"big-endian", bigEndian, nil, "recorded on a big-endian machine; this little-endian one cannot decode its records"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := NewReader(bytes.NewReader(c.data))
			if err == nil {
				t.Fatalf("accepted, header %+v", r.Header())
			}
			if err.Error() != c.msg {
				t.Errorf("error %q, want %q", err, c.msg)
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("error %q is not %v", err, c.is)
			}
		})
	}
}

// TestDamagedHeaderThatStillParses: a checksum failure in the header is a
// warning if the JSON still decodes; losing the whole recording to one
// flipped byte in the hostname would be worse.
func TestDamagedHeaderThatStillParses(t *testing.T) {
	recs := sampleRecords(3)
	data := write(t, recs, true)
	i := bytes.Index(data, []byte("testhost"))
	data[i] = 'b'
	got, r := readAll(t, data)
	if !reflect.DeepEqual(got, recs) {
		t.Fatalf("read %d records, want %d", len(got), len(recs))
	}
	if r.Header().Hostname != "besthost" {
		t.Errorf("hostname %q, want the damaged %q", r.Header().Hostname, "besthost")
	}
	if w := warningTexts(r); len(w) != 1 || !strings.HasPrefix(w[0], "recording header: checksum mismatch") {
		t.Errorf("warnings = %q, want one about the header checksum", w)
	}
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.mmtrace")
	if _, err := Open(missing); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("Open(missing) = %v, want a not-exist error naming the file", err)
	}
	empty := filepath.Join(dir, "empty.mmtrace")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(empty); err == nil || err.Error() != empty+": empty file, not an mmtrace recording" {
		t.Errorf("Open(empty) = %v", err)
	}

	path := filepath.Join(dir, "ok.mmtrace")
	recs := sampleRecords(10)
	if err := os.WriteFile(path, write(t, recs, true), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		rec, err := r.Next()
		if err != nil || !bytes.Equal(rec, recs[i]) {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("Next at the end = %v, want io.EOF", err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// A recording goes to a file its caller opened (mmtrace opens it with
// internal/outfile): Close finishes the recording but leaves the file open
// for its owner to close, and the file replays.
func TestWriterOnFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rec.mmtrace")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWriter(f, testHeader())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write([]byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Stat(); err != nil {
		t.Errorf("Close closed the caller's file: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := r.Next()
	if err != nil || !bytes.Equal(got, []byte{1, 2, 3}) {
		t.Errorf("first record %v, %v", got, err)
	}
	if _, err := r.Next(); err != io.EOF || len(r.Warnings()) != 0 {
		t.Errorf("%v after the only record, warnings %v", err, r.Warnings())
	}
}

// TestFlushAge drives the Writer's clock by hand: a Write flushes once the
// oldest buffered frame is a second old, not before.
func TestFlushAge(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, testHeader())
	if err != nil {
		t.Fatal(err)
	}
	var now time.Duration
	w.clock = func() time.Duration { return now }
	headerLen := buf.Len()
	if headerLen == 0 {
		t.Fatal("NewWriter did not write the header at once")
	}
	rec := []byte{3, 1, 2, 3}
	step := func(at time.Duration, wantLen int) {
		t.Helper()
		now = at
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
		if buf.Len() != wantLen {
			t.Fatalf("after a Write at %v: %d bytes written, want %d", at, buf.Len(), wantLen)
		}
	}
	frame := frameOverhead + len(rec)
	step(5*time.Second, headerLen)                      // first frame buffered at 5 s
	step(5*time.Second+999*time.Millisecond, headerLen) // not yet a second old
	step(6*time.Second, headerLen+3*frame)              // a second old: all three go
	step(6*time.Second+1, headerLen+3*frame)            // a new buffer starts
	if err := w.Flush(); err != nil || buf.Len() != headerLen+4*frame {
		t.Fatalf("Flush: %v, %d bytes written, want %d", err, buf.Len(), headerLen+4*frame)
	}
	if err := w.Flush(); err != nil || buf.Len() != headerLen+4*frame {
		t.Fatalf("Flush of an empty buffer: %v, %d bytes written", err, buf.Len())
	}
}

type failingWriter struct{ ok int }

func (f *failingWriter) Write(b []byte) (int, error) {
	if f.ok <= 0 {
		return 0, errors.New("no space left on device")
	}
	f.ok--
	return len(b), nil
}

func TestWriteErrorIsSticky(t *testing.T) {
	w, err := NewWriter(&failingWriter{ok: 1}, testHeader())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write([]byte{1}); err != nil {
		t.Fatalf("buffered Write failed: %v", err)
	}
	err = w.Flush()
	if err == nil || err.Error() != "write recording: no space left on device" {
		t.Fatalf("Flush = %v", err)
	}
	if err2 := w.Write([]byte{1}); err2 != err {
		t.Errorf("Write after a failed Flush = %v, want %v", err2, err)
	}
	if err2 := w.Close(); err2 != err {
		t.Errorf("Close after a failed Flush = %v, want %v", err2, err)
	}
	if _, err := NewWriter(&failingWriter{}, testHeader()); err == nil {
		t.Error("NewWriter succeeded although the header could not be written")
	}
}

func TestWriteAfterClose(t *testing.T) {
	w, err := NewWriter(io.Discard, testHeader())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if err := w.Write([]byte{1}); err == nil {
		t.Error("Write after Close succeeded")
	}
}

func TestWriteDoesNotAllocate(t *testing.T) {
	w, err := NewWriter(io.Discard, testHeader())
	if err != nil {
		t.Fatal(err)
	}
	rec := sampleRecords(2)[1]
	if n := testing.AllocsPerRun(10000, func() { w.Write(rec) }); n != 0 {
		t.Errorf("Write allocates %v times per call", n)
	}
}

func BenchmarkWriterWrite(b *testing.B) {
	for _, size := range []int{64, 256} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			w, err := NewWriter(io.Discard, testHeader())
			if err != nil {
				b.Fatal(err)
			}
			rec := make([]byte, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if err := w.Write(rec); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkReaderNext(b *testing.B) {
	recs := sampleRecords(10000)
	data := write(b, recs, true)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		r, err := NewReader(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := r.Next(); err != nil {
				break
			}
		}
	}
}

// readFrom reads every record from src and returns them with the warnings.
func readFrom(t *testing.T, src io.Reader) ([][]byte, []Warning, int) {
	t.Helper()
	r, err := NewReader(src)
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	var recs [][]byte
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return recs, r.Warnings(), r.Skipped()
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		recs = append(recs, bytes.Clone(rec))
	}
}

// TestSmallReads reads a damaged recording bigger than the reader's buffer
// through sources that return a byte at a time, half of what was asked,
// or the data with io.EOF: the buffering must not change the outcome.
func TestSmallReads(t *testing.T) {
	recs := sampleRecords(3000)
	data := write(t, recs, true)
	offs, _ := frameOffsets(t, recs)
	data[offs[100]+20] ^= 0x08              // one record
	clear(data[64<<10-1000 : 64<<10+3000])  // a stretch across the first buffer's end
	data[offs[2000]+2] ^= 0x01              // a kind byte
	data = data[:len(data)-frameOverhead-3] // cut into the end frame

	wantRecs, wantWarn, wantSkipped := readFrom(t, bytes.NewReader(data))
	t.Logf("warnings: %q, skipped %d", wantWarn, wantSkipped)
	if len(wantWarn) != 4 {
		t.Fatalf("warnings %v, want four", wantWarn)
	}
	for name, src := range map[string]io.Reader{
		"one byte": iotest.OneByteReader(bytes.NewReader(data)),
		"half":     iotest.HalfReader(bytes.NewReader(data)),
		"data+EOF": iotest.DataErrReader(bytes.NewReader(data)),
	} {
		recs, warn, skipped := readFrom(t, src)
		if !reflect.DeepEqual(recs, wantRecs) || !reflect.DeepEqual(warn, wantWarn) || skipped != wantSkipped {
			t.Errorf("%s: %d records, warnings %v, %d skipped; want %d, %v, %d", name, len(recs), warn, skipped, len(wantRecs), wantWarn, wantSkipped)
		}
	}
}

// stalledReader returns nothing, forever, without an error.
type stalledReader struct{}

func (stalledReader) Read([]byte) (int, error) { return 0, nil }

func TestReadErrors(t *testing.T) {
	recs := sampleRecords(20)
	data := write(t, recs, true)
	offs, _ := frameOffsets(t, recs)
	broken := errors.New("input/output error")
	for name, c := range map[string]struct {
		src  io.Reader
		want error
	}{
		"error":   {io.MultiReader(bytes.NewReader(data[:offs[10]+5]), iotest.ErrReader(broken)), broken},
		"stalled": {io.MultiReader(bytes.NewReader(data[:offs[10]+5]), stalledReader{}), io.ErrNoProgress},
	} {
		r, err := NewReader(c.src)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for ; ; n++ {
			if _, err = r.Next(); err != nil {
				break
			}
		}
		if n != 10 || !errors.Is(err, c.want) {
			t.Errorf("%s: %d records, then %v; want 10, then %v", name, n, err, c.want)
		}
		if _, err2 := r.Next(); err2 != err {
			t.Errorf("%s: Next after an error = %v, want %v again", name, err2, err)
		}
	}
	if _, err := NewReader(iotest.ErrReader(broken)); !errors.Is(err, broken) {
		t.Errorf("NewReader on a failing source = %v", err)
	}
}
