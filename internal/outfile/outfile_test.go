package outfile

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/mmtrace/mmtrace/internal/kerneltest"
)

// Users the tests act for: nobody, and a uid no one has.
var (
	nobody   = User{UID: 65534, GID: 65534, Sudo: true}
	stranger = 54321
)

// requireRoot skips tests that need root to chown and to plant other
// users' files, except under CI, where they must run.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if kerneltest.InCI() {
		t.Fatal("needs root to create files of other users; CI=true, so this is a failure, not a skip")
	}
	t.Skip("needs root to create files of other users (run as root)")
}

// dirOf makes a directory with this mode (in the kernel's bits: 0o1777
// is sticky) and owner.
func dirOf(t *testing.T, mode uint32, uid, gid int) string {
	t.Helper()
	d := filepath.Join(t.TempDir(), "d")
	if err := os.Mkdir(d, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(d, uid, gid); err != nil {
		t.Fatal(err)
	}
	if err := unix.Chmod(d, mode); err != nil {
		t.Fatal(err)
	}
	return d
}

func statOf(t *testing.T, path string) *syscall.Stat_t {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t)
}

// openOne opens one file in a fresh Set and commits it.
func openOne(t *testing.T, u User, path string, kind Kind) (*File, *Set, error) {
	t.Helper()
	s := New(u)
	f, err := s.Open("-o", path, kind)
	if err != nil {
		return nil, s, err
	}
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, s, nil
}

func wantRefusal(t *testing.T, err error, words ...string) {
	t.Helper()
	var r *Refusal
	if !errors.As(err, &r) {
		t.Fatalf("got %v, want a refusal", err)
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") || msg != strings.ToLower(msg[:1])+msg[1:] {
		t.Errorf("refusal is not one lower-case sentence: %q", msg)
	}
	for _, w := range words {
		if !strings.Contains(msg, w) {
			t.Errorf("refusal %q does not say %q", msg, w)
		}
	}
}

// untouched remembers a file's content and times, and checks later that
// they did not change.
func untouched(t *testing.T, path string) func() {
	t.Helper()
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	st := statOf(t, path)
	return func() {
		t.Helper()
		after, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		st2 := statOf(t, path)
		if string(after) != string(before) || st2.Mtim != st.Mtim || st2.Size != st.Size {
			t.Errorf("%s changed: %q -> %q", path, before, after)
		}
	}
}

func TestNewFilePrivateAndOwnedByInvoker(t *testing.T) {
	requireRoot(t)
	old := unix.Umask(0o022)
	defer unix.Umask(old)
	d := dirOf(t, 0o755, nobody.UID, nobody.GID)
	for _, kind := range []Kind{Output, Recording} {
		path := filepath.Join(d, "out"+string(rune('0'+kind)))
		f, s, err := openOne(t, nobody, path, kind)
		if err != nil {
			t.Fatal(err)
		}
		if !f.Created || f.KeptRoot || s.Note() != "" {
			t.Errorf("created %v, kept root's %v, note %q", f.Created, f.KeptRoot, s.Note())
		}
		st := statOf(t, path)
		if st.Uid != uint32(nobody.UID) || st.Gid != uint32(nobody.GID) || st.Mode&0o7777 != 0o600 {
			t.Errorf("kind %d: owner %d:%d mode %o, want 65534:65534 0600", kind, st.Uid, st.Gid, st.Mode&0o7777)
		}
	}
}

// Not under sudo, root's files stay root's; and without root, files are
// the process's own (nothing to hand over).
func TestNewFileWithoutSudo(t *testing.T) {
	requireRoot(t)
	d := t.TempDir()
	path := filepath.Join(d, "out")
	if _, _, err := openOne(t, User{UID: 0, GID: 0}, path, Output); err != nil {
		t.Fatal(err)
	}
	if st := statOf(t, path); st.Uid != 0 || st.Mode&0o777 != 0o600 {
		t.Errorf("owner %d mode %o", st.Uid, st.Mode&0o777)
	}
}

