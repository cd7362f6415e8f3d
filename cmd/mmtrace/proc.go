package main

import (
	"github.com/mmtrace/mmtrace/internal/events"
	"github.com/mmtrace/mmtrace/internal/layout"
	"github.com/mmtrace/mmtrace/internal/procfs"
)

// procImagesOption is the recording header option that holds the --pid
// processes' layouts as read from /proc (JSON []layout.ProcImage).
const procImagesOption = "proc_images"

// seed starts the model of a running process (--pid) from what /proc
// said about it.
func (s *session) seed(p layout.ProcImage) {
	s.tracker.SeedFromProc(p)
	if snap := s.tracker.Snapshot(p.PID); snap != nil {
		s.out.Snapshot(snap)
	}
}

// execVMAsFromProc stands in for the kernel's exec-time VMA snapshot on
// kernels without the VMA iterator: it reads the new image's maps from
// /proc as soon as the exec record arrives. By then the process may have
// mapped more (ld.so's libraries); those calls arrive as events after the
// exec and re-applying them to the snapshot is harmless. The report says
// that these facts came from /proc.
func execVMAsFromProc(execRaw []byte, pid uint32) [][]byte {
	vmas := procfs.ExecVMAs(pid)
	recs, encErr := events.EncodeProcVMAs(execRaw, vmas)
	if encErr != nil || len(vmas) == 0 {
		return [][]byte{execRaw} // gone already: the report will say the layout is uncertain
	}
	return recs
}
