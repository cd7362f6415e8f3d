package main

// End-to-end tests for 32-bit (ia32) processes and exec across ABIs
// (issue 3): the incident class under `setarch i386 -L`, a
// MAP_FIXED_NOREPLACE squeeze, 32 <-> 64-bit exec chains, and the i386
// old mmap syscall, each checked against what the fixture saw itself.

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mmtrace/mmtrace/internal/layout"
	"github.com/mmtrace/mmtrace/internal/loader"
)

// Personality bits (include/uapi/linux/personality.h).
const (
	perLinux32       = 0x0008
	addrCompatLayout = 0x0200000
)

// setarch returns the path of setarch(8), which the legacy-layout tests
// run under, failing the test when it is missing.
func setarch(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("setarch")
	if err != nil {
		t.Fatalf("setarch (util-linux) is needed for the legacy layout tests: %v", err)
	}
	return p
}

// reportFor returns the one report whose exe is path.
func (r runResult) reportFor(t *testing.T, path string) jsonReport {
	t.Helper()
	var found []jsonReport
	for _, rep := range r.reports {
		if rep.Exe == path {
			found = append(found, rep)
		}
	}
	if len(found) != 1 {
		var exes []string
		for _, rep := range r.reports {
			exes = append(exes, rep.Exe)
		}
		t.Fatalf("want one report for %s, got %d (reports: %s)\nstderr:\n%s", path, len(found), strings.Join(exes, ", "), r.stderr)
	}
	return found[0]
}

// eventLines returns the JSON event lines of one type and pid, in order.
func (r runResult) eventLines(typ string, pid uint32) []map[string]any {
	var out []map[string]any
	for _, l := range r.lines {
		if l["type"] == typ && l["pid"] == float64(pid) {
			out = append(out, l)
		}
	}
	return out
}

// reportLine returns the raw JSON report line for pid's image of exe, for
// fields jsonReport does not decode.
func (r runResult) reportLine(t *testing.T, pid uint32, exe string) map[string]any {
	t.Helper()
	for _, l := range r.eventLines("report", pid) {
		if l["exe"] == exe {
			return l
		}
	}
	t.Fatalf("no report line for pid %d %s", pid, exe)
	return nil
}

// checkExitABI checks that the exit line of a process carries the ABI of
// the image that exited.
func checkExitABI(t *testing.T, res runResult, rep jsonReport) {
	t.Helper()
	var abis []any
	for _, l := range res.eventLines("exit", rep.PID) {
		abis = append(abis, l["abi"])
	}
	if len(abis) != 1 || abis[0] != rep.ABI {
		t.Errorf("exit lines of pid %d (%s): abi %v, want [%s]", rep.PID, rep.Exe, abis, rep.ABI)
	}
}

// fixtureValue reads the "LABEL 0x..." line a fixture printed on stdout.
func fixtureValue(t *testing.T, stdout, label string) uint64 {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(stdout))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), label+" "); ok {
			return hexval(t, strings.TrimSpace(v))
		}
	}
	t.Fatalf("the fixture printed no %q line:\n%s", label, stdout)
	return 0
}

// firstMapping returns the lowest mapping of the file whose base name is
// base in a /proc/PID/maps copy.
func firstMapping(t *testing.T, maps []layout.Mapping, base string) layout.Mapping {
	t.Helper()
	for _, m := range maps {
		if filepath.Base(m.Path) == base {
			return m
		}
	}
	t.Fatalf("no %s in the fixture's maps", base)
	return layout.Mapping{}
}

// checkLegacyBase checks that a legacy image's mmap base is the one its
// ABI's bottom-up allocator used: the ELF loader maps ld.so first, at the
// base itself.
func checkLegacyBase(t *testing.T, rep jsonReport, maps []layout.Mapping, ldso string) {
	t.Helper()
	ld := firstMapping(t, maps, ldso)
	if got := hexval(t, rep.MmapBase); got != ld.Start {
		t.Errorf("mmap_base %#x, but the bottom-up allocator put %s at %#x", got, ldso, ld.Start)
	}
}

