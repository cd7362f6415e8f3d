package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// Run mode starts the command through a copy of mmtrace itself (the
// launcher) that waits on a pipe until tracing is attached and its pid is
// in the kernel filter, then execs the command. So the command's first
// exec, and everything after it, is seen.
const launcherEnv = "MMTRACE_LAUNCHER"

func isLauncher() bool { return os.Getenv(launcherEnv) == "1" }

// runLauncher is the launcher's whole life: wait for the go-ahead on fd 3,
// then become the command.
func runLauncher() {
	gate := os.NewFile(3, "gate")
	var b [1]byte
	if n, _ := gate.Read(b[:]); n != 1 {
		os.Exit(127) // mmtrace went away before tracing started
	}
	gate.Close()
	os.Unsetenv(launcherEnv)
	path, err := exec.LookPath(os.Args[1])
	if err != nil {
		fmt.Fprintf(os.Stderr, "mmtrace: %v\n", err)
		os.Exit(127)
	}
	err = syscall.Exec(path, os.Args[1:], os.Environ())
	fmt.Fprintf(os.Stderr, "mmtrace: exec %s: %v\n", path, err)
	os.Exit(126)
}

// launched is a command held by the launcher.
type launched struct {
	cmd  *exec.Cmd
	gate *os.File
	done chan struct{}
	code int
}

func launch(command []string) (*launched, error) {
	if _, err := exec.LookPath(command[0]); err != nil {
		return nil, fmt.Errorf("cannot run %s: %w", command[0], err)
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
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{r}
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("launch %s: %w", command[0], err)
	}
	r.Close()
	l := &launched{cmd: cmd, gate: w, done: make(chan struct{})}
	go l.wait()
	return l, nil
}

func (l *launched) pid() int { return l.cmd.Process.Pid }

// release lets the launcher exec the command.
func (l *launched) release() error {
	defer func() { l.gate.Close(); l.gate = nil }()
	if _, err := l.gate.Write([]byte{1}); err != nil {
		return fmt.Errorf("start %s: %w", l.cmd.Args[1], err)
	}
	return nil
}

// abandon ends a launcher that was never released (tracing failed).
func (l *launched) abandon() {
	if l.gate != nil {
		l.gate.Close() // the launcher reads EOF and exits 127
		l.gate = nil
		<-l.done
	}
}

func (l *launched) wait() {
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

// status is the command's exit status, shell style (128+N for signal N).
func (l *launched) status() int {
	<-l.done
	return l.code
}
