package main

// End-to-end tests of the command line as a strace user meets it: -u,
// the exit statuses of a command that cannot run, --check-status.

import (
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
)

// -u nobody: the command runs with nobody's uid, gid, groups, HOME, USER
// and LOGNAME, and is still traced from its exec's first mapping.
func TestRunAsUser(t *testing.T) {
	binaries(t)
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	res := run(t, nil, "--format", "json", "-u", "nobody", "--", "id", "-u")
	if res.code != 0 {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	if res.stdout != nobody.Uid+"\n" {
		t.Errorf("id -u printed %q, want nobody's uid %s", res.stdout, nobody.Uid)
	}
	rep := res.report(t, "id")
	if rep.FromProc || rep.Uncertain || rep.Ended != "exit" {
		t.Errorf("report from_proc %v uncertain %v ended %q, notes %q", rep.FromProc, rep.Uncertain, rep.Ended, rep.Notes)
	}
	// The exec record is the image's first, and its mappings are the ELF
	// loader's: the binary itself is in the layout, placed by exec.
	var execSeq float64 = -1
	for _, l := range res.lines {
		if l["type"] == "exec" && l["comm"] == "id" {
			execSeq = l["seq"].(float64)
		}
	}
	if execSeq < 0 {
		t.Fatalf("no exec line for id")
	}
	for _, l := range res.lines {
		if l["pid"] == float64(rep.PID) && l["type"] != "exec" && l["type"] != "report" && l["seq"].(float64) < execSeq {
			t.Errorf("a record of id's process before its exec: %v", l)
		}
	}
	found := false
	for _, m := range rep.VMAs {
		if strings.HasSuffix(m.Path, "/id") && m.Placement == "exec" {
			found = true
		}
	}
	if !found {
		t.Errorf("id's own mappings (placed by exec) are not in its layout: %+v", rep.VMAs)
	}

	// What else the user gets: groups, and the environment sudo -u sets.
	groups, err := nobody.GroupIds()
	if err != nil {
		t.Fatal(err)
	}
	res = run(t, nil, "-o", filepath.Join(t.TempDir(), "out.txt"), "-u", "nobody", "--", "sh", "-c", `echo "$(id -u) $(id -g) $(id -G) $HOME $USER $LOGNAME"`)
	want := strings.Join([]string{nobody.Uid, nobody.Gid, strings.Join(groups, " "), nobody.HomeDir, "nobody", "nobody"}, " ")
	if res.code != 0 || res.stdout != want+"\n" {
		t.Errorf("as nobody: exit %d, %q, want %q\n%s", res.code, res.stdout, want, res.stderr)
	}
}

// The command is looked up and executed as the user: one that only root
// can reach is refused as a shell would (126), after tracing started.
func TestRunAsUserCannotExecute(t *testing.T) {
	binaries(t)
	if _, err := user.Lookup("nobody"); err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	dir := t.TempDir() // mode 0700, root's
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	prog := filepath.Join(dir, "true")
	b, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(prog, b, 0o755); err != nil {
		t.Fatal(err)
	}
	res := run(t, nil, "-u", "nobody", "--", prog)
	if res.code != 126 || !strings.Contains(res.stderr, "mmtrace: cannot run "+prog+": permission denied") {
		t.Errorf("exit %d, stderr:\n%s", res.code, res.stderr)
	}
	if res = run(t, nil, "--", prog); res.code != 0 {
		t.Errorf("as root: exit %d\n%s", res.code, res.stderr)
	}
}

// A command that cannot be run: 127 when not found, 126 when it cannot
// be executed, as shells exit.
func TestCommandNotFoundStatus(t *testing.T) {
	binaries(t)
	plain := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(plain, []byte("data\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		cmd  string
		want int
	}{{"/nonexistent", 127}, {"no-such-command-anywhere", 127}, {plain, 126}} {
		res := run(t, nil, "--", c.cmd)
		if res.code != c.want || !strings.HasPrefix(lastLine(res.stderr), "mmtrace: cannot run "+c.cmd+": ") {
			t.Errorf("-- %s: exit %d, want %d; stderr:\n%s", c.cmd, res.code, c.want, res.stderr)
		}
	}
}

// --check's 3 and a command's own 3 look alike; --check-status tells
// them apart.
func TestCheckStatusFlag(t *testing.T) {
	_, dir := binaries(t)
	squeeze := []string{filepath.Join(dir, "hint_squeeze"), "/etc/passwd"}
	for _, c := range []struct {
		args []string
		want int
	}{
		{append([]string{"--check", "--"}, squeeze...), 3},
		{[]string{"--check", "--", "sh", "-c", "exit 3"}, 3},
		{append([]string{"--check-status", "99", "--"}, squeeze...), 99},
		{[]string{"--check-status", "99", "--", "sh", "-c", "exit 3"}, 3},
		{[]string{"--check", "--check-status", "99", "--", "true"}, 0},
	} {
		if res := run(t, nil, c.args...); res.code != c.want {
			t.Errorf("%s: exit %d, want %d\n%s", strings.Join(c.args, " "), res.code, c.want, res.stderr)
		}
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}
