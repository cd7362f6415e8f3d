// Package launch runs run mode's command (mmtrace -- CMD) so that its
// first exec is traced: through a copy of mmtrace itself (the launcher)
// that waits on a pipe until tracing is attached and its pid is in the
// kernel's filter, then execs the command, as another user with -u.
package launch

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// launcherEnv marks the launcher's copy of mmtrace.
const launcherEnv = "MMTRACE_LAUNCHER"

// launcherUserEnv hands the launcher the -u credential (JSON). The
// launcher drops to it after the go-ahead and before the exec: it stays
// the same traced process, and the command's exec is traced from its
// first mapping. (Starting the launcher itself as the user would need
// the user to be able to execute mmtrace's own binary.)
const launcherUserEnv = "MMTRACE_LAUNCHER_USER"

// IsLauncher says whether this process is the launcher: main then calls
// RunLauncher before anything else.
func IsLauncher() bool { return os.Getenv(launcherEnv) == "1" }

// Credential is who -u runs the command as.
type Credential struct {
	Name   string   `json:"name"`
	UID    uint32   `json:"uid"`
	GID    uint32   `json:"gid"`
	Groups []uint32 `json:"groups"`
	Home   string   `json:"home,omitempty"`
}

// LookupCredential resolves -u USER: a name, or a uid. A uid with no
// passwd entry gets the same number as its gid and no groups.
func LookupCredential(name string) (*Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		if _, numErr := strconv.ParseUint(name, 10, 32); numErr != nil {
			return nil, fmt.Errorf("-u: there is no user %q on this system", name)
		}
		if u, err = user.LookupId(name); err != nil {
			n, _ := strconv.ParseUint(name, 10, 32)
			return &Credential{Name: name, UID: uint32(n), GID: uint32(n), Groups: []uint32{}}, nil
		}
	}
	c := &Credential{Name: u.Username, Home: u.HomeDir, Groups: []uint32{}}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("-u: user %q has a uid or gid that is not a number", name)
	}
	c.UID, c.GID = uint32(uid), uint32(gid)
	ids, err := u.GroupIds()
	if err != nil {
		return nil, fmt.Errorf("-u: read the groups of user %q: %v", name, err)
	}
	for _, id := range ids {
		if g, err := strconv.ParseUint(id, 10, 32); err == nil {
			c.Groups = append(c.Groups, uint32(g))
		}
	}
	return c, nil
}

// env is the environment the command gets as this user: mmtrace's own,
// with HOME, USER and LOGNAME set to the user's (as sudo -u sets them).
func (c *Credential) env(base []string) []string {
	env := append([]string(nil), base...)
	if c.Home != "" {
		env = append(env, "HOME="+c.Home)
	}
	return append(env, "USER="+c.Name, "LOGNAME="+c.Name)
}

// become makes the calling process (every thread) the user, groups first.
func (c *Credential) become() error {
	groups := make([]int, len(c.Groups))
	for i, g := range c.Groups {
		groups[i] = int(g)
	}
	if err := syscall.Setgroups(groups); err != nil {
		return fmt.Errorf("set groups: %w", err)
	}
	if err := syscall.Setgid(int(c.GID)); err != nil {
		return fmt.Errorf("set gid %d: %w", c.GID, err)
	}
	if err := syscall.Setuid(int(c.UID)); err != nil {
		return fmt.Errorf("set uid %d: %w", c.UID, err)
	}
	return nil
}

// RunLauncher is the launcher's whole life: wait for the go-ahead on fd 3,
// then become the command.
func RunLauncher() {
	gate := os.NewFile(3, "gate")
	var b [1]byte
	if n, _ := gate.Read(b[:]); n != 1 {
		os.Exit(127) // mmtrace went away before tracing started
	}
	gate.Close()
	os.Unsetenv(launcherEnv)
	if v, ok := os.LookupEnv(launcherUserEnv); ok {
		os.Unsetenv(launcherUserEnv)
		var c Credential
		if err := json.Unmarshal([]byte(v), &c); err != nil {
			fmt.Fprintf(os.Stderr, "mmtrace: -u: %v\n", err)
			os.Exit(notExecutable)
		}
		if err := c.become(); err != nil {
			fmt.Fprintf(os.Stderr, "mmtrace: cannot run %s as user %s: %v\n", os.Args[1], c.Name, err)
			os.Exit(notExecutable)
		}
	}
	// Looked up again as the user the command runs as.
	path, err := exec.LookPath(os.Args[1])
	if err == nil {
		err = syscall.Exec(path, os.Args[1:], os.Environ())
	}
	se := commandError(os.Args[1], err)
	fmt.Fprintf(os.Stderr, "mmtrace: %v\n", se)
	os.Exit(se.Status)
}

