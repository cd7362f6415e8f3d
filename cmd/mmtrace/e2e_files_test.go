package main

// End-to-end tests of the files mmtrace writes (root): under a simulated
// sudo they belong to the user who asked, who replays the recording
// without root; planted symlinks and hard links, an output that is an
// input or another output, and an output of the wrong kind are refused
// with exit 2 before anything is traced or run, leaving every file as it
// was; an unwritable path is found before the command runs.

import (
	"bytes"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/mmtrace/mmtrace/internal/exitstatus"
	"github.com/mmtrace/mmtrace/internal/record"
)

const (
	nobodyID   = 65534 // the user the sudo is simulated for
	strangerID = 54321 // a third user, who plants links
)

// filesScratch is a directory every user can search, holding a copy of
// the binary that every user can run (the build directory is root's).
func filesScratch(t *testing.T) (dir, bin string) {
	t.Helper()
	built, _ := binaries(t)
	dir, err := os.MkdirTemp("", "mmtrace-files")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(built)
	if err != nil {
		t.Fatal(err)
	}
	bin = filepath.Join(dir, "mmtrace")
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, bin
}

// mkdirOwned makes a directory with a mode in the kernel's bits (0o1777
// is sticky) and an owner.
func mkdirOwned(t *testing.T, path string, mode uint32, uid int) string {
	t.Helper()
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, uid, uid); err != nil {
		t.Fatal(err)
	}
	if err := unix.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

type filesRun struct {
	sudoUID int // simulate sudo from this user; 0: plain root
	asUID   int // run mmtrace itself as this user (setuid); 0: root
}

// run runs the copied binary and returns its status and output.
func (r filesRun) run(t *testing.T, bin string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SUDO_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if r.sudoUID != 0 {
		id := strconv.Itoa(r.sudoUID)
		cmd.Env = append(cmd.Env, "SUDO_UID="+id, "SUDO_GID="+id, "SUDO_USER=nobody")
	}
	if r.asUID != 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{
			Uid: uint32(r.asUID), Gid: uint32(r.asUID), Groups: []uint32{}}}
		cmd.Dir = filepath.Dir(bin)
	}
	return runCmd(t, cmd)
}

func ownerOf(t *testing.T, path string) (uid, gid uint32, perm os.FileMode) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return st.Uid, st.Gid, fi.Mode().Perm()
}

// keep remembers a file's content and mtime; the returned check fails
// the test if either changed.
func keep(t *testing.T, path string) func() {
	t.Helper()
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return func() {
		t.Helper()
		after, err := os.ReadFile(path)
		fi2, err2 := os.Stat(path)
		if err != nil || err2 != nil || !bytes.Equal(after, before) || !fi2.ModTime().Equal(fi.ModTime()) {
			t.Errorf("%s was touched: %q (%v) -> %q (%v, %v)", path, before, fi.ModTime(), after, fi2.ModTime(), err)
		}
	}
}

// markerCmd is a command that leaves a file behind if it runs.
func markerCmd(dir string) (marker string, cmd []string) {
	marker = filepath.Join(dir, "cmd-ran")
	return marker, []string{"--", "bash", "-c", "echo ran > " + marker}
}

// refusedBeforeRun checks a run that must stop before tracing: the
// status, one line on stderr, no tracing, and a command that never ran.
func refusedBeforeRun(t *testing.T, what string, code int, stderr, marker string, wantCode int, words ...string) {
	t.Helper()
	if code != wantCode {
		t.Errorf("%s: exit %d, want %d\n%s", what, code, wantCode, stderr)
	}
	if lines := strings.Split(strings.TrimSpace(stderr), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "mmtrace: ") {
		t.Errorf("%s: want one line on stderr, got:\n%s", what, stderr)
	}
	if strings.Contains(stderr, "panic") || strings.Contains(stderr, "tracing") {
		t.Errorf("%s: stderr:\n%s", what, stderr)
	}
	for _, w := range words {
		if !strings.Contains(stderr, w) {
			t.Errorf("%s: stderr does not say %q:\n%s", what, w, stderr)
		}
	}
	if marker != "" {
		if _, err := os.Stat(marker); err == nil {
			t.Errorf("%s: the command ran", what)
			os.Remove(marker)
		}
	}
}

