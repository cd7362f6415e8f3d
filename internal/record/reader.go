package record

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"time"
)

// Errors NewReader and Open return (wrapped, with details) for files they
// refuse.
var (
	ErrNotRecording = errors.New("not an mmtrace recording")
	ErrNewerFormat  = errors.New("recorded by a newer mmtrace")
)

// Warning is damage the Reader found and stepped over.
type Warning struct {
	Offset int64  // where in the file
	Msg    string // a sentence naming the offset, e.g. "record at offset 1234: checksum mismatch, skipped"
}

func (w Warning) String() string { return w.Msg }

// maxWarnings bounds the warnings kept for a badly damaged file; the rest
// are counted.
const maxWarnings = 100

// Reader reads a recording. Records it returns alias its buffer.
type Reader struct {
	src     io.Reader
	file    *os.File    // set by Open; Close closes it
	stopCtx func() bool // OpenContext's wake-up on the context's end
	hdr     Header

	buf      []byte
	pos, end int   // unread data is buf[pos:end]
	base     int64 // file offset of buf[0]
	eof      bool  // src is exhausted
	err      error // sticky: io.EOF once done, or a read error

	records      uint64 // record frames returned
	skipped      int
	unknown      int
	unknownSeen  map[uint16]bool // kind | flags<<8 already warned about
	warnings     []Warning
	moreWarnings int

	// idx, while active, indexes checksums from the place of the last
	// damage on, so that stepping over damage is linear in the file
	// size (see crcindex.go). fill keeps its window in buf.
	idx crcIndex
	// examined counts the bytes damage handling looked at (markers
	// searched for, frame headers, bytes checksummed), for tests.
	examined int64
}

// idxSpan is how far past the start of its window the index serves
// before a new window starts: damage handling keeps at most this much
// plus one frame in memory, and redoes at most one frame per window.
const idxSpan = MaxRecord

// Open opens the recording at path and reads its header.
func Open(path string) (*Reader, error) {
	return OpenContext(context.Background(), path)
}

// OpenContext is Open for a path whose reads may block, such as a FIFO
// with no writer yet or a writer that goes quiet: opening, and every read
// after it, gives up when ctx ends, with an error that wraps
// context.Cause(ctx). Damage handling reads as it goes, so it stops
// too.
func OpenContext(ctx context.Context, path string) (*Reader, error) {
	f, err := openContext(ctx, path)
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		f.Close()
		return nil, fmt.Errorf("%s is a directory, not an mmtrace recording", path)
	}
	var src io.Reader = f
	var stop func() bool
	if ctx.Done() != nil {
		src = ctxReader{ctx, f}
		// Wakes a read blocked on a pipe or FIFO (a regular file's
		// reads do not block, and have no deadlines).
		stop = context.AfterFunc(ctx, func() { _ = f.SetReadDeadline(time.Unix(1, 0)) })
	}
	r, err := NewReader(src)
	if err != nil {
		if stop != nil {
			stop()
		}
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	r.file, r.stopCtx = f, stop
	return r, nil
}

// openContext opens path for reading, giving up when ctx ends: opening a
// FIFO blocks until a writer opens it. A given-up open goes on in the
// background and closes what it gets.
func openContext(ctx context.Context, path string) (*os.File, error) {
	if ctx.Done() == nil {
		return os.Open(path)
	}
	type opened struct {
		f   *os.File
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		f, err := os.Open(path)
		ch <- opened{f, err}
	}()
	select {
	case o := <-ch:
		return o.f, o.err
	case <-ctx.Done():
		go func() {
			if o := <-ch; o.f != nil {
				o.f.Close()
			}
		}()
		return nil, fmt.Errorf("open %s: %w", path, context.Cause(ctx))
	}
}

// ctxReader reads f until ctx ends.
type ctxReader struct {
	ctx context.Context
	f   *os.File
}

func (c ctxReader) Read(p []byte) (int, error) {
	if c.ctx.Err() != nil {
		return 0, context.Cause(c.ctx)
	}
	n, err := c.f.Read(p)
	if err != nil && c.ctx.Err() != nil {
		err = context.Cause(c.ctx)
	}
	return n, err
}

