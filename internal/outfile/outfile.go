// Package outfile opens the files mmtrace writes (rendered output,
// recordings, pictures) for the user who asked for them, so that running
// as root, usually through sudo, can neither leave them out of that user's
// reach nor be turned against the machine by a planted link.
//
// A Set opens a run's files together, before anything else happens:
//
//   - A new file is created with O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600.
//     Under sudo (root, SUDO_UID set) it is handed to the invoking user and
//     group, unless that user could not have created it in its directory:
//     then it stays root's and the File says so (as for an existing
//     root-owned file the user could not have replaced).
//   - An existing path is opened without following it (O_PATH|O_NOFOLLOW)
//     and checked by fstat on that very object, then reopened for writing
//     through /proc/self/fd: nothing can be swapped in between the check
//     and the open. As root, a final symlink is followed only if root or
//     the invoking user owns it (the kernel's protected_symlinks rule,
//     made stricter and applied whatever the sysctl says), and a user's
//     link only to that user's file; a file with more than one hard link
//     is written only if the invoking user (not root) owns it; a file in a
//     sticky world-writable directory only if the invoking user or the
//     directory's owner owns it (protected_regular).
//   - No output may be an input or another output (same device and inode).
//   - Existing files are truncated only when every file of the Set passed
//     (Commit), so a refusal leaves every file as it was. Under sudo, an
//     existing file the invoking user could have removed and made again
//     becomes theirs then, as a new file would.
package outfile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// User is whom the files are written for.
type User struct {
	UID, GID int
	// Groups are the user's supplementary groups, for deciding whether
	// the user could have created a file in a directory.
	Groups []int
	// Sudo: the process runs as root on behalf of this user (SUDO_UID).
	Sudo bool
}

// Invoker is the user mmtrace works for: under sudo (effective uid 0 and
// SUDO_UID set to another user) the user who ran sudo, else the process's
// own effective user.
func Invoker() (User, error) {
	if os.Geteuid() != 0 {
		return User{UID: os.Geteuid(), GID: os.Getegid()}, nil
	}
	su := os.Getenv("SUDO_UID")
	if su == "" {
		return User{UID: 0, GID: os.Getegid()}, nil
	}
	uid, err := strconv.ParseUint(su, 10, 31)
	if err != nil {
		return User{}, fmt.Errorf("SUDO_UID=%q is not a user id", su)
	}
	if uid == 0 {
		return User{UID: 0, GID: os.Getegid()}, nil
	}
	u := User{UID: int(uid), GID: -1, Sudo: true}
	if sg := os.Getenv("SUDO_GID"); sg != "" {
		gid, err := strconv.ParseUint(sg, 10, 31)
		if err != nil {
			return User{}, fmt.Errorf("SUDO_GID=%q is not a group id", sg)
		}
		u.GID = int(gid)
	}
	// The supplementary groups, as far as the system says; without them
	// only the primary group counts.
	if pw, err := user.LookupId(su); err == nil {
		if u.GID < 0 {
			if g, err := strconv.Atoi(pw.Gid); err == nil {
				u.GID = g
			}
		}
		if ids, err := pw.GroupIds(); err == nil {
			for _, id := range ids {
				if g, err := strconv.Atoi(id); err == nil {
					u.Groups = append(u.Groups, g)
				}
			}
		}
	}
	return u, nil
}

func (u User) inGroup(gid int) bool {
	if gid == u.GID {
		return true
	}
	for _, g := range u.Groups {
		if g == gid {
			return true
		}
	}
	return false
}

// canCreateIn says whether the user could create a file in a directory
// with this status, by its permission bits (write and search).
func (u User) canCreateIn(dir *unix.Stat_t) bool {
	if u.UID == 0 {
		return true
	}
	const wx = 3
	switch {
	case int(dir.Uid) == u.UID:
		return dir.Mode>>6&wx == wx
	case u.inGroup(int(dir.Gid)):
		return dir.Mode>>3&wx == wx
	}
	return dir.Mode&wx == wx
}

// groupIn is the group a file of the user's in this directory gets: the
// user's, or -1 (the directory's, as the kernel gives it) in a setgid one.
func (u User) groupIn(dir *unix.Stat_t) int {
	if dir.Mode&unix.S_ISGID != 0 || u.GID < 0 {
		return -1
	}
	return u.GID
}

// Kind says what an existing path may be.
type Kind int

const (
	// Output (text, JSON, SVG): a regular file, a FIFO or a character
	// device (a terminal, /dev/null).
	Output Kind = iota
	// Recording: a regular file, made private (mode 0600) also when it
	// existed, or a FIFO.
	Recording
)

// Refusal is a path refused by one of the rules above, not by the system:
// the command line asked for something unsafe or self-destructive.
type Refusal struct{ msg string }

func (r *Refusal) Error() string { return r.msg }

