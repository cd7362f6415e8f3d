package render

import (
	"fmt"
	"strconv"
	"strings"
)

// The JSON output's schema (--format json, README "JSON output"): one
// object a line, "type" first. These types define it; the renderer in
// json.go writes the same lines by appending bytes, because it runs for
// every record and encoding/json costs several times as much per line
// (BenchmarkJSONEventEncodingJSON). schema_test.go holds every line the
// renderer writes to these types, byte for byte.

// Hex is an address or a bit mask, written "0x..." in lower case.
type Hex uint64

func (h Hex) MarshalText() ([]byte, error) { return appendHex(nil, uint64(h)), nil }

// String writes h as the JSON does, for messages.
func (h Hex) String() string { return string(appendHex(nil, uint64(h))) }

func (h *Hex) UnmarshalText(b []byte) error {
	s, ok := strings.CutPrefix(string(b), "0x")
	if !ok {
		return fmt.Errorf("%q is not a 0x hex number", b)
	}
	v, err := strconv.ParseUint(s, 16, 64)
	*h = Hex(v)
	return err
}

// EventHeader opens every event line.
type EventHeader struct {
	Type   string `json:"type"`
	Seq    uint64 `json:"seq"`
	TimeNS uint64 `json:"time_ns"` // CLOCK_MONOTONIC
	PID    uint32 `json:"pid"`
	TID    uint32 `json:"tid"`
	Comm   string `json:"comm"`
	ABI    string `json:"abi"` // "x86_64" or "i386"
}

// ExecLine is a new program image, with the kernel's view of its mm.
type ExecLine struct {
	EventHeader
	Exe                  string   `json:"exe"`
	Argv                 []string `json:"argv"`
	ArgvTruncated        bool     `json:"argv_truncated,omitempty"`
	OldPID               uint32   `json:"old_pid"`
	PPID                 uint32   `json:"ppid"`
	ParentComm           string   `json:"parent_comm"`
	ParentABI            string   `json:"parent_abi"`
	Personality          Hex      `json:"personality"`
	TaskSize             Hex      `json:"task_size"`
	StartCode            Hex      `json:"start_code"`
	EndCode              Hex      `json:"end_code"`
	StartData            Hex      `json:"start_data"`
	EndData              Hex      `json:"end_data"`
	StartBrk             Hex      `json:"start_brk"`
	Brk                  Hex      `json:"brk"`
	StartStack           Hex      `json:"start_stack"`
	MmapBase             Hex      `json:"mmap_base"`
	MmapLegacyBase       Hex      `json:"mmap_legacy_base"`
	MmapCompatBase       Hex      `json:"mmap_compat_base"`
	MmapCompatLegacyBase Hex      `json:"mmap_compat_legacy_base"`
	RlimitStackCur       uint64   `json:"rlimit_stack_cur"`
	RlimitStackMax       uint64   `json:"rlimit_stack_max"`
	VMACount             uint32   `json:"vma_count"`
	VMAsKnown            bool     `json:"vmas_known"`
	Headroom             *uint64  `json:"headroom"` // null until the exec's VMA snapshot is complete
}

// VMALine is one mapping of an exec's VMA snapshot (-v only).
type VMALine struct {
	EventHeader
	Start    Hex    `json:"start"`
	End      Hex    `json:"end"`
	Prot     string `json:"prot"`
	FlagsRaw Hex    `json:"flags_raw"`
	Offset   uint64 `json:"offset"`
	Path     string `json:"path"`
	Index    uint32 `json:"index"`
	Total    uint32 `json:"total"`
}

// MmapLine is an mmap (or mmap2) call.
type MmapLine struct {
	EventHeader
	Addr        Hex    `json:"addr"`
	Len         uint64 `json:"len"`
	Prot        string `json:"prot"`
	ProtRaw     Hex    `json:"prot_raw"`
	Flags       string `json:"flags"`
	FlagsRaw    Hex    `json:"flags_raw"`
	FD          int64  `json:"fd"`
	Offset      uint64 `json:"offset"`
	Result      *Hex   `json:"result"` // null when the call failed
	Error       string `json:"error,omitempty"`
	Path        string `json:"path"`
	Placement   string `json:"placement"`
	Headroom    uint64 `json:"headroom"`
	NewSqueezer bool   `json:"new_squeezer"`
}