// NewReader reads the header of the recording in src. It refuses, with a
// one-sentence error, an empty or foreign file, a damaged header, and a
// recording of a newer format or of the other byte order.
func NewReader(src io.Reader) (*Reader, error) {
	r := &Reader{src: src, buf: make([]byte, 64<<10)}
	r.idx.examined = &r.examined
	if err := r.readPreamble(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Reader) readPreamble() error {
	if err := r.fill(len(magic)); err != nil && err != io.EOF {
		return fmt.Errorf("read recording: %w", err)
	}
	got := r.buf[r.pos:r.end]
	if len(got) == 0 {
		return fmt.Errorf("empty file, %w", ErrNotRecording)
	}
	if len(got) < len(magic) && bytes.HasPrefix(magic[:], got) {
		return r.headerShort(io.EOF)
	}
	if !bytes.HasPrefix(got, magic[:]) {
		if looks := sniff(got); looks != "" {
			return fmt.Errorf("%w (%s)", ErrNotRecording, looks)
		}
		return ErrNotRecording
	}
	if err := r.fill(preambleLen); err != nil {
		return r.headerShort(err)
	}
	p := r.buf[r.pos:]
	version := le.Uint32(p[len(magic):])
	n := le.Uint32(p[len(magic)+4:])
	switch {
	case version > FormatVersion:
		return fmt.Errorf("%w (format %d); this one reads up to %d", ErrNewerFormat, version, FormatVersion)
	case version == 0:
		return errors.New("recording header is damaged (format version 0)")
	case n > maxHeader:
		return fmt.Errorf("recording header is damaged (impossible length %d)", n)
	}
	total := preambleLen + int(n) + crcLen
	if err := r.fill(total); err != nil {
		return r.headerShort(err)
	}
	p = r.buf[r.pos : r.pos+total]
	js := p[preambleLen : preambleLen+int(n)]
	crcOK := crc32.Checksum(p[len(magic):preambleLen+int(n)], castagnoli) == le.Uint32(p[preambleLen+int(n):])
	var fh fileHeader
	if err := json.Unmarshal(js, &fh); err != nil {
		if crcOK {
			return fmt.Errorf("recording header is not valid JSON: %w", err)
		}
		return errors.New("recording header is damaged (checksum mismatch)")
	}
	if !crcOK {
		r.warn(r.base+int64(r.pos), "recording header: checksum mismatch; its fields (host, clock reference, command line) may be wrong")
	}
	if fh.ByteOrder != "" && fh.ByteOrder != nativeByteOrder() {
		return fmt.Errorf("recorded on a %s-endian machine; this %s-endian one cannot decode its records", fh.ByteOrder, nativeByteOrder())
	}
	r.hdr = fh.Header
	r.hdr.FormatVersion = version
	r.pos += total
	return nil
}

func (r *Reader) headerShort(err error) error {
	if err == io.EOF {
		return fmt.Errorf("recording header is cut short (file ends at offset %d)", r.base+int64(r.end))
	}
	return fmt.Errorf("read recording: %w", err)
}

// sniff names a few kinds of file people pass to -r by mistake.
func sniff(b []byte) string {
	for _, s := range []struct{ prefix, what string }{
		{"\x7fELF", "it is an ELF binary"},
		{"\x89PNG", "it is a PNG image"},
		{"\x1f\x8b", "it is gzip-compressed; decompress it first"},
		{"\x28\xb5\x2f\xfd", "it is zstd-compressed; decompress it first"},
		{"\xfd7zXZ\x00", "it is xz-compressed; decompress it first"},
		{"\xd4\xc3\xb2\xa1", "it is a pcap capture"},
		{"\xa1\xb2\xc3\xd4", "it is a pcap capture"},
		{"\x0a\x0d\x0d\x0a", "it is a pcapng capture"},
		{"{\"type\":", "it looks like mmtrace JSON output; -r reads files written with -w"},
	} {
		if bytes.HasPrefix(b, []byte(s.prefix)) {
			return s.what
		}
	}
	return ""
}

// Close closes the file if Open opened it.
func (r *Reader) Close() error {
	if r.file == nil {
		return nil
	}
	if r.stopCtx != nil {
		r.stopCtx()
	}
	err := r.file.Close()
	r.file = nil
	return err
}

// Offset is the file offset the reader has read up to: the start of the
// next frame, or where damage handling is.
func (r *Reader) Offset() int64 { return r.offset() }

// Header returns the recording's header.
func (r *Reader) Header() Header { return r.hdr }

// Warnings returns the damage seen so far, in file order.
func (r *Reader) Warnings() []Warning {
	w := append([]Warning(nil), r.warnings...)
	if r.moreWarnings > 0 {
		w = append(w, Warning{Offset: r.offset(), Msg: fmt.Sprintf("and %d more warnings", r.moreWarnings)})
	}
	return w
}

// Skipped returns the number of records skipped for damage. Each damaged
// stretch counts as one record until the end of the recording says how
// many records it held; then the count is exact.
func (r *Reader) Skipped() int { return r.skipped }

// Unknown returns the number of frames skipped because this version does
// not know their kind (they come from a newer mmtrace).
func (r *Reader) Unknown() int { return r.unknown }

// Next returns the next record. It returns io.EOF at the end of the
// recording; damage on the way is skipped and reported by Warnings. The
// slice is valid until the next call.
func (r *Reader) Next() ([]byte, error) {
	for r.err == nil {
		start := r.offset()
		if err := r.fill(frameHeaderLen); err != nil {
			if err != io.EOF {
				return nil, r.fail(err)
			}
			if r.end > r.pos {
				r.warn(start, fmt.Sprintf("file ends mid-record at offset %d (cut short?)", start))
			} else {
				r.warn(start, fmt.Sprintf("recording ends at offset %d without its end marker (mmtrace was killed or the file was cut short)", start))
			}
			r.err = io.EOF
			break
		}
		h := r.buf[r.pos:]
		if h[0] != sync0 || h[1] != sync1 {
			r.resync("bad frame marker", -1)
			continue
		}
		kind, flags, n := h[2], h[3], le.Uint32(h[4:])
		if n > MaxRecord {
			r.resync(fmt.Sprintf("impossible length %d", n), -1)
			continue
		}
		total := frameOverhead + int(n)
		if err := r.fill(total); err != nil {
			if err != io.EOF {
				return nil, r.fail(err)
			}
			r.resync("cut short", -1)
			continue
		}
		f := r.buf[r.pos : r.pos+total]
		if !r.intact(f) {
			r.resync("checksum mismatch", start+int64(total))
			continue
		}
		r.pos += total
		payload := f[frameHeaderLen : frameHeaderLen+n]
		switch {
		case flags == 0 && kind == kindRecord:
			r.records++
			return payload, nil
		case flags == 0 && kind == kindEnd:
			r.finish(start, payload)
		default:
			r.skipUnknown(start, kind, flags)
		}
	}
	return nil, r.err
}

// finish handles the end frame: check the record count and look for data
// after it.
func (r *Reader) finish(at int64, payload []byte) {
	r.err = io.EOF
	if len(payload) >= 8 {
		written := le.Uint64(payload)
		switch {
		case written > r.records:
			// Only say so when the damage warnings undercounted.
			if lost := written - r.records; lost != uint64(r.skipped) {
				r.skipped = int(min(lost, uint64(maxInt)))
				r.warn(at, fmt.Sprintf("the recording holds %d records, %d of them lost to damage", written, lost))
			}
		case written < r.records:
			r.warn(at, fmt.Sprintf("the end of the recording counts %d records but %d were read", written, r.records))
		default:
			// Every record was read: the damage hit no record frame.
			r.skipped = 0
		}
	}
	after := r.offset()
	if err := r.fill(1); err == nil {
		r.warn(after, fmt.Sprintf("data after the end of the recording at offset %d, ignored", after))
	}
}

const maxInt = int(^uint(0) >> 1)

func (r *Reader) skipUnknown(at int64, kind, flags byte) {
	r.unknown++
	key := uint16(kind) | uint16(flags)<<8
	if r.unknownSeen[key] {
		return
	}
	if r.unknownSeen == nil {
		r.unknownSeen = make(map[uint16]bool)
	}
	r.unknownSeen[key] = true
	what := fmt.Sprintf("unknown kind %d", kind)
	if flags != 0 {
		what = fmt.Sprintf("kind %d with unknown flags %#x", kind, flags)
	}
	r.warn(at, fmt.Sprintf("record at offset %d: %s (from a newer mmtrace?), skipped; more like it are only counted", at, what))
}

// intact reports whether the complete frame f, at the current position,
// has a matching checksum. Near recent damage the index answers, so
// that frames claiming long payloads over damaged stretches are not
// read once per frame.
func (r *Reader) intact(f []byte) bool {
	n := len(f) - frameOverhead
	want := le.Uint32(f[frameHeaderLen+n:])
	if r.idx.active && r.offset()-r.idx.origin >= idxSpan {
		r.idx.active = false
	}
	if !r.idx.active {
		return crc32.Checksum(f[2:frameHeaderLen+n], castagnoli) == want
	}
	w := r.buf[r.idx.origin-r.base : r.end]
	at := int(r.offset() - r.idx.origin)
	return r.idx.sum(w, at+2, at+frameHeaderLen+n) == want
}

// resync steps over a damaged frame at the current position: it scans for
// the next sync marker that starts a frame with a valid length and
// checksum, and leaves the reader there (or at the end of the file). end is
// where the damaged frame claimed to end, or -1 if that is not to be
// trusted.
//
// Its cost is linear in the bytes it steps over: each marker costs a
// constant (the index gives the checksum of the frame it claims to
// start), and the index reads each byte of a window once.
func (r *Reader) resync(why string, end int64) {
	bad := r.offset()
	if !r.idx.active {
		r.idx.reset(bad)
	}
	r.pos++
	for {
		if r.offset()-r.idx.origin >= idxSpan {
			r.idx.reset(r.offset())
		}
		i := bytes.Index(r.buf[r.pos:r.end], []byte{sync0, sync1})
		if i < 0 {
			r.examined += int64(r.end - r.pos)
			if r.eof {
				r.pos = r.end
				break
			}
			// Keep the last byte: it may be the first half of a marker.
			if r.end > r.pos {
				r.pos = r.end - 1
			}
			r.idx.reset(r.offset())
			if err := r.fill(r.end - r.pos + 1); err != nil && err != io.EOF {
				r.fail(err)
				return
			}
			continue
		}
		r.examined += int64(i)
		r.pos += i
		ok, err := r.frameAt()
		if err != nil {
			r.fail(err)
			return
		}
		if ok {
			break
		}
		r.pos++
	}
	next := r.offset()
	if r.pos == r.end && r.eof {
		if why == "cut short" {
			r.warn(bad, fmt.Sprintf("file ends mid-record at offset %d (cut short?)", bad))
		} else {
			r.skipped++
			r.warn(bad, fmt.Sprintf("record at offset %d: %s, skipped; nothing intact after it (%d bytes to the end of the file)", bad, why, next-bad))
		}
		r.err = io.EOF
		return
	}
	r.skipped++
	if why == "cut short" {
		why = "length runs past the end of the file"
	}
	if next == end {
		r.warn(bad, fmt.Sprintf("record at offset %d: %s, skipped", bad, why))
	} else {
		r.warn(bad, fmt.Sprintf("record at offset %d: %s, skipped %d bytes up to the next intact record at offset %d", bad, why, next-bad, next))
	}
}

// frameAt reports whether a complete, intact frame starts at the current
// position, reading ahead as needed without consuming anything.
func (r *Reader) frameAt() (bool, error) {
	if err := r.fill(frameHeaderLen); err != nil {
		return false, ignoreEOF(err)
	}
	r.examined += frameHeaderLen
	n := le.Uint32(r.buf[r.pos+4:])
	if n > MaxRecord {
		return false, nil
	}
	total := frameOverhead + int(n)
	if err := r.fill(total); err != nil {
		return false, ignoreEOF(err)
	}
	return r.intact(r.buf[r.pos : r.pos+total]), nil
}

func ignoreEOF(err error) error {
	if err == io.EOF {
		return nil
	}
	return err
}

func (r *Reader) fail(err error) error {
	r.err = fmt.Errorf("read recording at offset %d: %w", r.offset(), err)
	return r.err
}

// offset is the file offset of the current position.
func (r *Reader) offset() int64 { return r.base + int64(r.pos) }

func (r *Reader) warn(at int64, msg string) {
	if len(r.warnings) >= maxWarnings {
		r.moreWarnings++
		return
	}
	r.warnings = append(r.warnings, Warning{Offset: at, Msg: msg})
}

// fill makes at least n unread bytes available in buf[pos:end], moving
// them to the front and growing buf as needed; the index's window, when
// it is active, stays in buf too. It returns io.EOF if the source ends
// first (the bytes that are there stay available).
func (r *Reader) fill(n int) error {
	if r.end-r.pos >= n {
		return nil
	}
	if r.eof {
		return io.EOF
	}
	if r.pos+n > len(r.buf) {
		keep := r.pos
		if r.idx.active {
			keep = int(r.idx.origin - r.base)
		}
		if need := r.pos - keep + n; need > len(r.buf) {
			nb := make([]byte, max(need, 2*len(r.buf)))
			copy(nb, r.buf[keep:r.end])
			r.buf = nb
		} else {
			copy(r.buf, r.buf[keep:r.end])
		}
		r.base += int64(keep)
		r.end -= keep
		r.pos -= keep
	}
	for zero := 0; r.end-r.pos < n; {
		m, err := r.src.Read(r.buf[r.end:])
		r.end += m
		switch {
		case err == io.EOF:
			r.eof = true
			if r.end-r.pos < n {
				return io.EOF
			}
		case err != nil:
			return err
		case m == 0:
			// A reader that returns nothing without an error: retry, as
			// io.ReadAtLeast does, but not forever.
			if zero++; zero >= 100 {
				return io.ErrNoProgress
			}
		default:
			zero = 0
		}
	}
	return nil
}
