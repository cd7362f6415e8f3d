package pipeline

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/mmtrace/mmtrace/internal/layout"
	"github.com/mmtrace/mmtrace/internal/record"
)

// Facts are what the analysis must know about where the records come
// from. A recording keeps them in its header options, so that a replay
// starts from the facts the live run had.
type Facts struct {
	LegacyVALayout bool               // vm.legacy_va_layout was set
	ExecVMAs       bool               // the kernel walked each new image's VMAs (else /proc did)
	NoIA32         bool               // 32-bit syscalls were not traced
	LockPath       bool               // memory calls were seen at the mmap lock: no personality or execve calls
	MountNS        uint32             // mmtrace's mount namespace; 0: unknown
	ProcImages     []layout.ProcImage // the --pid processes as /proc showed them at the start
}

// The recording header options that hold the facts.
const (
	optLegacyVA   = "legacy_va_layout"
	optThreshold  = "squeeze_threshold" // for the reader; a replay takes its own
	optExecVMAs   = "exec_vmas"
	optIA32       = "ia32"
	optMountNS    = "mnt_ns"
	optLockPath   = "lock_path"
	optProcImages = "proc_images" // JSON []layout.ProcImage
)

// options writes the facts as recording header options.
func (f Facts) options(threshold uint64) (map[string]string, error) {
	o := map[string]string{
		optLegacyVA:  boolOption(f.LegacyVALayout),
		optThreshold: strconv.FormatUint(threshold, 10),
		optExecVMAs:  boolOption(f.ExecVMAs),
		optIA32:      boolOption(!f.NoIA32),
		optMountNS:   strconv.FormatUint(uint64(f.MountNS), 10),
		optLockPath:  boolOption(f.LockPath),
	}
	if len(f.ProcImages) > 0 {
		b, err := json.Marshal(f.ProcImages)
		if err != nil {
			return nil, fmt.Errorf("record the /proc layouts: %w", err)
		}
		o[optProcImages] = string(b)
	}
	return o, nil
}

// factsOf reads the facts back from a recording's header. A recording
// made before an option existed reads as the default.
func factsOf(h record.Header) (Facts, error) {
	o := h.Options
	f := Facts{
		LegacyVALayout: o[optLegacyVA] == "1",
		ExecVMAs:       o[optExecVMAs] != "0",
		NoIA32:         o[optIA32] == "0",
		LockPath:       o[optLockPath] == "1",
	}
	if ns, err := strconv.ParseUint(o[optMountNS], 10, 32); err == nil {
		f.MountNS = uint32(ns)
	}
	if v := o[optProcImages]; v != "" {
		if err := json.Unmarshal([]byte(v), &f.ProcImages); err != nil {
			return f, fmt.Errorf("the /proc layouts in its header: %w", err)
		}
	}
	return f, nil
}

func boolOption(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
