package main

// What exec ran: the execve events' filename and argv against what the
// program itself received (show_args writes its argv to $ARGS_OUT).

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// received reads the argv show_args wrote, NUL after each argument.
func received(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the fixture left no argv: %v", err)
	}
	return strings.Split(string(bytes.TrimSuffix(b, []byte{0})), "\x00")
}

// execves are the execve event lines, in order. Only the syscall path
// (the default) sees execve calls; the lock path (--lock-path) reports
// what exec ran on the exec line and in the report.
func (r runResult) execves() []map[string]any {
	var out []map[string]any
	for _, l := range r.lines {
		if l["type"] == "execve" {
			out = append(out, l)
		}
	}
	return out
}

func argvOf(l map[string]any) []string {
	var out []string
	for _, a := range l["argv"].([]any) {
		out = append(out, a.(string))
	}
	return out
}

// execveOf is the one execve line with that path and, if failed, a
// result that is an error.
func (r runResult) execveOf(t *testing.T, path string, failed bool) map[string]any {
	t.Helper()
	var found []map[string]any
	for _, l := range r.execves() {
		_, isErr := l["error"]
		if l["path"] == path && isErr == failed {
			found = append(found, l)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one execve of %s (failed %v), got %d in %v\nstderr:\n%s", path, failed, len(found), r.execves(), r.stderr)
	}
	return found[0]
}

// A process of each ABI execs show_args with arguments that test the
// copy: empty ones, spaces, one past a power of two in length.
func TestExecveArgvWhole(t *testing.T) {
	_, dir := binaries(t)
	for _, abi := range []string{"", "32"} {
		t.Run("show_args"+abi, func(t *testing.T) {
			need32(t, abi)
			prog := filepath.Join(dir, "show_args"+abi)
			out := filepath.Join(t.TempDir(), "argv")
			args := []string{prog, "", "b c", strings.Repeat("x", 257), "-", "last"}
			res := run(t, []string{"ARGS_OUT=" + out}, append([]string{"--format", "json", "--", prog, "exec"}, args...)...)
			if res.code != 0 {
				t.Fatalf("exit %d\n%s", res.code, res.stderr)
			}
			want := received(t, out)
			if !slices.Equal(want, args) {
				t.Fatalf("the fixture received %q, not %q", want, args)
			}
			ev := res.execveOf(t, prog, false)
			if got := argvOf(ev); !slices.Equal(got, want) {
				t.Errorf("execve argv %q, the program received %q", got, want)
			}
			if ev["abi"] != map[string]string{"": "x86_64", "32": "i386"}[abi] {
				t.Errorf("execve by a %s caller has abi %v", abi, ev["abi"])
			}
			if _, ok := ev["argv_truncated"]; ok {
				t.Errorf("whole argv marked truncated: %v", ev)
			}
		})
	}
}

// A path string on a page the child never touched cannot be read at
// syscall entry; the failed exec still names it, with its argv.
func TestFailedExecNamesPath(t *testing.T) {
	_, dir := binaries(t)
	for _, abi := range []string{"", "32"} {
		t.Run("show_args"+abi, func(t *testing.T) {
			need32(t, abi)
			res := run(t, nil, "--format", "json", "--", filepath.Join(dir, "show_args"+abi), "fail")
			if res.code != 0 {
				t.Fatalf("exit %d\n%s", res.code, res.stderr)
			}
			// The fixture's string (show_args.c): what execve was given.
			ev := res.execveOf(t, "/nonexistent/mmtrace-show-args", true)
			if ev["error"] != "ENOENT" || !slices.Equal(argvOf(ev), []string{"x"}) {
				t.Errorf("failed exec: error %v argv %q, want ENOENT [\"x\"]", ev["error"], argvOf(ev))
			}
		})
	}
}

// Command lines longer than the record are marked cut; the kept part is
// what the program received, from the start. 64 arguments fit exactly.
func TestExecveArgvTruncated(t *testing.T) {
	_, dir := binaries(t)
	prog := filepath.Join(dir, "show_args")
	many := func(n int) []string {
		a := []string{prog}
		for i := 1; i < n; i++ {
			a = append(a, fmt.Sprint(i))
		}
		return a
	}
	for _, c := range []struct {
		name string
		args []string
		cut  bool
	}{
		{"64 arguments", many(64), false},
		{"65 arguments", many(65), true},
		{"300 arguments", many(300), true},
		{"one argument of 5000 bytes", []string{prog, strings.Repeat("y", 5000)}, true},
		{"arguments of 8 KiB in all", append([]string{prog}, slices.Repeat([]string{strings.Repeat("z", 1000)}, 8)...), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "argv")
			res := run(t, []string{"ARGS_OUT=" + out}, append([]string{"--format", "json", "--", prog, "exec"}, c.args...)...)
			if res.code != 0 {
				t.Fatalf("exit %d\n%s", res.code, res.stderr)
			}
			want := received(t, out)
			ev := res.execveOf(t, prog, false)
			got := argvOf(ev)
			cut, _ := ev["argv_truncated"].(bool)
			if cut != c.cut {
				t.Errorf("argv_truncated %v, want %v (%d arguments kept of %d)", cut, c.cut, len(got), len(want))
			}
			if !c.cut && !slices.Equal(got, want) {
				t.Errorf("argv %q, the program received %q", got, want)
			}
			// The kept arguments are the first ones; the last kept may
			// itself be cut short.
			for i, a := range got {
				if i >= len(want) || (a != want[i] && !(i == len(got)-1 && cut && strings.HasPrefix(want[i], a))) {
					t.Fatalf("argument %d: %.40q, the program received %.40q", i, a, want[min(i, len(want)-1)])
				}
			}
		})
	}
}