func refuse(format string, a ...any) error { return &Refusal{fmt.Sprintf(format, a...)} }

// File is one opened output.
type File struct {
	*os.File
	Flag, Path string
	// Created: the file did not exist and was made by Open.
	Created bool
	// KeptRoot: root's although running for another user, who could not
	// have created it (or replaced it) in its directory.
	KeptRoot bool

	id      ident
	regular bool
	private bool
	// chown: an existing file to hand to the invoking user at Commit
	// (uid, gid; -1 keeps), or nil.
	chown *[2]int
	dirfd int // until Commit or Abort; -1 after
	base  string
}

type ident struct{ dev, ino uint64 }

func identOf(st *unix.Stat_t) ident { return ident{uint64(st.Dev), st.Ino} }

type named struct {
	flag, path string
	id         ident
}

// Set opens the files of one run.
type Set struct {
	user   User
	root   bool // effective uid 0: the rules against planted files apply
	inputs []named
	files  []*File
	// Waiting, if set, is called once per FIFO that has no reader yet,
	// before OpenContext waits for one.
	Waiting func(flag, path string)
}

// New returns a Set that writes files for u.
func New(u User) *Set { return &Set{user: u, root: os.Geteuid() == 0} }

// Input names a file the run reads (flag is how the command line named
// it), so that no output can be the same file. A path that cannot be
// looked at is left to the reader to complain about.
func (s *Set) Input(flag, path string) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err == nil {
		s.inputs = append(s.inputs, named{flag, path, identOf(&st)})
	}
}

// maxTries bounds the retries when the path changes between creating and
// opening (something else creates or removes it meanwhile).
const maxTries = 4

// Open opens path for writing as the output that flag names. Existing
// files are not truncated before Commit. Errors from the rules are
// *Refusal; others come from the system (a missing directory, EACCES).
func (s *Set) Open(flag, path string, kind Kind) (*File, error) {
	return s.OpenContext(context.Background(), flag, path, kind)
}

// OpenContext is Open, giving up when ctx ends while it waits for a
// FIFO's reader (the error then wraps context.Cause(ctx)).
func (s *Set) OpenContext(ctx context.Context, flag, path string, kind Kind) (*File, error) {
	f, err := s.open(ctx, flag, path, kind)
	if err != nil {
		return nil, err
	}
	s.files = append(s.files, f)
	return f, nil
}

func (s *Set) open(ctx context.Context, flag, path string, kind Kind) (*File, error) {
	if path == "" {
		return nil, refuse("%s needs a file name", flag)
	}
	dir, base := filepath.Split(path)
	if base == "" || base == "." || base == ".." {
		return nil, refuse("%s %s is a directory, not a file", flag, path)
	}
	if dir == "" {
		dir = "."
	}
	dirfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", flag, path, err)
	}
	var dst unix.Stat_t
	if err := unix.Fstat(dirfd, &dst); err != nil {
		unix.Close(dirfd)
		return nil, fmt.Errorf("%s %s: %w", flag, path, err)
	}
	f := &File{Flag: flag, Path: path, dirfd: dirfd, base: base, private: kind == Recording}
	for try := 0; ; try++ {
		if try == maxTries {
			err = refuse("%s %s keeps changing while it is being opened", flag, path)
			break
		}
		var again bool
		if again, err = s.create(f, &dst); err != nil || !again {
			break
		}
		if again, err = s.openExisting(ctx, f, kind, &dst); err != nil || !again {
			break
		}
	}
	if err != nil {
		f.remove()
		f.release()
		if f.File != nil {
			f.File.Close()
		}
		return nil, err
	}
	return f, nil
}

// create makes the file if nothing is at the path; again says something
// is (or was) there.
func (s *Set) create(f *File, dir *unix.Stat_t) (again bool, err error) {
	fd, err := unix.Openat(f.dirfd, f.base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if errors.Is(err, unix.EEXIST) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("%s %s: %w", f.Flag, f.Path, err)
	}
	f.File = os.NewFile(uintptr(fd), f.Path)
	f.Created = true
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return false, fmt.Errorf("%s %s: %w", f.Flag, f.Path, err)
	}
	f.id, f.regular = identOf(&st), true
	// Exactly 0600, whatever the umask took away.
	if err := unix.Fchmod(fd, 0o600); err != nil {
		return false, fmt.Errorf("%s %s: %w", f.Flag, f.Path, err)
	}
	if s.root && s.user.Sudo {
		if !s.user.canCreateIn(dir) {
			f.KeptRoot = true
			return false, nil
		}
		if err := unix.Fchown(fd, s.user.UID, s.user.groupIn(dir)); err != nil {
			return false, fmt.Errorf("%s %s: give it to uid %d: %w", f.Flag, f.Path, s.user.UID, err)
		}
	}
	return false, nil
}

