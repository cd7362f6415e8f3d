package layout

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/mmtrace/mmtrace/internal/events"
)

// ProcImage is what /proc says about a running process (for --pid).
type ProcImage struct {
	PID, PPID   uint32
	Comm, Exe   string
	ABI         events.ABI
	StartBrk    uint64
	Brk         uint64
	StartStack  uint64
	Maps        []Mapping // from ParseProcMaps
	Personality uint32
}

// SeedFromProc starts the model of an already running process from /proc
// facts, replacing any image the tracker had for that PID. The mmap base is
// not in /proc, so the layout is inferred from the personality and the
// vm.legacy_va_layout sysctl.
func (t *Tracker) SeedFromProc(p ProcImage) {
	legacy := p.Personality&addrCompatLayout != 0 || t.opts.LegacyVALayout
	im := &image{
		startBrk: p.StartBrk, brk: p.Brk, startStack: p.StartStack,
		taskSize: TaskSize(p.ABI), legacy: legacy, persona: p.Personality,
	}
	im.rep = Report{
		PID: p.PID, Comm: p.Comm, Exe: p.Exe, ABI: p.ABI, PPID: p.PPID,
		Personality: p.Personality, PersonalitySource: "unknown (read from /proc)",
		FromProc: true,
		Notes: []string{"mappings, brk and personality read from /proc when mmtrace started; " +
			"the mmap base is not in /proc, so the layout is inferred; later changes from events"},
	}
	im.rep.Layout, im.rep.LayoutReason = layoutReason(legacy, false, p.Personality, 0)
	im.rep.LayoutReason += " (inferred: mmap base not in /proc)"
	maps := slices.Clone(p.Maps)
	slices.SortFunc(maps, byStart)
	for _, m := range maps {
		if m.Path == "[vsyscall]" {
			continue // the gate page, not a VMA of the mm; exec snapshots never see it
		}
		r := region{start: m.Start, end: m.End, place: placeProc, flags: vmFlags(VMFlags(m.Prot, m.Path))}
		if m.Path != "[heap]" && m.Path != "[stack]" {
			r.path = internPath(m.Path)
		}
		if r.path.fileBacked() {
			r.off = m.Offset
		}
		im.insert(r)
	}
	im.headroom, im.bound = im.measure()
	var ch Change
	t.judge(im, &ch, 0, ^uint64(0))
	delete(t.persona, p.PID)
	t.images[p.PID] = im
}

// VMFlags is a /proc/PID/maps line's permissions ("r-xp") and path as
// the kernel's vm_flags: what a VMA snapshot record would carry.
func VMFlags(prot, path string) uint64 {
	var f uint64
	if len(prot) == 4 {
		if prot[0] == 'r' {
			f |= vmRead
		}
		if prot[1] == 'w' {
			f |= vmWrite
		}
		if prot[2] == 'x' {
			f |= vmExec
		}
		if prot[3] == 's' {
			f |= vmMayShare
		}
	}
	if path == "[stack]" {
		f |= vmGrowsDown
	}
	return f
}

// AppendProcPerms writes vm_flags as /proc/PID/maps prints them ("r-xp"):
// show_map_vma prints 's' for VM_MAYSHARE, which a read-only MAP_SHARED
// mapping has without VM_SHARED. The inverse of VMFlags.
func AppendProcPerms(b []byte, flags uint64) []byte {
	c := func(bit uint64, ch byte) byte {
		if flags&bit != 0 {
			return ch
		}
		return '-'
	}
	sh := byte('p')
	if flags&vmMayShare != 0 {
		sh = 's'
	}
	return append(b, c(vmRead, 'r'), c(vmWrite, 'w'), c(vmExec, 'x'), sh)
}

// ParseProcMaps reads /proc/PID/maps text. Prot, Offset and Path are kept
// as the kernel printed them.
func ParseProcMaps(r io.Reader) ([]Mapping, error) {
	var out []Mapping
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if strings.TrimSpace(text) == "" {
			continue
		}
		m, err := parseMapsLine(text)
		if err != nil {
			return nil, fmt.Errorf("parse maps line %d: %w", line, err)
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read maps: %w", err)
	}
	return out, nil
}

// parseMapsLine parses "start-end perms offset dev inode [path]".
func parseMapsLine(s string) (Mapping, error) {
	var m Mapping
	var fields [5]string
	rest := s
	for i := range fields {
		rest = strings.TrimLeft(rest, " ")
		n := strings.IndexByte(rest, ' ')
		if n < 0 {
			n = len(rest)
		}
		fields[i], rest = rest[:n], rest[n:]
		if fields[i] == "" {
			return m, fmt.Errorf("%q: want 5 fields before the path", s)
		}
	}
	lo, hi, ok := strings.Cut(fields[0], "-")
	if !ok {
		return m, fmt.Errorf("%q: range without '-'", fields[0])
	}
	var err error
	if m.Start, err = strconv.ParseUint(lo, 16, 64); err != nil {
		return m, fmt.Errorf("start: %w", err)
	}
	if m.End, err = strconv.ParseUint(hi, 16, 64); err != nil {
		return m, fmt.Errorf("end: %w", err)
	}
	if m.End < m.Start {
		return m, fmt.Errorf("range %s ends before it starts", fields[0])
	}
	if !validProt(fields[1]) {
		return m, fmt.Errorf("permissions %q", fields[1])
	}
	m.Prot = fields[1]
	if m.Offset, err = strconv.ParseUint(fields[2], 16, 64); err != nil {
		return m, fmt.Errorf("offset: %w", err)
	}
	if _, err = strconv.ParseUint(fields[4], 10, 64); err != nil {
		return m, fmt.Errorf("inode: %w", err)
	}
	m.Path = strings.TrimLeft(rest, " ")
	m.Placement = PlacementProc
	return m, nil
}

func validProt(p string) bool {
	return len(p) == 4 &&
		(p[0] == 'r' || p[0] == '-') && (p[1] == 'w' || p[1] == '-') &&
		(p[2] == 'x' || p[2] == '-') && (p[3] == 'p' || p[3] == 's')
}

// MergeAdjacent normalises a layout for comparison: sorted by start, with
// neighbours joined when they touch and have the same Prot and the same
// backing (same Path and, for files, contiguous Offset). The kernel merges
// VMAs only when more hidden state agrees, so two equal address spaces can
// differ in how they are split; after MergeAdjacent they do not. The input
// is not modified. A joined range keeps the first part's Placement and Seq.
func MergeAdjacent(m []Mapping) []Mapping {
	out := slices.Clone(m)
	slices.SortStableFunc(out, byStart)
	return mergeSorted(out)
}

// mergeSorted is MergeAdjacent on mappings already sorted by start, in
// place.
func mergeSorted(out []Mapping) []Mapping {
	w := 0
	for i := range out {
		if w > 0 {
			p := &out[w-1]
			if continues(p, &out[i]) {
				p.End = out[i].End
				continue
			}
		}
		if w != i { // a copy of a Mapping is a write barrier while the GC runs
			out[w] = out[i]
		}
		w++
	}
	return out[:w]
}

// continues says whether m carries on where p ends, as one VMA would:
// touching, same Prot and same backing (same Path and, for files,
// contiguous Offset).
func continues(p, m *Mapping) bool {
	return p.End == m.Start && p.Prot == m.Prot && p.Path == m.Path &&
		(!fileBacked(p.Path) || p.Offset+(p.End-p.Start) == m.Offset)
}

// byStart orders mappings by start address.
func byStart(a, b Mapping) int { return cmp.Compare(a.Start, b.Start) }
