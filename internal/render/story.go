package render

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/mmtrace/mmtrace/internal/layout"
)

// maxStoryFailures is how many failed brk calls the story names one by one.
const maxStoryFailures = 3

// Story tells the life of one image in a few sentences: who exec'd it,
// which layout it got and why, when and by what its brk area was squeezed,
// which brk calls failed, and how it ended.
func Story(r *layout.Report) []string {
	if r == nil {
		return nil
	}
	var s []string
	s = append(s, storyWho(r))
	s = append(s, storyLayout(r))
	s = append(s, storySqueeze(r)...)
	if f := storyFailures(r); f != "" {
		s = append(s, f)
	}
	if r.Uncertain {
		if r.LostEvents > 0 {
			s = append(s, fmt.Sprintf("%d events were lost while it ran, so this account may miss mappings: treat it as uncertain.", r.LostEvents))
		} else {
			s = append(s, "Its layout at exec was seen only in part, so this account may miss mappings: treat it as uncertain.")
		}
	}
	s = append(s, storyEnd(r))
	for i := range s {
		s[i] = printable(s[i])
	}
	return s
}

func storyWho(r *layout.Report) string {
	var b strings.Builder
	name := nameOf(r)
	if r.FromProc {
		fmt.Fprintf(&b, "%s (pid %d, %s) was already running when mmtrace started; its layout was read from /proc", name, r.PID, r.ABI)
	} else if r.Forked {
		fmt.Fprintf(&b, "%s (pid %d) was forked at seq %d with a copy of its parent's %s image of %s",
			name, r.PID, r.ExecSeq, r.ABI, orUnknown(r.Exe))
	} else {
		fmt.Fprintf(&b, "%s (pid %d) exec'd %s as an %s image", name, r.PID, orUnknown(r.Exe), r.ABI)
		if r.ExecSeq != 0 {
			fmt.Fprintf(&b, " at seq %d", r.ExecSeq)
		}
	}
	if r.PPID != 0 {
		fmt.Fprintf(&b, "; its parent was pid %d", r.PPID)
		if r.ParentComm != "" {
			fmt.Fprintf(&b, " %s", r.ParentComm)
		}
		fmt.Fprintf(&b, " (%s)", r.ParentABI)
	}
	b.WriteString(".")
	return b.String()
}

func storyLayout(r *layout.Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "It got the %s layout", orUnknown(r.Layout))
	if r.LayoutReason != "" {
		fmt.Fprintf(&b, " (%s)", r.LayoutReason)
	}
	switch r.Layout {
	case "flexible":
		fmt.Fprintf(&b, ", so its mmap area grows down from %s", hex(r.MmapBase))
	case "legacy":
		fmt.Fprintf(&b, ", so its mmap area grows up from %s", hex(r.MmapBase))
	default:
		fmt.Fprintf(&b, ", mmap base %s", hex(r.MmapBase))
	}
	fmt.Fprintf(&b, "; personality %s (%s)", hex(uint64(r.Personality)), personalityNames(r.Personality))
	if src := personalitySource(r); src != "" {
		fmt.Fprintf(&b, ", %s", src)
	}
	b.WriteString(".")
	return b.String()
}

func storySqueeze(r *layout.Report) []string {
	heap := fmt.Sprintf("Its heap runs from %s to brk %s (%s)", hex(r.StartBrk), hex(r.Brk), Size(r.Brk-min(r.StartBrk, r.Brk)))
	if r.Squeezer == nil {
		s := heap + fmt.Sprintf(" and was never squeezed: %s of headroom", Size(r.BrkHeadroom))
		if r.BoundedBy != nil {
			s += ", up to " + mappingPhrase(r.BoundedBy)
		} else {
			s += ", up to the mmap base"
		}
		return []string{s + "."}
	}
	sq := r.Squeezer
	where := "directly on the break, leaving no headroom"
	if sq.Headroom > 0 {
		where = "only " + Size(sq.Headroom) + " above the break"
	}
	out := []string{
		heap + ".",
		fmt.Sprintf("At seq %d %s was placed %s, %s: it became the squeezer.",
			sq.Seq, mappingPhrase(&sq.Mapping), placementPhrase(sq.Placement), where),
	}
	if h := heapMergedWith(r); h != nil {
		out = append(out, fmt.Sprintf("It has the heap's protection and touches it, so the kernel joined the two into one VMA: /proc/PID/maps shows a single [heap] line %s-%s.",
			hex(h.Start), hex(h.End)))
	}
	if b := r.BoundedBy; b != nil && (b.Start != sq.Start || b.End != sq.End) {
		out = append(out, fmt.Sprintf("Now %s bounds the heap, with %s of headroom.", mappingPhrase(b), Size(r.BrkHeadroom)))
	}
	return out
}

// heapMergedWith returns the [heap] VMA when the squeezer is part of it:
// anonymous, starting at the break's page, inside the VMA /proc names
// [heap] (the kernel's vma_is_initial_heap rule).
func heapMergedWith(r *layout.Report) *layout.Mapping {
	sq := r.Squeezer
	if sq == nil || sq.Path != "" {
		return nil
	}
	var heap *layout.Mapping
	r.EachVMA(func(h *layout.Mapping) bool {
		if h.Path == "[heap]" && h.Start < sq.Start && sq.Start < h.End {
			c := *h
			heap = &c
			return false
		}
		return true
	})
	return heap
}