// Under sudo, the recording, the output and the picture belong to the
// user who asked, mode 0600 (also a recording that replaced a root-owned
// one), and that user replays the recording without root. A file the user could not have created where it was asked for
// stays root's, and stderr says so once.
func TestFilesSudoOwnedByInvokingUser(t *testing.T) {
	scratch, bin := filesScratch(t)
	home := mkdirOwned(t, filepath.Join(scratch, "home"), 0o755, nobodyID)
	rootDir := mkdirOwned(t, filepath.Join(scratch, "root-only"), 0o755, 0)
	rec, out, svg := filepath.Join(home, "incident.mmt"), filepath.Join(home, "out.json"), filepath.Join(home, "pic.svg")
	rootSVG := filepath.Join(rootDir, "pic.svg")

	// A root-owned recording left by an earlier run becomes the user's
	// when replaced, as a new one would be.
	if err := os.WriteFile(rec, []byte("an older recording, root's"), 0o644); err != nil {
		t.Fatal(err)
	}
	sudo := filesRun{sudoUID: nobodyID}
	code, _, stderr := sudo.run(t, bin, "-w", rec, "--format", "json", "-o", out, "--svg", svg, "--", "true")
	if code != 0 {
		t.Fatalf("recording under sudo: exit %d\n%s", code, stderr)
	}
	if strings.Contains(stderr, "to root") {
		t.Errorf("a note about root's files, though the user could create them all:\n%s", stderr)
	}
	for _, p := range []string{rec, out, svg} {
		if uid, gid, perm := ownerOf(t, p); uid != nobodyID || gid != nobodyID || perm != 0o600 {
			t.Errorf("%s: owner %d:%d mode %v, want %d:%d 0600", p, uid, gid, perm, nobodyID, nobodyID)
		}
	}

	nobody := filesRun{asUID: nobodyID}
	replayed := filepath.Join(home, "replay.json")
	code, _, stderr = nobody.run(t, bin, "-r", rec, "--format", "json", "-o", replayed)
	if code != 0 {
		t.Fatalf("replay by the user, without root: exit %d\n%s", code, stderr)
	}
	lines, _ := parseOutput(t, readFile(t, replayed))
	reports := 0
	for _, l := range lines {
		if l["type"] == "report" {
			reports++
		}
	}
	if reports == 0 {
		t.Errorf("the replay reports nothing:\n%s", readFile(t, replayed))
	}
	if uid, _, _ := ownerOf(t, replayed); uid != nobodyID {
		t.Errorf("the replay's output belongs to uid %d", uid)
	}

	// The user could not have created the picture in root's directory.
	code, _, stderr = sudo.run(t, bin, "-w", rec, "--svg", rootSVG, "--", "true")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if n := strings.Count(stderr, rootSVG); n != 1 || !strings.Contains(stderr, "belongs to root") {
		t.Errorf("want one note that %s stays root's, got:\n%s", rootSVG, stderr)
	}
	if uid, _, perm := ownerOf(t, rootSVG); uid != 0 || perm != 0o600 {
		t.Errorf("%s: owner %d mode %v, want root's, 0600", rootSVG, uid, perm)
	}
	// The recording it replaced is still the user's.
	if uid, _, perm := ownerOf(t, rec); uid != nobodyID || perm != 0o600 {
		t.Errorf("%s: owner %d mode %v after being replaced", rec, uid, perm)
	}
}

