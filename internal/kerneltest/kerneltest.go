// Package kerneltest holds what tests that need the real kernel share.
package kerneltest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"
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

// Zombie starts true(1) and lets it exit without reaping it; the test's
// cleanup reaps it.
func Zombie(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Wait() })
	pid := cmd.Process.Pid
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatal(err)
		}
		if i := bytes.LastIndexByte(b, ')'); i > 0 && bytes.HasPrefix(b[i+1:], []byte(" Z ")) {
			return pid
		}
		if time.Now().After(deadline) { // a hang guard, not a timing check
			t.Fatalf("pid %d never became a zombie: %s", pid, b)
		}
	}
}