// Each report names the command line that made its image, as the program
// received it, also when the caller was of the other ABI or not traced.
func TestReportNamesCommandLine(t *testing.T) {
	_, dir := binaries(t)
	for _, abi := range []string{"", "32"} {
		t.Run("show_args"+abi, func(t *testing.T) {
			need32(t, abi)
			prog := filepath.Join(dir, "show_args"+abi)
			out := filepath.Join(t.TempDir(), "argv")
			// Through sh, a 64-bit caller, and straight from the launcher.
			res := run(t, []string{"ARGS_OUT=" + out}, "--format", "json", "--",
				"sh", "-c", `exec "$0" "$@"`, prog, "a", "b c", "")
			if res.code != 0 {
				t.Fatalf("exit %d\n%s", res.code, res.stderr)
			}
			want := received(t, out)
			rep := res.report(t, "show_args"+abi)
			if !slices.Equal(rep.Argv, want) || rep.ArgvTruncated {
				t.Errorf("report argv %q (truncated %v), the program received %q", rep.Argv, rep.ArgvTruncated, want)
			}
			sh := res.report(t, "sh")
			if len(sh.Argv) != 7 || sh.Argv[0] != "sh" || sh.Argv[1] != "-c" {
				t.Errorf("sh's report argv %q, want sh -c ... with 7 arguments", sh.Argv)
			}
		})
	}
	// A command line longer than the record: cut, and marked.
	prog := filepath.Join(dir, "show_args")
	long := []string{prog}
	for range 20 {
		long = append(long, strings.Repeat("w", 300))
	}
	res := run(t, nil, append([]string{"--format", "json", "--", prog, "exec"}, long...)...)
	var found bool
	for _, rep := range res.reports {
		if rep.Comm == "show_args" && len(rep.Argv) > 0 && rep.Argv[0] == prog && len(rep.Argv) < len(long) {
			found = true
			if !rep.ArgvTruncated {
				t.Errorf("a cut command line (%d of %d arguments) is not marked", len(rep.Argv), len(long))
			}
		}
	}
	if !found {
		t.Errorf("no report of the long command line cut short")
	}
}
