package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mmtrace/mmtrace/internal/exitstatus"
	"github.com/mmtrace/mmtrace/internal/kerneltest"
	"github.com/mmtrace/mmtrace/internal/loader"
)

// Mistakes on the command line: one sentence, a pointer to --help, exit 2.
func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--format", "xml"},
		{"--squeeze-threshold", "lots"},
		{"--squeeze-threshold", "12 parsecs"},
		{"--comm", ""},
		{"--comm", "a-name-longer-than-15"},
		{"--pid", "0"},
		{"--pid", "abc"},
		{"--ring-size", "1000"},
		{"--backups", "many"},
		{"--backups", "-1"},
		{"--backups", "9"},
		{"--color", "purple"},
		{"--no-such-flag"},
		{"stray"},
		{"--"},
		{"-r", "x.mmt", "-w", "y.mmt"},
		{"-r", "x.mmt", "--", "true"},
		{"--pid", "1", "--", "true"},
		{"-p", "1", "--", "true"},
		{"--ring-size", "4GiB"},
		{"--ring-size", "4294967296"},
		{"--ring-size", "8589934592"},
		{"--ring-size", "3M"},
		{"--ring-size", "8KiB"}, // an exec record and its execve would not fit
		{"--ring-size", "lots"},
		{"--squeeze-threshold", "99999999999999999999"},
		{"--squeeze-threshold", "20000000T"},
		{"--squeeze-threshold", "1e30"},
		{"--check-status", "0"},
		{"--check-status", "256"},
		{"--btf", "/dev/zero"},
		{"--btf", "/"},
		{"--btf", "/nonexistent/vmlinux"},
		{"-u", "nobody"},
		{"-u", "no-such-user-here", "--", "true"},
		{"--probe-kernel", "--", "true"},
		{"--probe-kernel", "-r", "x.mmt"},
	} {
		var stdout, stderr bytes.Buffer
		code := mainStatus(args, &stdout, &stderr)
		if code != exitstatus.Usage {
			t.Errorf("%q: exit %d, want %d", args, code, exitstatus.Usage)
		}
		msg := stderr.String()
		if !strings.HasPrefix(msg, "mmtrace: ") || !strings.Contains(msg, "mmtrace --help") || strings.Contains(msg, "panic") {
			t.Errorf("%q: stderr %q", args, msg)
		}
		if stdout.Len() != 0 {
			t.Errorf("%q: wrote to stdout: %q", args, stdout.String())
		}
	}
}

// --help teaches the three uses and lists every flag with its default.
func TestHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := mainStatus([]string{"--help"}, &stdout, &stderr); code != exitstatus.OK {
		t.Fatalf("exit %d", code)
	}
	help := stderr.String()
	for _, want := range []string{
		"sudo mmtrace --comm bash", "-w incident.mmt", "mmtrace -r incident.mmt", "--check",
		"--squeeze-threshold SIZE", `(default "64MiB")`, `(default "text")`, "--pid PID", "--svg FILE",
	} {
		if !strings.Contains(help, want) {
			t.Errorf("--help lacks %q", want)
		}
	}
	if strings.Contains(help, "no-exec-vmas") {
		t.Errorf("--help shows the hidden testing flag")
	}
}

// Replay errors are a sentence and exit 1, without root.
func TestReplayMissingFile(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := mainStatus([]string{"-r", "/nonexistent/trace.mmt"}, &stdout, &stderr)
	if code != exitstatus.Failure || !strings.Contains(stderr.String(), "/nonexistent/trace.mmt") {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}

// The sentences for sizes and files say what is wrong, not what broke.
func TestUsageSentences(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--ring-size", "4GiB"}, "at most 2 GiB"},
		{[]string{"--squeeze-threshold", "99999999999999999999"}, "too large"},
		{[]string{"--btf", "/dev/zero"}, "not a regular file (a character device)"},
		{[]string{"-u", "nobody"}, "-u runs the command after --"},
		{[]string{"-u", "no-such-user-here", "--", "true"}, `no user "no-such-user-here"`},
		{[]string{"--check-status", "0"}, "from 1 to 255"},
	} {
		var stdout, stderr bytes.Buffer
		mainStatus(c.args, &stdout, &stderr)
		if first := strings.SplitN(stderr.String(), "\n", 2)[0]; !strings.Contains(first, c.want) {
			t.Errorf("%q: stderr %q, want %q in its first line", c.args, stderr.String(), c.want)
		}
	}
}

// A BTF file larger than any kernel's is refused before it is read.
func TestBTFTooLarge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "huge.btf")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(300 << 20); err != nil { // sparse
		t.Fatal(err)
	}
	f.Close()
	var stdout, stderr bytes.Buffer
	if code := mainStatus([]string{"--btf", path}, &stdout, &stderr); code != exitstatus.Usage ||
		!strings.Contains(stderr.String(), "300 MiB") {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}