// personalitySource says where the persona came from: "inherited", or
// "set by personality(0x200008) at seq 43 before exec".
func personalitySource(r *layout.Report) string {
	src := r.PersonalitySource
	if strings.HasPrefix(src, "personality(") {
		return "set by " + src
	}
	return src
}

func storyFailures(r *layout.Report) string {
	n := len(r.BrkFailures)
	if n == 0 {
		if r.Squeezer != nil {
			return "No brk call failed while mmtrace watched."
		}
		return ""
	}
	var b strings.Builder
	if n == 1 {
		b.WriteString("One brk call failed: ")
	} else {
		fmt.Fprintf(&b, "%d brk calls failed: ", n)
	}
	for i := 0; i < n && i < maxStoryFailures; i++ {
		f := &r.BrkFailures[i]
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "at seq %d brk(%s) returned %s, ", f.Seq, hex(f.Requested), hex(f.Result))
		switch {
		case f.BlockedBy == nil:
			b.WriteString(f.Why())
		case r.Squeezer != nil && f.BlockedBy.Start == r.Squeezer.Start:
			b.WriteString("blocked by the squeezer")
		default:
			b.WriteString("blocked by " + mappingPhrase(f.BlockedBy))
		}
	}
	if n > maxStoryFailures {
		fmt.Fprintf(&b, "; and %d more", n-maxStoryFailures)
	}
	b.WriteString(".")
	return b.String()
}

func storyEnd(r *layout.Report) string {
	switch r.Ended {
	case "exit":
		return "The image ended when the process exited" + atSeq(r.EndSeq) + "."
	case "exec":
		return "The image ended when the process exec'd another program" + atSeq(r.EndSeq) + "."
	case "stopped", "":
		return "It was still running when mmtrace stopped."
	}
	return "The image ended (" + r.Ended + ")" + atSeq(r.EndSeq) + "."
}

func atSeq(seq uint64) string {
	if seq == 0 {
		return ""
	}
	return " at seq " + strconv.FormatUint(seq, 10)
}

// mappingPhrase names a mapping for prose: "the 8.0 MiB r--p mapping
// 0x57a5f000-0x5825f000 of /var/tmp/blob.dat".
func mappingPhrase(m *layout.Mapping) string {
	what := "anonymous mapping"
	switch {
	case strings.HasPrefix(m.Path, "["):
		what = m.Path + " mapping"
	case m.Path != "":
		what = "mapping of " + m.Path
	}
	return fmt.Sprintf("the %s %s %s at %s-%s", Size(m.End-min(m.Start, m.End)), orUnknown(m.Prot), what, hex(m.Start), hex(m.End))
}

func placementPhrase(p layout.Placement) string {
	switch p {
	case layout.PlacementExec:
		return "by the ELF loader at exec"
	case layout.PlacementFixed:
		return "with MAP_FIXED"
	case layout.PlacementFixedNoReplace:
		return "with MAP_FIXED_NOREPLACE"
	case layout.PlacementHint:
		return "at its address hint"
	case layout.PlacementHintIgnored:
		return "away from its address hint"
	case layout.PlacementBottomUp:
		return "bottom-up by the legacy allocator"
	case layout.PlacementTopDown:
		return "top-down by the flexible allocator"
	case layout.PlacementMremap:
		return "there by mremap"
	case layout.PlacementProc:
		return "there before mmtrace started"
	case layout.PlacementNone:
		return "(placement unknown)"
	}
	return "(" + string(p) + ")"
}

func orUnknown(s string) string {
	if s == "" {
		return "?"
	}
	return s
}

// CheckLine is the one-line summary of an image that fails --check, for
// stderr after a "mmtrace: check: " prefix: "pid 5150 memtest32 (i386,
// legacy): squeezed by ...; 2 failed brk (...)".
func CheckLine(r *layout.Report) string {
	if r == nil {
		return "no report"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "pid %d %s (%s, %s): ", r.PID, nameOf(r), r.ABI, orUnknown(r.Layout))
	var parts []string
	if sq := r.Squeezer; sq != nil {
		parts = append(parts, fmt.Sprintf("squeezed by %s-%s %s (%s, seq %d), headroom %s",
			hex(sq.Start), hex(sq.End), shortPath(sq.Path), orUnknown(string(sq.Placement)), sq.Seq, Size(r.BrkHeadroom)))
	} else {
		parts = append(parts, "headroom "+Size(r.BrkHeadroom))
	}
	if n := len(r.BrkFailures); n > 0 {
		f := &r.BrkFailures[0]
		s := fmt.Sprintf("%d failed brk (first at seq %d", n, f.Seq)
		if f.BlockedBy != nil {
			s += ", blocked by " + hex(f.BlockedBy.Start)
		} else {
			s += ", no mapping in the way"
		}
		parts = append(parts, s+")")
	}
	if r.Uncertain {
		parts = append(parts, "uncertain")
	}
	b.WriteString(strings.Join(parts, "; "))
	return b.String()
}

// shortPath is a mapping's path, or "anonymous".
func shortPath(p string) string {
	if p == "" {
		return "anonymous"
	}
	return p
}
