package outputs

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mmtrace/mmtrace/internal/exitstatus"
)

// A run that goes ahead writes its files; one that never committed
// leaves no file it created behind.
func TestCommitOrAbort(t *testing.T) {
	for _, commit := range []bool{true, false} {
		dir := t.TempDir()
		p := Paths{Output: filepath.Join(dir, "out.txt"), Write: filepath.Join(dir, "rec.mmt")}
		var stdout, stderr bytes.Buffer
		o, err := Open(context.Background(), p, &stdout, &stderr)
		if err != nil {
			t.Fatal(err)
		}
		if o.Out == &stdout || o.Record() == nil || o.SVG() != nil {
			t.Fatalf("--output not the output (%T), or -w missing, or --svg present (%v)", o.Out, o.SVG())
		}
		if commit {
			if err := o.Commit(); err != nil {
				t.Fatal(err)
			}
			if _, err := o.Out.Write([]byte("report\n")); err != nil {
				t.Fatal(err)
			}
		}
		var cerr error
		o.Close(&cerr)
		if cerr != nil {
			t.Fatal(cerr)
		}
		b, err := os.ReadFile(p.Output)
		switch {
		case commit && (err != nil || string(b) != "report\n"):
			t.Errorf("committed: %q, %v", b, err)
		case !commit && !errors.Is(err, os.ErrNotExist):
			t.Errorf("never committed, yet %s is there (%v)", p.Output, err)
		}
	}
}

// A path a rule refuses is one sentence on stderr and exit status 2,
// and stdout stays the output when no --output is given.
func TestRefused(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	_, err := Open(context.Background(), Paths{SVG: dir}, &stdout, &stderr)
	if code, print := exitstatus.Of(err); code != exitstatus.Usage || print {
		t.Errorf("a directory as --svg: %v (exit %d, printed again %v)", err, code, print)
	}
	if !strings.HasPrefix(stderr.String(), "mmtrace: --svg "+dir) || strings.Count(stderr.String(), "\n") != 1 {
		t.Errorf("stderr %q", stderr.String())
	}
	o, err := Open(context.Background(), Paths{}, &stdout, &stderr)
	if err != nil || o.Out != &stdout || o.Record() != nil || o.Width() != 0 {
		t.Fatalf("no files: %v, out %T", err, o.Out)
	}
	if !o.Color("always") || o.Color("never") || o.Color("auto") {
		t.Error("--color: always colours, never and a buffer do not")
	}
}
