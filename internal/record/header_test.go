package record

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var update = flag.Bool("update", false, "rewrite testdata/format-v1.mmtrace")

func TestNewHeader(t *testing.T) {
	h := NewHeader()
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		t.Fatal(err)
	}
	if want := unix.ByteSliceToString(uts.Release[:]); h.KernelRelease != want {
		t.Errorf("KernelRelease %q, want %q", h.KernelRelease, want)
	}
	if want, _ := os.Hostname(); h.Hostname != want {
		t.Errorf("Hostname %q, want %q", h.Hostname, want)
	}
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`).MatchString(h.BootID) {
		t.Errorf("BootID %q is not a UUID", h.BootID)
	}
	if h.FormatVersion != FormatVersion {
		t.Errorf("FormatVersion %d, want %d", h.FormatVersion, FormatVersion)
	}
	// The clock reference converts a CLOCK_MONOTONIC reading to wall time.
	// The margin is wide: this catches unit and sign errors, not jitter.
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	if h.MonoBase <= 0 || ts.Nano() < h.MonoBase {
		t.Fatalf("MonoBase %d, CLOCK_MONOTONIC now %d", h.MonoBase, ts.Nano())
	}
	if d := time.Until(h.Wall(uint64(ts.Nano()))).Abs(); d > time.Minute {
		t.Errorf("clock reference is off by %v", d)
	}
}

// The fixture is a version 1 recording as this package first wrote it;
// reading it proves later changes still read old recordings. Its bytes were
// checked by hand against the format in doc.go (see the hexdump in the
// commit that added it).
var fixtureRecords = [][]byte{
	{3, 0xaa, 0xbb, 0xcc},
	{},
	{12, 1, 2, 3, 4, 5, 6, 7, 8},
}

func TestFormatV1Fixture(t *testing.T) {
	path := filepath.Join("testdata", "format-v1.mmtrace")
	if *update {
		h := testHeader()
		h.Args = []string{"mmtrace", "-w", "x"}
		h.Options = nil
		var buf bytes.Buffer
		w, err := NewWriter(&buf, h)
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range fixtureRecords {
			if err := w.Write(rec); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got, r := readAll(t, data)
	if len(got) != len(fixtureRecords) {
		t.Fatalf("read %d records, want %d", len(got), len(fixtureRecords))
	}
	for i := range got {
		if !bytes.Equal(got[i], fixtureRecords[i]) {
			t.Errorf("record %d = %x, want %x", i, got[i], fixtureRecords[i])
		}
	}
	if w := r.Warnings(); len(w) != 0 {
		t.Errorf("warnings: %v", w)
	}
	want := Header{
		FormatVersion: 1, MmtraceVersion: "v0.0.0-test", KernelRelease: "6.18.0-test",
		Hostname: "testhost", BootID: "0b6a5b0e-5e4f-4d61-9f3a-3d0f3c1f2a11",
		MonoBase: 123456789, WallBase: 1700000000123456789,
		Args: []string{"mmtrace", "-w", "x"},
	}
	if h := r.Header(); !reflect.DeepEqual(h, want) {
		t.Errorf("header:\n got %+v\nwant %+v", h, want)
	}
}