// personalitySource finds the personality(2) call the launcher made
// before exec'ing into pid, as the report should name it.
func personalitySource(t *testing.T, res runResult, pid uint32) (uint64, string) {
	t.Helper()
	var persona uint64
	var seq float64
	for _, l := range res.eventLines("personality", pid) {
		if l["persona_names"] == "query" {
			continue
		}
		p, _ := l["persona"].(string)
		persona, seq = hexval(t, p), l["seq"].(float64)
	}
	if seq == 0 {
		t.Fatalf("no personality(2) call by pid %d in the event lines", pid)
	}
	return persona, fmt.Sprintf("personality(%#x) at seq %d before exec", persona, uint64(seq))
}

// The incident class on today's kernel (the 32-bit legacy layout of the README): a 32-bit PIE
// under `setarch i386 -L` maps 1 MiB blocks bottom-up until one lands on
// its break, and a 4 MiB sbrk then fails.
func TestLegacySqueezeIncident(t *testing.T) {
	_, dir := binaries(t)
	need32(t, "32")
	sa := setarch(t)
	bin := filepath.Join(dir, "legacy_squeeze32")
	maps := filepath.Join(t.TempDir(), "maps")
	res := run(t, []string{"MAPS_OUT=" + maps}, "--format", "json", "--", sa, "i386", "-L", bin)
	if res.code != 0 {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	block := fixtureValue(t, res.stdout, "block")
	top := fixtureValue(t, res.stdout, "brk")
	rep := res.reportFor(t, bin)

	if rep.ABI != "i386" || rep.Layout != "legacy" || !strings.Contains(rep.LayoutReason, "ADDR_COMPAT_LAYOUT") {
		t.Errorf("abi %s layout %s (%s), want i386 legacy because of ADDR_COMPAT_LAYOUT", rep.ABI, rep.Layout, rep.LayoutReason)
	}
	persona, source := personalitySource(t, res, rep.PID)
	if persona&addrCompatLayout == 0 || persona&perLinux32 == 0 {
		t.Errorf("setarch i386 -L asked for personality %#x, want PER_LINUX32|ADDR_COMPAT_LAYOUT", persona)
	}
	if hexval(t, rep.Personality) != persona || rep.PersonalitySource != source {
		t.Errorf("personality %s (%s), want %#x (%s)", rep.Personality, rep.PersonalitySource, persona, source)
	}
	procMaps := readMaps(t, maps)
	checkLegacyBase(t, rep, procMaps, "ld-linux.so.2")

	sq := rep.Squeezer
	if sq == nil {
		t.Fatalf("no squeezer; the fixture's block at %#x sits on the break %#x", block, top)
	}
	if hexval(t, sq.Start) != block || hexval(t, sq.End) != block+1<<20 || sq.Path != "" || sq.Placement != "bottom-up" {
		t.Errorf("squeezer %+v, want the anonymous 1 MiB block at %#x placed bottom-up", sq, block)
	}
	if hexval(t, rep.Brk) != top || rep.BrkHeadroom != 0 {
		t.Errorf("brk %s headroom %d, want brk %#x and no headroom", rep.Brk, rep.BrkHeadroom, top)
	}
	if len(rep.BrkFailures) != 1 {
		t.Fatalf("brk failures %+v, want one", rep.BrkFailures)
	}
	f := rep.BrkFailures[0]
	if hexval(t, f.Requested) != top+4<<20 || hexval(t, f.Result) != top || f.BlockedBy == nil || hexval(t, *f.BlockedBy) != block {
		t.Errorf("brk failure %+v, want brk(%#x) = %#x blocked by %#x", f, top+4<<20, top, block)
	}

	// The event that made the squeezer says so.
	var marked []string
	for _, l := range res.eventLines("mmap", rep.PID) {
		if l["new_squeezer"] == true {
			marked = append(marked, fmt.Sprintf("%v placed %v", l["result"], l["placement"]))
		}
	}
	if want := fmt.Sprintf("%#x placed bottom-up", block); len(marked) != 1 || marked[0] != want {
		t.Errorf("mmap lines marked new_squeezer: %v, want [%s]", marked, want)
	}

	checkExitABI(t, res, rep)

	// setarch itself: its own image, 64-bit, nothing set before it.
	sr := res.reportFor(t, sa)
	if sr.ABI != "x86_64" || sr.PersonalitySource != "inherited" || sr.PID != rep.PID {
		t.Errorf("setarch report: abi %s personality %s (%s) pid %d", sr.ABI, sr.Personality, sr.PersonalitySource, sr.PID)
	}
	sameLayout(t, rep, maps)
}

// The text report of the incident tells the same story.
func TestLegacySqueezeIncidentText(t *testing.T) {
	_, dir := binaries(t)
	out := filepath.Join(t.TempDir(), "out.txt")
	need32(t, "32")
	res := run(t, nil, "--output", out, "--", setarch(t), "i386", "-L", filepath.Join(dir, "legacy_squeeze32"))
	if res.code != 0 {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	block := fixtureValue(t, res.stdout, "block")
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("no text output: %v", err)
	}
	text := string(b)
	for _, want := range []string{
		"layout       legacy (ADDR_COMPAT_LAYOUT personality (0x200008))",
		fmt.Sprintf("squeezer     %#x-%#x anonymous rw-p, placement bottom-up", block, block+1<<20),
		fmt.Sprintf("blocked by %#x-%#x anonymous", block, block+1<<20),
		"personality(0x200008) at seq",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the text report lacks %q:\n%s", want, text)
		}
	}
	// The final picture: /proc shows the block merged into [heap], and
	// the free space above that is not headroom (there is none).
	var final string
	for _, sec := range strings.Split(text, "== report: pid ")[1:] {
		if head, _, _ := strings.Cut(sec, "\n"); strings.Contains(head, " legacy_squeeze3 (") {
			final, _, _ = strings.Cut(sec, "  story")
		}
	}
	if final == "" {
		t.Fatalf("no report for legacy_squeeze3:\n%s", text)
	}
	for _, line := range strings.Split(final, "\n") {
		if strings.Contains(line, "headroom ↑") {
			t.Errorf("the picture labels a gap as headroom, but there is none:\n%s", final)
		}
		if strings.Contains(line, "SQUEEZER") && strings.Contains(line, "brkbr") {
			t.Errorf("the heap row's marks run together: %q", line)
		}
	}
}