// A symlink planted in a sticky world-writable directory by another user,
// and a hard link there to a root-owned file, are refused for every
// output, as plain root and under sudo, before the command runs; the
// target keeps its content and mtime. fs.protected_symlinks and
// protected_hardlinks may be off: mmtrace applies the rules itself.
func TestFilesPlantedLinksRefused(t *testing.T) {
	scratch, bin := filesScratch(t)
	tmp := mkdirOwned(t, filepath.Join(scratch, "tmp"), 0o1777, 0)
	important := filepath.Join(scratch, "important")
	if err := os.WriteFile(important, []byte("precious, root's\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	intact := keep(t, important)

	symlink := filepath.Join(tmp, "trace.sym")
	if err := os.Symlink(important, symlink); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(symlink, strangerID, strangerID); err != nil {
		t.Fatal(err)
	}
	hardlink := filepath.Join(tmp, "trace.hard")
	if err := os.Link(important, hardlink); err != nil {
		t.Fatal(err)
	}
	marker, cmd := markerCmd(scratch)
	for _, c := range []struct {
		path  string
		words []string
	}{
		{symlink, []string{"symbolic link", "uid 54321"}},
		{hardlink, []string{"hard link"}},
	} {
		for _, flag := range []string{"-o", "-w", "--svg"} {
			for _, who := range []filesRun{{}, {sudoUID: nobodyID}} {
				code, _, stderr := who.run(t, bin, append([]string{flag, c.path}, cmd...)...)
				refusedBeforeRun(t, flag+" "+c.path+" sudo="+strconv.Itoa(who.sudoUID), code, stderr, marker, exitstatus.Usage, c.words...)
			}
		}
	}
	intact()
}

// No output may be the recording being read, or another output: each
// pair is refused with exit 2, the recording stays intact, and a file
// the refused run had just created is gone again.
func TestFilesSameFileRefused(t *testing.T) {
	scratch, bin := filesScratch(t)
	rec := filepath.Join(scratch, "rec.mmt")
	f, err := os.Create(rec)
	if err != nil {
		t.Fatal(err)
	}
	w, err := record.NewWriter(f, record.NewHeader())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	alias := filepath.Join(scratch, "alias.mmt")
	if err := os.Symlink(rec, alias); err != nil {
		t.Fatal(err)
	}
	intact := keep(t, rec)
	root := filesRun{}
	for _, flag := range []string{"-o", "--svg"} {
		for _, out := range []string{rec, alias} {
			code, _, stderr := root.run(t, bin, "-r", rec, flag, out)
			refusedBeforeRun(t, "-r X "+flag+" "+out, code, stderr, "", exitstatus.Usage, "-r", "refusing to overwrite")
		}
	}
	intact()

	marker, cmd := markerCmd(scratch)
	for _, pair := range [][2]string{{"-w", "-o"}, {"-w", "--svg"}, {"-o", "--svg"}} {
		for _, existed := range []bool{false, true} {
			x := filepath.Join(scratch, "x")
			if existed {
				if err := os.WriteFile(x, []byte("an earlier file"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			what := pair[0] + " X " + pair[1] + " X, existed=" + strconv.FormatBool(existed)
			code, _, stderr := root.run(t, bin, append([]string{pair[0], x, pair[1], x}, cmd...)...)
			refusedBeforeRun(t, what, code, stderr, marker, exitstatus.Usage, "same file")
			b, err := os.ReadFile(x)
			switch {
			case existed && string(b) != "an earlier file":
				t.Errorf("%s: the file now holds %q (%v)", what, b, err)
			case !existed && err == nil:
				t.Errorf("%s: the refused run left the file it created", what)
			}
			os.Remove(x)
		}
	}
}

// Every output is opened before the command runs: an unwritable path is
// an error before anything happens, and -w refuses a directory, a device
// or a socket, while a FIFO is written to.
func TestFilesCheckedBeforeCmdRuns(t *testing.T) {
	scratch, bin := filesScratch(t)
	marker, cmd := markerCmd(scratch)
	root := filesRun{}
	missing := filepath.Join(scratch, "no-such-dir", "x")
	for _, flag := range []string{"--svg", "-o", "-w"} {
		code, _, stderr := root.run(t, bin, append([]string{flag, missing}, cmd...)...)
		refusedBeforeRun(t, flag+" in a missing directory", code, stderr, marker, exitstatus.Failure, flag, "no such file or directory")
	}
	// A directory the user cannot write: the path is what fails, before
	// anything else would (mmtrace runs as nobody here).
	rootDir := mkdirOwned(t, filepath.Join(scratch, "root-only"), 0o755, 0)
	nobody := filesRun{asUID: nobodyID}
	code, _, stderr := nobody.run(t, bin, append([]string{"--svg", filepath.Join(rootDir, "pic.svg")}, cmd...)...)
	refusedBeforeRun(t, "--svg in a directory of root's, as nobody", code, stderr, marker, exitstatus.Failure, "--svg", "permission denied")

	sock := filepath.Join(scratch, "sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, c := range []struct{ path, kind string }{
		{scratch, "a directory"}, {os.DevNull, "a device"}, {sock, "a socket"},
	} {
		code, _, stderr := root.run(t, bin, append([]string{"-w", c.path}, cmd...)...)
		refusedBeforeRun(t, "-w "+c.kind, code, stderr, marker, exitstatus.Usage, c.kind, "a regular file or a FIFO")
	}
	// --output /dev/null is fine (the benchmarks use it).
	code, _, stderr = root.run(t, bin, "--format", "json", "-o", os.DevNull, "--", "true")
	if code != 0 {
		t.Errorf("-o /dev/null: exit %d\n%s", code, stderr)
	}

	fifo := filepath.Join(scratch, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// A writer of our own until mmtrace has run, or the reader would see
	// the end of the FIFO before mmtrace opened it.
	hold, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(r)
		got <- b
	}()
	code, _, stderr = root.run(t, bin, "-w", fifo, "--", "true")
	hold.Close()
	if code != 0 {
		t.Fatalf("-w FIFO: exit %d\n%s", code, stderr)
	}
	rd, err := record.NewReader(bytes.NewReader(<-got))
	if err != nil {
		t.Fatalf("what came through the FIFO is not a recording: %v", err)
	}
	n := 0
	for {
		if _, err := rd.Next(); err != nil {
			break
		}
		n++
	}
	if n == 0 || len(rd.Warnings()) > 0 {
		t.Errorf("the FIFO carried %d records, warnings %v", n, rd.Warnings())
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