// MunmapLine is a munmap call.
type MunmapLine struct {
	EventHeader
	Addr     Hex    `json:"addr"`
	Len      uint64 `json:"len"`
	Result   int64  `json:"result"`
	Error    string `json:"error,omitempty"`
	Headroom uint64 `json:"headroom"`
}

// MremapLine is an mremap call.
type MremapLine struct {
	EventHeader
	Addr        Hex    `json:"addr"`
	OldLen      uint64 `json:"old_len"`
	NewLen      uint64 `json:"new_len"`
	Flags       string `json:"flags"`
	FlagsRaw    Hex    `json:"flags_raw"`
	NewAddr     Hex    `json:"new_addr"`
	Result      *Hex   `json:"result"`
	Error       string `json:"error,omitempty"`
	Placement   string `json:"placement"`
	Headroom    uint64 `json:"headroom"`
	NewSqueezer bool   `json:"new_squeezer"`
}

// MprotectLine is an mprotect (or pkey_mprotect) call.
type MprotectLine struct {
	EventHeader
	Addr    Hex    `json:"addr"`
	Len     uint64 `json:"len"`
	Prot    string `json:"prot"`
	ProtRaw Hex    `json:"prot_raw"`
	Result  int64  `json:"result"`
	Error   string `json:"error,omitempty"`
}

// BrkLine is a brk call; a failed one says what blocked it.
type BrkLine struct {
	EventHeader
	Requested Hex    `json:"requested"`
	Result    Hex    `json:"result"`
	Failed    bool   `json:"failed"`
	BlockedBy *Hex   `json:"blocked_by"`
	Cause     string `json:"cause,omitempty"` // failed calls only
	Headroom  uint64 `json:"headroom"`
}

// PersonalityLine is a personality call.
type PersonalityLine struct {
	EventHeader
	Persona      Hex    `json:"persona"`
	PersonaNames string `json:"persona_names"`
	Result       *Hex   `json:"result"`
	Error        string `json:"error,omitempty"`
}

// UnmodeledLine is a call that changes an address space in a way the
// model does not follow.
type UnmodeledLine struct {
	EventHeader
	Call   string `json:"call"`
	Arg0   Hex    `json:"arg0"`
	Arg1   Hex    `json:"arg1"`
	Arg2   Hex    `json:"arg2"`
	Result *Hex   `json:"result"`
	Error  string `json:"error,omitempty"`
}

// ExecveLine is an execve call as the caller made it.
type ExecveLine struct {
	EventHeader
	Path          string   `json:"path"`
	Argv          []string `json:"argv"`
	ArgvTruncated bool     `json:"argv_truncated,omitempty"`
	Result        int64    `json:"result"`
	Error         string   `json:"error,omitempty"`
}

// ForkLine is a new process.
type ForkLine struct {
	EventHeader
	Child uint32 `json:"child"`
}

// ExitLine is a process's end.
type ExitLine struct {
	EventHeader
	ExitCode int64 `json:"exit_code"`
}

// LostLine counts records the kernel dropped (pid 0: for no one process).
type LostLine struct {
	EventHeader
	Lost uint64 `json:"lost"`
}

// MappingJSON is a mapping named by a report (squeezer, bounded_by).
type MappingJSON struct {
	Start     Hex    `json:"start"`
	End       Hex    `json:"end"`
	Prot      string `json:"prot"`
	Path      string `json:"path"`
	Placement string `json:"placement"`
	Seq       uint64 `json:"seq"`
}

// SqueezerJSON is the first mapping that left the heap too little room.
type SqueezerJSON struct {
	MappingJSON
	Headroom uint64 `json:"headroom"`
}

// BrkFailureJSON is one failed brk of a report.
type BrkFailureJSON struct {
	Seq       uint64 `json:"seq"`
	Requested Hex    `json:"requested"`
	Result    Hex    `json:"result"`
	BlockedBy *Hex   `json:"blocked_by"`
	Cause     string `json:"cause"`
}