// A MAP_FIXED_NOREPLACE page 2 MiB above the break: 1 MiB of brk fits, 2
// MiB more does not. Both ABIs must tell the same story.
func TestNoReplaceSqueeze(t *testing.T) {
	_, dir := binaries(t)
	for _, abi := range []struct{ suffix, name string }{{"32", "i386"}, {"", "x86_64"}} {
		t.Run(abi.name, func(t *testing.T) {
			need32(t, abi.suffix)
			bin := filepath.Join(dir, "noreplace_squeeze"+abi.suffix)
			maps := filepath.Join(t.TempDir(), "maps")
			res := run(t, []string{"MAPS_OUT=" + maps}, "--format", "json", "--", bin)
			if res.code != 0 {
				t.Fatalf("exit %d\n%s", res.code, res.stderr)
			}
			at := fixtureValue(t, res.stdout, "mapping")
			rep := res.reportFor(t, bin)
			if rep.ABI != abi.name || rep.Layout != "flexible" {
				t.Errorf("abi %s layout %s, want %s flexible", rep.ABI, rep.Layout, abi.name)
			}
			sq := rep.Squeezer
			if sq == nil {
				t.Fatalf("no squeezer; the fixture mapped %#x", at)
			}
			if hexval(t, sq.Start) != at || sq.Placement != "fixed-noreplace" {
				t.Errorf("squeezer %+v, want %#x placed fixed-noreplace", sq, at)
			}
			start := hexval(t, rep.StartBrk)
			if hexval(t, rep.Brk) != start+1<<20 {
				t.Errorf("brk %s, want start_brk %s + 1 MiB (the first growth fits)", rep.Brk, rep.StartBrk)
			}
			if len(rep.BrkFailures) != 1 {
				t.Fatalf("brk failures %+v, want one (only the 2 MiB growth)", rep.BrkFailures)
			}
			f := rep.BrkFailures[0]
			if hexval(t, f.Requested) != start+3<<20 || f.BlockedBy == nil || hexval(t, *f.BlockedBy) != at {
				t.Errorf("brk failure %+v, want brk(%#x) blocked by %#x", f, start+3<<20, at)
			}
			sameLayout(t, rep, maps)
		})
	}
}