// Exit statuses of a command that cannot be run, as shells give them.
const (
	notExecutable = 126
	notFound      = 127
)

// Error is a command that cannot be run, with the exit status a shell
// gives for it.
type Error struct {
	Status int
	Err    error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// ExitStatus is the status mmtrace exits with.
func (e *Error) ExitStatus() int { return e.Status }

// commandError says why a command cannot be run, with the status a shell
// gives: 127 when it is not found, 126 when it cannot be executed.
func commandError(name string, err error) *Error {
	var errno syscall.Errno
	switch {
	case errors.Is(err, exec.ErrNotFound):
		return &Error{notFound, fmt.Errorf("cannot run %s: command not found", name)}
	case errors.Is(err, fs.ErrNotExist):
		return &Error{notFound, fmt.Errorf("cannot run %s: no such file or directory", name)}
	case errors.As(err, &errno):
		return &Error{notExecutable, fmt.Errorf("cannot run %s: %v", name, errno)}
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return &Error{notExecutable, fmt.Errorf("cannot run %s: %v", name, err)}
}

// Cmd is a command held by the launcher until Release.
type Cmd struct {
	cmd  *exec.Cmd
	gate *os.File
	done chan struct{}
	code int
}

// Start starts the launcher for command, to run as runAs if not nil.
func Start(command []string, runAs *Credential) (*Cmd, error) {
	if _, err := exec.LookPath(command[0]); err != nil {
		return nil, commandError(command[0], err)
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find mmtrace's own binary to launch %s: %w", command[0], err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("launch %s: %w", command[0], err)
	}
	cmd := exec.Command(self, command...)
	cmd.Env = append(os.Environ(), launcherEnv+"=1")
	if runAs != nil {
		b, err := json.Marshal(runAs)
		if err != nil {
			return nil, fmt.Errorf("launch %s: %w", command[0], err)
		}
		cmd.Env = append(runAs.env(cmd.Env), launcherUserEnv+"="+string(b))
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{r}
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("launch %s: %w", command[0], err)
	}
	r.Close()
	l := &Cmd{cmd: cmd, gate: w, done: make(chan struct{})}
	go l.wait()
	return l, nil
}

// PID is the launcher's pid, which the command keeps.
func (l *Cmd) PID() int { return l.cmd.Process.Pid }

// Release lets the launcher exec the command.
func (l *Cmd) Release() error {
	defer func() { l.gate.Close(); l.gate = nil }()
	if _, err := l.gate.Write([]byte{1}); err != nil {
		return fmt.Errorf("start %s: %w", l.cmd.Args[1], err)
	}
	return nil
}

// Abandon ends a launcher that was never released (tracing failed).
func (l *Cmd) Abandon() {
	if l.gate != nil {
		l.gate.Close() // the launcher reads EOF and exits 127
		l.gate = nil
		<-l.done
	}
}

// Done is closed when the command has ended.
func (l *Cmd) Done() <-chan struct{} { return l.done }

func (l *Cmd) wait() {
	err := l.cmd.Wait()
	var ee *exec.ExitError
	switch {
	case err == nil:
		l.code = 0
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			l.code = 128 + int(ws.Signal())
		} else {
			l.code = ee.ExitCode()
		}
	default:
		l.code = 1
	}
	close(l.done)
}

// Exited reports whether the command has ended, without waiting.
func (l *Cmd) Exited() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// Forward passes a signal mmtrace received on to the command, unless the
// terminal sent the command the same signal itself: a Ctrl-C (SIGINT,
// SIGQUIT) goes to the terminal's whole foreground process group, and
// twice in a row means "stop now" to many programs.
func (l *Cmd) Forward(sig syscall.Signal) {
	if (sig == syscall.SIGINT || sig == syscall.SIGQUIT) && l.inTerminalForeground() {
		return
	}
	_ = l.cmd.Process.Signal(sig)
}

// inTerminalForeground reports whether the command's process group is the
// foreground group of mmtrace's controlling terminal.
func (l *Cmd) inTerminalForeground() bool {
	tty, err := os.Open("/dev/tty")
	if err != nil {
		return false // no controlling terminal
	}
	defer tty.Close()
	fg, err := unix.IoctlGetInt(int(tty.Fd()), unix.TIOCGPGRP)
	if err != nil {
		return false
	}
	pg, err := unix.Getpgid(l.PID())
	return err == nil && pg == fg
}

// Status waits for the command's end: its exit status, shell style
// (128+N for signal N).
func (l *Cmd) Status() int {
	<-l.done
	return l.code
}