// Under sudo, a file that was root's (an older recording) becomes the
// user's when replaced in a directory the user can write; elsewhere, or
// in a sticky directory of someone else, it keeps its owner.
func TestExistingFileHandedToUser(t *testing.T) {
	requireRoot(t)
	for _, c := range []struct {
		name     string
		mode     uint32
		dirOwner int
		wantUID  uint32
	}{
		{"user's dir", 0o755, nobody.UID, uint32(nobody.UID)},
		{"root's dir", 0o755, 0, 0},
		{"sticky world-writable dir", 0o1777, 0, 0},
	} {
		d := dirOf(t, c.mode, c.dirOwner, c.dirOwner)
		path := filepath.Join(d, "incident.mmt")
		if err := os.WriteFile(path, []byte("an older recording"), 0o600); err != nil {
			t.Fatal(err)
		}
		f, _, err := openOne(t, nobody, path, Recording)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if f.Created {
			t.Errorf("%s: an existing file counts as created", c.name)
		}
		if f.KeptRoot != (c.wantUID == 0) {
			t.Errorf("%s: kept root's %v, want %v", c.name, f.KeptRoot, c.wantUID == 0)
		}
		if st := statOf(t, path); st.Uid != c.wantUID || st.Size != 0 || st.Mode&0o777 != 0o600 {
			t.Errorf("%s: owner %d size %d mode %o, want owner %d, empty, 0600", c.name, st.Uid, st.Size, st.Mode&0o777, c.wantUID)
		}
	}
}

// Where the invoking user could not have created the file, it stays
// root's, and the note says so.
func TestNewFileKeptRootWhereUserCannotWrite(t *testing.T) {
	requireRoot(t)
	d := dirOf(t, 0o755, 0, 0)
	path := filepath.Join(d, "out.svg")
	f, s, err := openOne(t, nobody, path, Output)
	if err != nil {
		t.Fatal(err)
	}
	if !f.KeptRoot {
		t.Error("not marked as kept root's")
	}
	if st := statOf(t, path); st.Uid != 0 || st.Mode&0o777 != 0o600 {
		t.Errorf("owner %d mode %o, want root's 0600", st.Uid, st.Mode&0o777)
	}
	if n := s.Note(); !strings.Contains(n, path) || !strings.Contains(n, "uid 65534") {
		t.Errorf("note %q", n)
	}
}

// The user's groups count: a group-writable directory of one of them is
// fine; a setgid directory gives its group, as the kernel does.
func TestNewFileGroups(t *testing.T) {
	requireRoot(t)
	u := User{UID: stranger, GID: 4000, Groups: []int{4001}, Sudo: true}
	d := dirOf(t, 0o2770, 0, 4001)
	path := filepath.Join(d, "out")
	f, _, err := openOne(t, u, path, Output)
	if err != nil {
		t.Fatal(err)
	}
	if f.KeptRoot {
		t.Error("kept root's in a directory the user's group can write")
	}
	if st := statOf(t, path); st.Uid != uint32(stranger) || st.Gid != 4001 {
		t.Errorf("owner %d:%d, want %d:4001 (setgid directory)", st.Uid, st.Gid, stranger)
	}
}

