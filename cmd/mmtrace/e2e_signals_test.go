package main

// End-to-end tests of issue 13's "never stuck" items: signals while
// mmtrace is blocked or busy, and --pid of a process with no address
// space. The time limits here are hang guards, not performance checks.

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"testing"
	"time"
)

// hangGuard is how long a mmtrace that should end may take before the
// test calls it stuck: generous, on a busy 2-CPU machine.
const hangGuard = 20 * time.Second

// runGuarded runs mmtrace with args like run, but kills it (and fails
// the test) if it has not ended within hangGuard.
func runGuarded(t *testing.T, args ...string) runResult {
	t.Helper()
	bin, _ := binaries(t)
	cmd := exec.Command(bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return waitGuarded(t, cmd, &stdout, &stderr)
}

// waitGuarded waits for a started mmtrace, killing it after hangGuard.
func waitGuarded(t *testing.T, cmd *exec.Cmd, stdout, stderr *bytes.Buffer) runResult {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(hangGuard):
		cmd.Process.Kill()
		<-done
		t.Fatalf("mmtrace %q still running after %v: stuck\nstderr:\n%s", cmd.Args[1:], hangGuard, stderr)
	}
	res := runResult{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		res.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run mmtrace: %v", err)
	}
	return res
}

// --pid of a kernel thread or a zombie: one sentence, exit 1, no
// made-up layout.
func TestE2EPIDWithoutAddressSpace(t *testing.T) {
	res := runGuarded(t, "--pid", "2")
	want := "mmtrace: pid 2 (kthreadd) is a kernel thread: it has no address space to trace\n"
	if res.code != 1 || res.stderr != want || res.stdout != "" {
		t.Errorf("--pid 2: exit %d, stderr %q, stdout %q; want exit 1 and %q", res.code, res.stderr, res.stdout, want)
	}
	pid := zombie(t)
	res = runGuarded(t, "--pid", fmt.Sprint(pid))
	want = fmt.Sprintf("mmtrace: pid %d (true) is a zombie: it has exited and has no address space to trace\n", pid)
	if res.code != 1 || res.stderr != want || res.stdout != "" {
		t.Errorf("--pid of a zombie: exit %d, stderr %q, stdout %q; want exit 1 and %q", res.code, res.stderr, res.stdout, want)
	}
}
