package record

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"time"
)

const (
	bufSize  = 64 << 10
	flushAge = time.Second
)

// epoch anchors the Writer's clock; time.Since on it reads only the
// monotonic clock, one vDSO call.
var epoch = time.Now()

func monotonic() time.Duration { return time.Since(epoch) }

// Writer writes a recording. It is not safe for concurrent use: call Flush
// from the goroutine that calls Write.
type Writer struct {
	dst    io.Writer
	buf    []byte // frames not yet handed to dst; capacity bufSize
	oldest time.Duration
	clock  func() time.Duration

	records uint64
	err     error // sticky: the first write error, or errClosed
	frame   [frameHeaderLen]byte
}

var errClosed = errors.New("recording is closed")

// NewWriter writes the header of a recording to w at once, so that even a
// recording killed before its first record is a valid file, and returns a
// Writer for its records. Close does not close w. The caller opens the
// file: mmtrace does it with internal/outfile, which makes it private
// (mode 0600: the command line in the header can carry secrets) and
// gives it to the user who asked.
func NewWriter(w io.Writer, h Header) (*Writer, error) {
	js, err := encodeHeader(h)
	if err != nil {
		return nil, err
	}
	wr := &Writer{dst: w, buf: make([]byte, 0, bufSize), clock: monotonic}
	wr.buf = append(wr.buf, magic[:]...)
	wr.buf = le.AppendUint32(wr.buf, FormatVersion)
	wr.buf = le.AppendUint32(wr.buf, uint32(len(js)))
	wr.buf = append(wr.buf, js...)
	wr.buf = le.AppendUint32(wr.buf, crc32.Checksum(wr.buf[len(magic):], castagnoli))
	if err := wr.Flush(); err != nil {
		return nil, err
	}
	return wr, nil
}

// Write frames one record. The record is copied; rec may be reused once
// Write returns. Write hands the buffer to the underlying writer when it is
// full or holds data older than a second.
func (w *Writer) Write(rec []byte) error {
	return w.writeFrame(kindRecord, rec)
}

func (w *Writer) writeFrame(kind byte, payload []byte) error {
	if w.err != nil {
		return w.err
	}
	if len(payload) > MaxRecord {
		return fmt.Errorf("write recording: record of %d bytes exceeds the %d-byte limit", len(payload), MaxRecord)
	}
	now := w.clock()
	size := frameOverhead + len(payload)
	if len(w.buf)+size > cap(w.buf) {
		if err := w.Flush(); err != nil {
			return err
		}
	}
	if size > cap(w.buf) {
		if err := w.writeDirect(kind, payload); err != nil {
			return err
		}
	} else {
		if len(w.buf) == 0 {
			w.oldest = now
		}
		start := len(w.buf)
		w.buf = append(w.buf, sync0, sync1, kind, 0)
		w.buf = le.AppendUint32(w.buf, uint32(len(payload)))
		w.buf = append(w.buf, payload...)
		w.buf = le.AppendUint32(w.buf, crc32.Checksum(w.buf[start+2:], castagnoli))
	}
	if kind == kindRecord {
		w.records++
	}
	if len(w.buf) > 0 && now-w.oldest >= flushAge {
		return w.Flush()
	}
	return nil
}

// writeDirect writes a frame too big for the buffer (which is empty)
// straight to the destination, without copying the payload.
func (w *Writer) writeDirect(kind byte, payload []byte) error {
	h := w.frame[:]
	h[0], h[1], h[2], h[3] = sync0, sync1, kind, 0
	le.PutUint32(h[4:], uint32(len(payload)))
	crc := crc32.Update(crc32.Checksum(h[2:], castagnoli), castagnoli, payload)
	var tail [crcLen]byte
	le.PutUint32(tail[:], crc)
	for _, b := range [][]byte{h, payload, tail[:]} {
		if _, err := w.dst.Write(b); err != nil {
			w.err = fmt.Errorf("write recording: %w", err)
			return w.err
		}
	}
	return nil
}

// Flush hands all buffered frames to the underlying writer. With nothing
// buffered it does nothing, so calling it on a ticker is cheap.
func (w *Writer) Flush() error {
	if w.err != nil {
		if w.err == errClosed {
			return nil
		}
		return w.err
	}
	if len(w.buf) == 0 {
		return nil
	}
	n, err := w.dst.Write(w.buf)
	if err == nil && n < len(w.buf) {
		err = io.ErrShortWrite
	}
	if err != nil {
		w.err = fmt.Errorf("write recording: %w", err)
		return w.err
	}
	w.buf = w.buf[:0]
	return nil
}

// Close writes the end-of-recording frame and flushes; it does not close
// the destination. Closing twice does nothing.
func (w *Writer) Close() error {
	if w.err == errClosed {
		return nil
	}
	var count [8]byte
	le.PutUint64(count[:], w.records)
	err := w.writeFrame(kindEnd, count[:])
	if err == nil {
		err = w.Flush()
	}
	w.err = errClosed
	return err
}
