package record

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Header describes a recording: where and when it was made, and how.
type Header struct {
	FormatVersion  uint32 `json:"-"` // from the preamble, not the JSON
	MmtraceVersion string `json:"mmtrace_version"`
	KernelRelease  string `json:"kernel_release"`
	Hostname       string `json:"hostname"`
	BootID         string `json:"boot_id"` // /proc/sys/kernel/random/boot_id

	// The clock reference: kernel timestamps are CLOCK_MONOTONIC
	// nanoseconds; MonoBase and WallBase are one instant on that clock and
	// in Unix nanoseconds, so wall = WallBase + (t - MonoBase). It holds
	// only for timestamps of the same boot (BootID).
	MonoBase int64 `json:"mono_base_ns"`
	WallBase int64 `json:"wall_base_ns"`

	Args    []string          `json:"args"` // the mmtrace command line of the recording
	Options map[string]string `json:"options,omitempty"`
}

// fileHeader is the JSON object in the file: the Header plus what only the
// reader needs.
type fileHeader struct {
	Header
	// ByteOrder is the byte order of the record payloads: "little" or "big".
	ByteOrder string `json:"payload_byte_order"`
}

// Wall converts a kernel CLOCK_MONOTONIC timestamp of the recording to
// wall-clock time.
func (h Header) Wall(mono uint64) time.Time {
	return time.Unix(0, h.WallBase+(int64(mono)-h.MonoBase))
}

// NewHeader describes the running system: kernel release, hostname, boot id,
// clock reference and mmtrace version. The caller adds Args and Options.
// Facts that cannot be read are left empty.
func NewHeader() Header {
	h := Header{
		FormatVersion:  FormatVersion,
		MmtraceVersion: buildVersion(),
		KernelRelease:  readProcLine("/proc/sys/kernel/osrelease"),
		BootID:         readProcLine("/proc/sys/kernel/random/boot_id"),
	}
	h.Hostname, _ = os.Hostname()
	h.MonoBase, h.WallBase = clockReference()
	return h
}

func readProcLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// buildVersion is the mmtrace module version from the build information,
// with the VCS revision when the build recorded one.
func buildVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	v := info.Main.Version
	var rev, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		v += " " + rev + dirty
	}
	return v
}

// clockReference reads CLOCK_MONOTONIC between two wall-clock readings and
// keeps the tightest of a few tries, so the pair is off by well under a
// microsecond.
func clockReference() (mono, wall int64) {
	best := time.Duration(-1)
	for range 5 {
		w1 := time.Now()
		var ts unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
			return 0, 0
		}
		w2 := time.Now()
		if d := w2.Sub(w1); best < 0 || d < best {
			best = d
			mono = ts.Nano()
			wall = w1.UnixNano() + int64(d/2)
		}
	}
	return mono, wall
}

// nativeByteOrder names the byte order of this machine.
func nativeByteOrder() string {
	var b [2]byte
	binary.NativeEndian.PutUint16(b[:], 1)
	if b[0] == 1 {
		return "little"
	}
	return "big"
}

func encodeHeader(h Header) ([]byte, error) {
	b, err := json.Marshal(fileHeader{Header: h, ByteOrder: nativeByteOrder()})
	if err != nil {
		return nil, fmt.Errorf("encode recording header: %w", err)
	}
	if len(b) > maxHeader {
		return nil, fmt.Errorf("recording header of %d bytes exceeds the %d-byte limit", len(b), maxHeader)
	}
	return b, nil
}