// Flags that take sizes and short forms parse to what they say.
func TestParseFlags(t *testing.T) {
	opts, err := parseArgs([]string{"-p", "12", "-p", "34", "--ring-size", "64MiB", "--check-status", "99"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(opts.pids, []uint{12, 34}) || opts.ringSize != 64<<20 || !opts.check || opts.checkStatus != 99 {
		t.Errorf("pids %v ring %d check %v status %d", opts.pids, opts.ringSize, opts.check, opts.checkStatus)
	}
	opts, err = parseArgs(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if opts.ringSize != loader.DefaultRingSize || opts.check || opts.checkStatus != exitstatus.Squeezed {
		t.Errorf("defaults: ring %d check %v status %d", opts.ringSize, opts.check, opts.checkStatus)
	}
	var stderr bytes.Buffer
	if opts, err = parseArgs([]string{"--ring-size", "2G"}, &stderr); err != nil || opts.ringSize != 1<<31 ||
		!strings.Contains(stderr.String(), "warning: --ring-size 2G locks 2048 MiB") {
		t.Errorf("--ring-size 2G: %v, stderr %q", err, stderr.String())
	}
	opts, err = parseArgs([]string{"-u", "nobody", "--", "id", "-u"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody here")
	}
	if strconv.FormatUint(uint64(opts.runAs.UID), 10) != nobody.Uid || strconv.FormatUint(uint64(opts.runAs.GID), 10) != nobody.Gid ||
		opts.runAs.Name != "nobody" {
		t.Errorf("-u nobody: %+v, passwd says %+v", opts.runAs, nobody)
	}
	opts, err = parseArgs([]string{"-u", "4000000", "--", "id"}, io.Discard)
	if err != nil || opts.runAs.UID != 4000000 || opts.runAs.GID != 4000000 {
		t.Errorf("-u 4000000: %+v, %v", opts.runAs, err)
	}
}

// A command that cannot be run exits as a shell's would: 127 when it is
// not found, 126 when it is not executable.
func TestCommandNotRunnable(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, []byte("not a program"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		cmd  string
		code int
		want string
	}{
		{"/nonexistent", 127, "no such file or directory"},
		{"no-such-command-anywhere", 127, "command not found"},
		{plain, 126, "permission denied"},
		{dir, 126, "is a directory"},
	} {
		var stdout, stderr bytes.Buffer
		code := mainStatus([]string{"--", c.cmd}, &stdout, &stderr)
		if code != c.code || !strings.Contains(stderr.String(), "mmtrace: cannot run "+c.cmd+": "+c.want+"\n") {
			t.Errorf("-- %s: exit %d, stderr %q; want %d and %q", c.cmd, code, stderr.String(), c.code, c.want)
		}
	}
}

// --version prints to stdout (internal/version tests what it says).
func TestVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := mainStatus([]string{"--version"}, &stdout, &stderr); code != exitstatus.OK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.HasPrefix(stdout.String(), "mmtrace ") || !strings.Contains(stdout.String(), runtime.Version()) || stderr.Len() != 0 {
		t.Errorf("--version printed %q, stderr %q", stdout.String(), stderr.String())
	}
}

// --probe-kernel: a report on stdout, exit 0 where mmtrace can trace and
// 1 where it cannot (here: BTF that is no BTF); one JSON line with
// --format json.
func TestProbeKernel(t *testing.T) {
	kerneltest.RequireRoot(t)
	var stdout, stderr bytes.Buffer
	if code := mainStatus([]string{"--probe-kernel"}, &stdout, &stderr); code != exitstatus.OK {
		t.Fatalf("exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	for _, want := range []string{"mmtrace can trace here", "tracepoint sched:sched_process_exec", "BPF ring buffer",
		"kfunc bpf_iter_task_vma_new", "32-bit programs", "preemption inside programs", "path mmtrace takes here",
		"backup programs", "what reports will call uncertain"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("--probe-kernel lacks %q:\n%s", want, stdout.String())
		}
	}
	stdout.Reset()
	if code := mainStatus([]string{"--probe-kernel", "--format", "json"}, &stdout, &stderr); code != exitstatus.OK {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	var r struct {
		Type     string         `json:"type"`
		CanTrace bool           `json:"can_trace"`
		Checks   []loader.Check `json:"checks"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil || r.Type != "kernel" || !r.CanTrace || len(r.Checks) == 0 ||
		!strings.HasPrefix(stdout.String(), `{"type":"kernel"`) || strings.Count(stdout.String(), "\n") != 1 {
		t.Errorf("JSON %v: %s", err, stdout.String())
	}

	empty := filepath.Join(t.TempDir(), "empty.btf")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	stderr.Reset()
	if code := mainStatus([]string{"--probe-kernel", "--btf", empty}, &stdout, &stderr); code != exitstatus.Failure ||
		!strings.Contains(stdout.String(), "mmtrace cannot trace here") ||
		!strings.HasPrefix(stderr.String(), "mmtrace: cannot trace on this kernel: ") {
		t.Errorf("unusable BTF: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
}