// A planted link in a sticky, world-writable directory (like /tmp) is
// not followed, whatever fs.protected_symlinks says; the target keeps its
// content and mtime.
func TestPlantedSymlinkRefused(t *testing.T) {
	requireRoot(t)
	tmp := dirOf(t, 0o1777, 0, 0)
	target := filepath.Join(t.TempDir(), "important")
	if err := os.WriteFile(target, []byte("precious\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	same := untouched(t, target)
	link := filepath.Join(tmp, "trace.json")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(link, stranger, stranger); err != nil {
		t.Fatal(err)
	}
	for _, u := range []User{nobody, {UID: 0, GID: 0}} {
		_, _, err := openOne(t, u, link, Output)
		wantRefusal(t, err, link, "symbolic link", "uid 54321")
	}
	same()
}

// Links of root (/dev/stdout) and of the invoking user are followed; a
// user's link only to that user's files; a dangling link never creates.
func TestSymlinksFollowed(t *testing.T) {
	requireRoot(t)
	d := dirOf(t, 0o755, nobody.UID, nobody.GID)
	mine := filepath.Join(d, "mine")
	if err := os.WriteFile(mine, []byte("old content"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(mine, nobody.UID, nobody.GID); err != nil {
		t.Fatal(err)
	}
	rootFile := filepath.Join(d, "roots")
	if err := os.WriteFile(rootFile, []byte("root's"), 0o644); err != nil {
		t.Fatal(err)
	}
	same := untouched(t, rootFile)
	link := func(name, to string, uid int) string {
		p := filepath.Join(d, name)
		if err := os.Symlink(to, p); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(p, uid, uid); err != nil {
			t.Fatal(err)
		}
		return p
	}

	f, _, err := openOne(t, nobody, link("to-mine", mine, nobody.UID), Output)
	if err != nil {
		t.Fatal(err)
	}
	if f.Created {
		t.Error("a link to an existing file counts as created")
	}
	if b, _ := os.ReadFile(mine); len(b) != 0 {
		t.Errorf("not truncated: %q", b)
	}
	if _, _, err := openOne(t, nobody, link("root-link", "/dev/null", 0), Output); err != nil {
		t.Errorf("root's link to /dev/null: %v", err)
	}
	_, _, err = openOne(t, nobody, link("to-roots", rootFile, nobody.UID), Output)
	wantRefusal(t, err, "uid 65534", "uid 0")
	same()

	missing := filepath.Join(d, "missing")
	_, _, err = openOne(t, nobody, link("dangling", missing, nobody.UID), Output)
	wantRefusal(t, err, "does not exist")
	if _, err := os.Lstat(missing); err == nil {
		t.Error("a dangling link's target was created")
	}
}

// A hard link to a file of someone else (root here) is not written
// through, wherever it is.
func TestHardLinkRefused(t *testing.T) {
	requireRoot(t)
	base := t.TempDir()
	target := filepath.Join(base, "shadow")
	if err := os.WriteFile(target, []byte("root:secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	same := untouched(t, target)
	tmp := dirOf(t, 0o1777, 0, 0)
	link := filepath.Join(tmp, "trace.json")
	if err := os.Link(target, link); err != nil {
		t.Fatal(err)
	}
	for _, u := range []User{nobody, {UID: 0, GID: 0}} {
		_, _, err := openOne(t, u, link, Recording)
		wantRefusal(t, err, "hard link")
	}
	same()
}

// Another user's file in a sticky world-writable directory is not
// written to (it would hand them the trace); the invoking user's is.
func TestOtherUsersFileInStickyDirRefused(t *testing.T) {
	requireRoot(t)
	tmp := dirOf(t, 0o1777, 0, 0)
	theirs := filepath.Join(tmp, "theirs")
	if err := os.WriteFile(theirs, []byte("bait"), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(theirs, stranger, stranger); err != nil {
		t.Fatal(err)
	}
	same := untouched(t, theirs)
	_, _, err := openOne(t, nobody, theirs, Output)
	wantRefusal(t, err, "another user's file")
	same()

	mine := filepath.Join(tmp, "mine")
	if err := os.WriteFile(mine, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(mine, nobody.UID, nobody.GID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := openOne(t, nobody, mine, Output); err != nil {
		t.Error(err)
	}
}

// What an existing path may be, for each kind; no root needed.
func TestKinds(t *testing.T) {
	d := t.TempDir()
	self := User{UID: os.Geteuid(), GID: os.Getegid()}

	_, _, err := openOne(t, self, d, Output)
	wantRefusal(t, err, "is a directory")
	_, _, err = openOne(t, self, d+"/", Recording)
	wantRefusal(t, err, "is a directory")

	_, _, err = openOne(t, self, os.DevNull, Recording)
	wantRefusal(t, err, "is a device", "a regular file or a FIFO")
	if _, _, err := openOne(t, self, os.DevNull, Output); err != nil {
		t.Errorf("--output /dev/null: %v", err)
	}

	sock := filepath.Join(d, "sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, k := range []Kind{Output, Recording} {
		_, _, err = openOne(t, self, sock, k)
		wantRefusal(t, err, "is a socket")
	}

	// A FIFO is written to (a reader waits on it, so the open does not).
	fifo := filepath.Join(d, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	f, _, err := openOne(t, self, fifo, Recording)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("x")); err != nil {
		t.Error(err)
	}
	buf := make([]byte, 4)
	if n, _ := r.Read(buf); string(buf[:n]) != "x" {
		t.Errorf("read %q from the FIFO", buf[:n])
	}
}

// An existing file is truncated only at Commit, and a recording made
// private; a refusal after it leaves it whole, and removes what the Set
// created.
func TestCommitAndAbort(t *testing.T) {
	d := t.TempDir()
	self := User{UID: os.Geteuid(), GID: os.Getegid()}
	rec := filepath.Join(d, "rec")
	if err := os.WriteFile(rec, []byte("an older recording"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(rec, 0o644); err != nil {
		t.Fatal(err)
	}
	same := untouched(t, rec)
	s := New(self)
	newOut := filepath.Join(d, "new.json")
	if _, err := s.Open("--output", newOut, Output); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open("-w", rec, Recording); err != nil {
		t.Fatal(err)
	}
	_, err := s.Open("--svg", d, Output)
	wantRefusal(t, err, "--svg", "directory")
	s.Abort()
	same()
	if _, err := os.Lstat(newOut); err == nil {
		t.Error("Abort left the file it created")
	}

	s = New(self)
	f, err := s.Open("-w", rec, Recording)
	if err != nil {
		t.Fatal(err)
	}
	same()
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("new")); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if b, _ := os.ReadFile(rec); string(b) != "new" {
		t.Errorf("content %q, want %q", b, "new")
	}
	if st := statOf(t, rec); st.Mode&0o777 != 0o600 {
		t.Errorf("existing recording has mode %o, want 0600", st.Mode&0o777)
	}
}

// No output may be an input or another output: by device and inode for
// existing files (through links too), by path for new ones.
func TestSameFileRefused(t *testing.T) {
	d := t.TempDir()
	self := User{UID: os.Geteuid(), GID: os.Getegid()}
	rec := filepath.Join(d, "rec.mmt")
	if err := os.WriteFile(rec, []byte("a recording"), 0o600); err != nil {
		t.Fatal(err)
	}
	alias := filepath.Join(d, "alias")
	if err := os.Symlink("rec.mmt", alias); err != nil {
		t.Fatal(err)
	}
	same := untouched(t, rec)
	for _, out := range []string{rec, alias, d + "/./rec.mmt"} {
		s := New(self)
		s.Input("-r", rec)
		_, err := s.Open("--svg", out, Output)
		wantRefusal(t, err, "--svg", "-r", "refusing to overwrite")
		s.Abort()
	}
	same()

	for _, existed := range []bool{false, true} {
		out := filepath.Join(d, "out")
		if existed {
			if err := os.WriteFile(out, []byte("keep"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		s := New(self)
		if _, err := s.Open("-w", out, Recording); err != nil {
			t.Fatal(err)
		}
		_, err := s.Open("--output", filepath.Join(d, ".", "out"), Output)
		wantRefusal(t, err, "-w", "--output", "same file")
		s.Abort()
		b, err := os.ReadFile(out)
		switch {
		case existed && string(b) != "keep":
			t.Errorf("existing file changed: %q, %v", b, err)
		case !existed && err == nil:
			t.Error("Abort left the file it created")
		}
		os.Remove(out)
	}

	// The same terminal or /dev/null twice is fine.
	s := New(self)
	for _, flag := range []string{"--output", "--svg"} {
		if _, err := s.Open(flag, os.DevNull, Output); err != nil {
			t.Errorf("%s /dev/null: %v", flag, err)
		}
	}
	s.Abort()
}

func TestInvoker(t *testing.T) {
	requireRoot(t)
	t.Setenv("SUDO_UID", "65534")
	t.Setenv("SUDO_GID", "65534")
	u, err := Invoker()
	if err != nil || u.UID != 65534 || u.GID != 65534 || !u.Sudo {
		t.Errorf("under sudo: %+v, %v", u, err)
	}
	t.Setenv("SUDO_UID", "0")
	if u, err := Invoker(); err != nil || u.UID != 0 || u.Sudo {
		t.Errorf("sudo to root from root: %+v, %v", u, err)
	}
	os.Unsetenv("SUDO_UID")
	if u, err := Invoker(); err != nil || u.UID != 0 || u.Sudo {
		t.Errorf("not under sudo: %+v, %v", u, err)
	}
	for _, bad := range []string{"x", "-1", "99999999999"} {
		t.Setenv("SUDO_UID", bad)
		if _, err := Invoker(); err == nil || !strings.Contains(err.Error(), "SUDO_UID") {
			t.Errorf("SUDO_UID=%s: %v", bad, err)
		}
	}
}

// A missing directory is the system's error, not a refusal.
func TestMissingDirectory(t *testing.T) {
	_, _, err := openOne(t, User{UID: os.Geteuid()}, filepath.Join(t.TempDir(), "no", "such"), Output)
	var r *Refusal
	if err == nil || errors.As(err, &r) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("got %v, want a not-exist error", err)
	}
}