// VMAJSON is one range of a report's final layout.
type VMAJSON struct {
	Start     Hex    `json:"start"`
	End       Hex    `json:"end"`
	Prot      string `json:"prot"`
	Path      string `json:"path"`
	Placement string `json:"placement"`
}

// ReportLine is written when a traced process image ends.
type ReportLine struct {
	Type              string           `json:"type"` // "report"
	PID               uint32           `json:"pid"`
	Comm              string           `json:"comm"`
	Exe               string           `json:"exe"`
	Argv              []string         `json:"argv"`
	ArgvTruncated     bool             `json:"argv_truncated,omitempty"`
	ABI               string           `json:"abi"`
	PPID              uint32           `json:"ppid"`
	ParentComm        string           `json:"parent_comm"`
	ParentABI         string           `json:"parent_abi"`
	Personality       Hex              `json:"personality"`
	PersonalitySource string           `json:"personality_source"`
	Layout            string           `json:"layout"`
	LayoutReason      string           `json:"layout_reason"`
	MmapBase          Hex              `json:"mmap_base"`
	StartBrk          Hex              `json:"start_brk"`
	Brk               Hex              `json:"brk"`
	BrkHeadroom       uint64           `json:"brk_headroom"`
	BrkUsableHeadroom uint64           `json:"brk_usable_headroom"`
	Squeezer          *SqueezerJSON    `json:"squeezer"`
	BoundedBy         *MappingJSON     `json:"bounded_by"`
	BrkFailures       []BrkFailureJSON `json:"brk_failures"`
	VMAs              []VMAJSON        `json:"vmas"`
	LostEvents        uint64           `json:"lost_events"`
	Uncertain         bool             `json:"uncertain"`
	FromProc          bool             `json:"from_proc"`
	Forked            bool             `json:"forked"`
	Notes             []string         `json:"notes"`
	Ended             string           `json:"ended"` // "exit", "exec" or "stopped"
	ExecSeq           uint64           `json:"exec_seq"`
	EndSeq            uint64           `json:"end_seq"`
}

// FailingJSON is an image that fails --check, in the summary.
type FailingJSON struct {
	PID         uint32 `json:"pid"`
	Comm        string `json:"comm"`
	Exe         string `json:"exe"`
	ABI         string `json:"abi"`
	Layout      string `json:"layout"`
	Squeezed    bool   `json:"squeezed"`
	BrkHeadroom uint64 `json:"brk_headroom"`
	BrkFailures uint64 `json:"brk_failures"`
	Uncertain   bool   `json:"uncertain"`
}

// SummaryLine is the last line.
type SummaryLine struct {
	Type       string        `json:"type"` // "summary"
	Images     uint64        `json:"images"`
	Squeezed   uint64        `json:"squeezed"`
	BrkFailed  uint64        `json:"brk_failed"`
	LostEvents uint64        `json:"lost_events"`
	DurationNS int64         `json:"duration_ns"`
	Check      bool          `json:"check"`
	Failing    []FailingJSON `json:"failing"`
}

// Lines maps each line's "type" to a new value of its Go type.
var Lines = map[string]func() any{
	"exec":        func() any { return new(ExecLine) },
	"vma":         func() any { return new(VMALine) },
	"mmap":        func() any { return new(MmapLine) },
	"munmap":      func() any { return new(MunmapLine) },
	"mremap":      func() any { return new(MremapLine) },
	"mprotect":    func() any { return new(MprotectLine) },
	"brk":         func() any { return new(BrkLine) },
	"personality": func() any { return new(PersonalityLine) },
	"unmodeled":   func() any { return new(UnmodeledLine) },
	"execve":      func() any { return new(ExecveLine) },
	"fork":        func() any { return new(ForkLine) },
	"exit":        func() any { return new(ExitLine) },
	"lost":        func() any { return new(LostLine) },
	"report":      func() any { return new(ReportLine) },
	"summary":     func() any { return new(SummaryLine) },
}