// A parent of one ABI forks and execs a child of the other (the syscall
// records of such an exec are lopsided; sched_process_exec is not).
// Each image is reported with its own ABI and its parent's, and a child
// exec'd under ADDR_COMPAT_LAYOUT inherits the personality and the legacy
// layout, with the base its own ABI uses.
func TestExecAcrossABIs(t *testing.T) {
	_, dir := binaries(t)
	need32(t, "32")
	sa := setarch(t)
	bin32, bin64 := filepath.Join(dir, "exec_other_abi32"), filepath.Join(dir, "exec_other_abi")
	const heap = "65536"
	for _, c := range []struct {
		name                string
		prefix              []string // setarch, if any
		parent, child       string
		parentABI, childABI string
		legacy              bool
		childLD             string // ld.so of the child's ABI
	}{
		{"i386 parent, x86_64 child, legacy", []string{sa, "i386", "-L"}, bin32, bin64, "i386", "x86_64", true, "ld-linux-x86-64.so.2"},
		{"x86_64 parent, i386 child", nil, bin64, bin32, "x86_64", "i386", false, "ld-linux.so.2"},
		{"x86_64 parent, i386 child, legacy", []string{sa, "x86_64", "-L"}, bin64, bin32, "x86_64", "i386", true, "ld-linux.so.2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			maps := filepath.Join(t.TempDir(), "maps")
			args := append([]string{"--format", "json", "--"}, c.prefix...)
			args = append(args, c.parent, heap, c.child, heap)
			res := run(t, []string{"MAPS_OUT=" + maps}, args...)
			if res.code != 0 {
				t.Fatalf("exit %d\n%s", res.code, res.stderr)
			}
			parent, child := res.reportFor(t, c.parent), res.reportFor(t, c.child)

			if parent.ABI != c.parentABI || child.ABI != c.childABI {
				t.Errorf("abi: parent %s child %s, want %s and %s", parent.ABI, child.ABI, c.parentABI, c.childABI)
			}
			if child.PPID != parent.PID || child.ParentComm != parent.Comm || child.ParentABI != c.parentABI {
				t.Errorf("child's parent: pid %d %s (%s), want pid %d %s (%s)",
					child.PPID, child.ParentComm, child.ParentABI, parent.PID, parent.Comm, c.parentABI)
			}
			// The exec lines carry the new image's ABI whichever way the
			// syscall entry and exit were seen.
			for _, r := range []jsonReport{parent, child} {
				var abis []any
				for _, l := range res.eventLines("exec", r.PID) {
					if l["exe"] == r.Exe {
						abis = append(abis, l["abi"])
					}
				}
				if len(abis) != 1 || abis[0] != r.ABI {
					t.Errorf("exec lines for %s: abi %v, want [%s]", r.Exe, abis, r.ABI)
				}
			}

			wantLayout := map[bool]string{false: "flexible", true: "legacy"}[c.legacy]
			if parent.Layout != wantLayout || child.Layout != wantLayout {
				t.Errorf("layout: parent %s child %s (%s), want %s", parent.Layout, child.Layout, child.LayoutReason, wantLayout)
			}
			if c.legacy {
				if !strings.Contains(child.LayoutReason, "ADDR_COMPAT_LAYOUT") {
					t.Errorf("child's layout reason %q does not name ADDR_COMPAT_LAYOUT", child.LayoutReason)
				}
				if _, source := personalitySource(t, res, parent.PID); parent.PersonalitySource != source {
					t.Errorf("parent's personality source %q, want %q", parent.PersonalitySource, source)
				}
			}
			// The child did not call personality(2): what it has came
			// through fork and exec.
			if child.Personality != parent.Personality || child.PersonalitySource != "inherited" {
				t.Errorf("child's personality %s (%s), want the parent's %s, inherited",
					child.Personality, child.PersonalitySource, parent.Personality)
			}
			if p := hexval(t, child.Personality); (p&addrCompatLayout != 0) != c.legacy {
				t.Errorf("child's personality %#x: ADDR_COMPAT_LAYOUT should be %v", p, c.legacy)
			}

			checkExitABI(t, res, parent)
			checkExitABI(t, res, child)

			procMaps := readMaps(t, maps)
			if c.legacy {
				checkLegacyBase(t, child, procMaps, c.childLD)
				// The mmap area lies below the heap: the stack bounds it,
				// and is named so, as in vmas.
				stack := firstMapping(t, procMaps, "[stack]")
				b, _ := res.reportLine(t, child.PID, child.Exe)["bounded_by"].(map[string]any)
				if b == nil || b["path"] != "[stack]" || b["end"] != fmt.Sprintf("%#x", stack.End) {
					t.Errorf("bounded_by %v, want the [stack] ending at %#x", b, stack.End)
				}
			} else if c.childABI == "i386" {
				if b := hexval(t, child.MmapBase); b == 0 || b > 0xffffffff {
					t.Errorf("32-bit child's mmap base %#x is not a 32-bit address", b)
				}
				// Top-down from the compat base: ld.so lies below it.
				if ld := firstMapping(t, procMaps, c.childLD); ld.Start >= hexval(t, child.MmapBase) {
					t.Errorf("%s at %#x is above the mmap base %s", c.childLD, ld.Start, child.MmapBase)
				}
			}
			sameLayout(t, child, maps)
		})
	}
}