// openExisting opens what is at the path, after checking it; again says
// it vanished meanwhile.
func (s *Set) openExisting(ctx context.Context, f *File, kind Kind, dir *unix.Stat_t) (again bool, err error) {
	pfd, err := unix.Openat(f.dirfd, f.base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("%s %s: %w", f.Flag, f.Path, err)
	}
	defer unix.Close(pfd)
	var st unix.Stat_t
	if err := unix.Fstat(pfd, &st); err != nil {
		return false, fmt.Errorf("%s %s: %w", f.Flag, f.Path, err)
	}
	target, tst := pfd, st
	linkOwner := -1
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		linkOwner = int(st.Uid)
		if s.root && linkOwner != 0 && linkOwner != s.user.UID {
			return false, refuse("%s %s is a symbolic link owned by uid %d, neither root nor the user mmtrace runs for (uid %d): "+
				"refusing to follow it", f.Flag, f.Path, linkOwner, s.user.UID)
		}
		tfd, err := unix.Openat(f.dirfd, f.base, unix.O_PATH|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) {
			return false, refuse("%s %s is a symbolic link to a file that does not exist: refusing to create a file through a link",
				f.Flag, f.Path)
		}
		if err != nil {
			return false, fmt.Errorf("%s %s: %w", f.Flag, f.Path, err)
		}
		defer unix.Close(tfd)
		// The link followed must be the link checked.
		var again unix.Stat_t
		if err := unix.Fstatat(f.dirfd, f.base, &again, unix.AT_SYMLINK_NOFOLLOW); err != nil || identOf(&again) != identOf(&st) {
			return true, nil
		}
		if err := unix.Fstat(tfd, &tst); err != nil {
			return false, fmt.Errorf("%s %s: %w", f.Flag, f.Path, err)
		}
		target = tfd
	}
	if err := s.check(f, kind, &tst, dir, linkOwner); err != nil {
		return false, err
	}
	// Reopen the very object checked: /proc/self/fd/N of an O_PATH
	// descriptor is that inode, whatever the path names now.
	flags := unix.O_WRONLY | unix.O_CLOEXEC | unix.O_NOCTTY
	var fd int
	if tst.Mode&unix.S_IFMT == unix.S_IFIFO {
		fd, err = s.openFIFO(ctx, f, "/proc/self/fd/"+strconv.Itoa(target), flags)
	} else {
		fd, err = unix.Open("/proc/self/fd/"+strconv.Itoa(target), flags, 0)
	}
	if err != nil {
		return false, fmt.Errorf("%s %s: %w", f.Flag, f.Path, err)
	}
	f.File = os.NewFile(uintptr(fd), f.Path)
	var ost unix.Stat_t
	if err := unix.Fstat(fd, &ost); err != nil {
		return false, fmt.Errorf("%s %s: %w", f.Flag, f.Path, err)
	}
	if identOf(&ost) != identOf(&tst) {
		return false, refuse("%s %s changed while it was being opened", f.Flag, f.Path)
	}
	f.id, f.regular = identOf(&tst), tst.Mode&unix.S_IFMT == unix.S_IFREG
	// An existing file the user could have removed and made again
	// (found directly in a directory they can write, and may delete
	// from) becomes theirs when it is replaced: an older root-owned
	// recording must not keep the replay from them.
	if s.root && s.user.Sudo && f.regular && linkOwner < 0 && int(tst.Uid) != s.user.UID &&
		s.user.canCreateIn(dir) && (dir.Mode&unix.S_ISVTX == 0 || int(dir.Uid) == s.user.UID) {
		f.chown = &[2]int{s.user.UID, s.user.groupIn(dir)}
	} else if s.root && s.user.Sudo && f.regular && tst.Uid == 0 {
		f.KeptRoot = true
	}
	return false, nil
}

// fifoPoll is how often openFIFO looks for a reader.
const fifoPoll = 20 * time.Millisecond

// openFIFO opens a FIFO for writing without blocking in the kernel: a
// blocking open waits for a reader where no signal can end the wait. It
// opens non-blocking, which fails with ENXIO while there is no reader,
// polls until there is one or ctx ends, then makes the descriptor
// blocking again.
func (s *Set) openFIFO(ctx context.Context, f *File, path string, flags int) (int, error) {
	for said := false; ; {
		fd, err := unix.Open(path, flags|unix.O_NONBLOCK, 0)
		if err == nil {
			if err := unix.SetNonblock(fd, false); err != nil {
				unix.Close(fd)
				return -1, err
			}
			return fd, nil
		}
		if !errors.Is(err, unix.ENXIO) {
			return -1, err
		}
		if !said && s.Waiting != nil {
			s.Waiting(f.Flag, f.Path)
		}
		said = true
		select {
		case <-ctx.Done():
			return -1, context.Cause(ctx)
		case <-time.After(fifoPoll):
		}
	}
}

