package pipeline

import (
	"github.com/mmtrace/mmtrace/internal/events"
	"github.com/mmtrace/mmtrace/internal/layout"
)

// Filter picks processes out of a recording the way the kernel's filter
// picks them out of the machine: by pid, or by name at exec, plus their
// descendants. A nil Filter wants everything (a live run: the kernel has
// filtered already).
type Filter struct {
	comms map[string]bool
	pids  map[uint32]bool
}

// NewFilter picks by --comm and --pid; nil when neither is given.
func NewFilter(comms []string, pids []uint32) *Filter {
	if len(comms) == 0 && len(pids) == 0 {
		return nil
	}
	f := &Filter{comms: map[string]bool{}, pids: map[uint32]bool{}}
	for _, c := range comms {
		f.comms[c] = true
	}
	for _, p := range pids {
		f.pids[p] = true
	}
	return f
}

// wants says whether ev is shown, after following it: an exec under a
// picked name, or a fork of a picked process, picks the process.
func (f *Filter) wants(ev *events.Event) bool {
	if f == nil {
		return true
	}
	switch {
	case ev.Kind == events.KindExec && f.comms[ev.Exec.Comm]:
		f.pids[ev.PID] = true
	case ev.Kind == events.KindFork && f.pids[ev.PID]:
		f.pids[ev.Child] = true
	case ev.Kind == events.KindLost && ev.PID == 0:
		return true // no one process: every live image is affected
	}
	return f.pids[ev.PID]
}

// has says whether pid is picked so far.
func (f *Filter) has(pid uint32) bool { return f == nil || f.pids[pid] }

// seeds says whether a process read from /proc when the recording
// started is picked, by pid or by name, and picks it.
func (f *Filter) seeds(img layout.ProcImage) bool {
	if f == nil {
		return true
	}
	if f.pids[img.PID] || f.comms[img.Comm] {
		f.pids[img.PID] = true
		return true
	}
	return false
}