// mmapCall is one line the old_mmap fixture printed.
type mmapCall struct {
	addr, len, prot, flags, offset uint64
	fd                             int64
	result                         string // "0x..." or "-ERRNO"
}

func parseMmapCalls(t *testing.T, stdout string) []mmapCall {
	t.Helper()
	var calls []mmapCall
	sc := bufio.NewScanner(strings.NewReader(stdout))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 8 || f[0] != "call" {
			continue
		}
		fd, err := strconv.ParseInt(f[5], 10, 32)
		if err != nil {
			t.Fatalf("bad fd in %q", sc.Text())
		}
		calls = append(calls, mmapCall{
			addr: hexval(t, f[1]), len: hexval(t, f[2]), prot: hexval(t, f[3]),
			flags: hexval(t, f[4]), fd: fd, offset: hexval(t, f[6]), result: f[7],
		})
	}
	if len(calls) == 0 {
		t.Fatalf("the fixture printed no calls:\n%s", stdout)
	}
	return calls
}

// field prints a decoded JSON value; numbers in full, not as 4.3e+09.
func field(v any) string {
	if f, ok := v.(float64); ok {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

// errnoNames names the errors the old_mmap fixture provokes.
var errnoNames = map[string]string{"-22": "EINVAL"}

// The i386 old mmap (arguments in a struct in user memory, offset in
// bytes) and mmap2 (offset in pages): each event line carries the
// arguments the fixture passed, and the final layout equals its
// /proc/self/maps. The 64-bit build makes the same calls through mmap(2).
func TestOldMmapMatches(t *testing.T) {
	_, dir := binaries(t)
	for _, abi := range []struct{ suffix, name string }{{"32", "i386"}, {"", "x86_64"}} {
		for _, path := range tracingPaths() {
			t.Run(abi.name+"/"+path, func(t *testing.T) {
				need32(t, abi.suffix)
				bin := filepath.Join(dir, "old_mmap"+abi.suffix)
				maps := filepath.Join(t.TempDir(), "maps")
				args := []string{"--format", "json", "--", bin, filepath.Join(dir, "data")}
				if path == "lock" {
					args = append([]string{"--lock-path"}, args...)
				}
				res := run(t, []string{"MAPS_OUT=" + maps}, args...)
				if res.code != 0 {
					t.Fatalf("exit %d\n%s", res.code, res.stderr)
				}
				rep := res.reportFor(t, bin)
				if rep.ABI != abi.name || rep.Uncertain {
					t.Errorf("abi %s uncertain %v, want %s and certain", rep.ABI, rep.Uncertain, abi.name)
				}
				calls := parseMmapCalls(t, res.stdout)
				if path == "lock" && lockPathKernel(t) {
					// An offset that is not page aligned fails before the
					// call takes the mmap lock: the lock path never sees it.
					calls = slices.DeleteFunc(calls, func(c mmapCall) bool { return c.result == "-22" })
				}
				lines := res.eventLines("mmap", rep.PID)
				if len(lines) < len(calls) {
					t.Fatalf("%d mmap lines, want at least the fixture's %d calls", len(lines), len(calls))
				}
				// ld.so's own mmaps come first; the fixture's are the last.
				lines = lines[len(lines)-len(calls):]
				for i, c := range calls {
					l := lines[i]
					got := fmt.Sprintf("addr %s len %s prot %s flags %s fd %s offset %s abi %s",
						field(l["addr"]), field(l["len"]), field(l["prot_raw"]), field(l["flags_raw"]),
						field(l["fd"]), field(l["offset"]), field(l["abi"]))
					want := fmt.Sprintf("addr %#x len %d prot %#x flags %#x fd %d offset %d abi %s",
						c.addr, c.len, c.prot, c.flags, c.fd, c.offset, abi.name)
					if got != want {
						t.Errorf("call %d: event line has\n  %s\nwant\n  %s", i, got, want)
					}
					if name, failed := errnoNames[c.result]; failed {
						if l["result"] != nil || l["error"] != name {
							t.Errorf("call %d failed with %s; event line result %v error %v", i, name, l["result"], l["error"])
						}
					} else if l["result"] != c.result {
						t.Errorf("call %d returned %s; event line result %v", i, c.result, l["result"])
					}
				}
				sameLayout(t, rep, maps)
			})
		}
	}
}

// lockPathKernel reports whether mmtrace traces memory calls at the mmap
// lock on this kernel when asked to (--lock-path).
func lockPathKernel(t *testing.T) bool {
	t.Helper()
	ok, _ := loader.LockPathPossible(loader.Config{LockPath: true})
	return ok
}

// vm.legacy_va_layout flipped while mmtrace runs: the image exec'd after
// the flip is legacy, and the reason is the sysctl at its exec (x86's
// mmap_is_legacy() reads it then), never RLIMIT_STACK.
func TestLegacySysctlFlippedDuringTrace(t *testing.T) {
	_, dir := binaries(t)
	const sysctl = "/proc/sys/vm/legacy_va_layout"
	old, err := os.ReadFile(sysctl)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(old)) != "0" {
		t.Skipf("%s is %s already", sysctl, strings.TrimSpace(string(old)))
	}
	t.Cleanup(func() { os.WriteFile(sysctl, old, 0o644) })
	res := run(t, nil, "--format", "json", "--", "sh", "-c",
		`echo 1 > `+sysctl+`; "$0" /etc/passwd; s=$?; echo 0 > `+sysctl+`; exit $s`, filepath.Join(dir, "hint_squeeze"))
	if res.code != 0 {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	rep := res.report(t, "hint_squeeze")
	if rep.Layout != "legacy" || !strings.Contains(rep.LayoutReason, "vm.legacy_va_layout=1 at exec") {
		t.Errorf("layout %q (%s), want legacy for the sysctl at exec", rep.Layout, rep.LayoutReason)
	}
}