// check applies the rules to an existing file (reached through a link
// that linkOwner owns, or directly: -1).
func (s *Set) check(f *File, kind Kind, st, dir *unix.Stat_t, linkOwner int) error {
	what := ""
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG, unix.S_IFIFO:
	case unix.S_IFCHR:
		if kind == Recording {
			what = "a device"
		}
	case unix.S_IFDIR:
		what = "a directory"
	case unix.S_IFBLK:
		what = "a device"
	case unix.S_IFSOCK:
		what = "a socket"
	default:
		what = "not a regular file"
	}
	if what != "" {
		ok := "output goes to a regular file, a FIFO or a character device"
		if kind == Recording {
			ok = "a recording goes to a regular file or a FIFO"
		}
		return refuse("%s %s is %s: %s", f.Flag, f.Path, what, ok)
	}
	id := identOf(st)
	// The same terminal or /dev/null twice is harmless; the same file
	// or FIFO twice destroys or garbles what is in it.
	if st.Mode&unix.S_IFMT != unix.S_IFCHR {
		for _, in := range s.inputs {
			if in.id == id {
				return refuse("%s %s is the file %s reads (%s): refusing to overwrite it", f.Flag, f.Path, in.flag, in.path)
			}
		}
		for _, o := range s.files {
			if o.id == id {
				return refuse("%s %s and %s %s are the same file: give each its own", o.Flag, o.Path, f.Flag, f.Path)
			}
		}
	}
	if !s.root {
		return nil
	}
	owner := int(st.Uid)
	if linkOwner > 0 && owner != linkOwner {
		return refuse("%s %s is a symbolic link of uid %d to a file of uid %d: refusing to write through it",
			f.Flag, f.Path, linkOwner, owner)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFREG && st.Nlink > 1 && (owner != s.user.UID || s.user.UID == 0) {
		return refuse("%s %s has %d hard links and belongs to uid %d: refusing to write through a hard link as root",
			f.Flag, f.Path, st.Nlink, owner)
	}
	if linkOwner < 0 && st.Mode&unix.S_IFMT != unix.S_IFCHR &&
		dir.Mode&unix.S_ISVTX != 0 && dir.Mode&0o002 != 0 &&
		owner != s.user.UID && owner != int(dir.Uid) {
		return refuse("%s %s belongs to uid %d in a world-writable sticky directory: refusing to write another user's file there",
			f.Flag, f.Path, owner)
	}
	return nil
}

// Commit truncates the existing regular files, makes existing recordings
// private (mode 0600: the command line in a header can carry secrets), and
// lets go of the directories. Call it once every file is open.
func (s *Set) Commit() error {
	for _, f := range s.files {
		if !f.Created && f.regular {
			if err := f.Truncate(0); err != nil {
				return fmt.Errorf("%s %s: %w", f.Flag, f.Path, err)
			}
			if f.chown != nil {
				if err := f.Chown(f.chown[0], f.chown[1]); err != nil {
					return fmt.Errorf("%s %s: give it to uid %d: %w", f.Flag, f.Path, f.chown[0], err)
				}
			}
			if f.private {
				if err := f.Chmod(0o600); err != nil {
					return fmt.Errorf("%s %s: make it private: %w", f.Flag, f.Path, err)
				}
			}
		}
		f.release()
	}
	return nil
}

// Abort closes every file and removes those Open created (if the path
// still names them), leaving the file system as it was.
func (s *Set) Abort() {
	for _, f := range s.files {
		f.remove()
		f.release()
		f.File.Close()
	}
	s.files = nil
}

// remove unlinks the file if Open created it and the path still names it.
func (f *File) remove() {
	if !f.Created || f.dirfd < 0 || f.id == (ident{}) {
		return
	}
	var st unix.Stat_t
	if unix.Fstatat(f.dirfd, f.base, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && identOf(&st) == f.id {
		_ = unix.Unlinkat(f.dirfd, f.base, 0)
	}
}

func (f *File) release() {
	if f.dirfd >= 0 {
		unix.Close(f.dirfd)
		f.dirfd = -1
	}
}

// KeptRoot lists the files left root's although running for another
// user, for one note.
func (s *Set) KeptRoot() []string {
	var paths []string
	for _, f := range s.files {
		if f.KeptRoot {
			paths = append(paths, f.Path)
		}
	}
	return paths
}

// Note is one sentence for stderr about the files kept root's, or "".
func (s *Set) Note() string {
	paths := s.KeptRoot()
	switch len(paths) {
	case 0:
		return ""
	case 1:
		return fmt.Sprintf("%s belongs to root: uid %d could not have created it there", paths[0], s.user.UID)
	}
	return fmt.Sprintf("%s belong to root: uid %d could not have created them there", strings.Join(paths, ", "), s.user.UID)
}
