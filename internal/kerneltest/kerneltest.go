// Package kerneltest holds what tests that need the real kernel share.
package kerneltest

import (
	"os"
	"testing"
)

// InCI reports whether the tests run under CI (CI=true), where every
// kernel test must run: a skip there would hide a broken tracer.
func InCI() bool { return os.Getenv("CI") == "true" }

// RequireRoot skips t when the process cannot load BPF programs, with the
// reason, except under CI where that is a failure.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	const why = "needs root to load BPF programs (run `sudo make test`)"
	if InCI() {
		t.Fatal(why + "; CI=true, so this is a failure, not a skip")
	}
	t.Skip(why)
}
