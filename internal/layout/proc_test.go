package layout

import (
	"bufio"
	"bytes"
	"os"
	"strings"
	"testing"
)

func TestParseProcMapsSelf(t *testing.T) {
	raw, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Skipf("no /proc/self/maps: %v", err)
	}
	ms, err := ParseProcMaps(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Count(strings.TrimSpace(string(raw)), "\n") + 1
	if len(ms) != lines {
		t.Fatalf("%d mappings from %d lines", len(ms), lines)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var sawExe, sawStack bool
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for i := 0; sc.Scan(); i++ {
		m := ms[i]
		if m.Start >= m.End || len(m.Prot) != 4 {
			t.Errorf("line %d: %+v", i+1, m)
		}
		if i > 0 && m.Start < ms[i-1].End {
			t.Errorf("line %d overlaps the one before", i+1)
		}
		if m.Path != "" && !strings.HasSuffix(sc.Text(), " "+m.Path) {
			t.Errorf("line %q: path %q", sc.Text(), m.Path)
		}
		sawExe = sawExe || m.Path == exe
		sawStack = sawStack || m.Path == "[stack]"
	}
	if !sawExe || !sawStack {
		t.Errorf("executable %q seen %v, [stack] seen %v", exe, sawExe, sawStack)
	}
}

func TestParseProcMapsFields(t *testing.T) {
	in := "00400000-00452000 r-xp 00001000 08:02 173521      /usr/bin/my prog (deleted)\n" +
		"\n" +
		"7ffd1000-7ffd2000 rw-s 00000000 00:01 5 /dev/zero (deleted)\n" +
		"7f000000-7f001000 ---p 00000000 00:00 0 \n"
	ms, err := ParseProcMaps(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	equalLines(t, "parsed", maps(ms), []string{
		"400000-452000 r-xp /usr/bin/my prog (deleted)@1000",
		"7ffd1000-7ffd2000 rw-s /dev/zero (deleted)@0",
		"7f000000-7f001000 ---p",
	})
}

func TestParseProcMapsErrors(t *testing.T) {
	for _, in := range []string{
		"00400000 r-xp 00000000 08:02 1 /x",
		"00400000-0040zz00 r-xp 00000000 08:02 1 /x",
		"00500000-00400000 r-xp 00000000 08:02 1 /x",
		"00400000-00401000 rwxq 00000000 08:02 1 /x",
		"00400000-00401000 r-xp 0000g000 08:02 1 /x",
		"00400000-00401000 r-xp 00000000 08:02",
		"00400000-00401000 r-xp 00000000 08:02 x1 /x",
	} {
		if _, err := ParseProcMaps(strings.NewReader(in)); err == nil {
			t.Errorf("%q: no error", in)
		} else if !strings.HasPrefix(err.Error(), "parse maps line 1: ") {
			t.Errorf("%q: error %q lacks the line", in, err)
		}
	}
}

func FuzzParseProcMaps(f *testing.F) {
	f.Add("00400000-00452000 r-xp 00000000 08:02 173521      /usr/bin/dbus-daemon\n")
	f.Add("7f000000-7f001000 ---p 00000000 00:00 0 \n7ffd1000-7ffd2000 rw-s 0 00:01 5 /dev/zero (deleted)")
	f.Add("-\n")
	f.Fuzz(func(t *testing.T, in string) {
		ms, err := ParseProcMaps(strings.NewReader(in))
		if err != nil {
			return
		}
		for _, m := range ms {
			if m.End < m.Start || !validProt(m.Prot) {
				t.Errorf("accepted %+v", m)
			}
		}
		MergeAdjacent(ms)
	})
}

func TestMergeAdjacent(t *testing.T) {
	tests := []struct {
		name string
		in   []Mapping
		want []string
	}{
		{"nothing", nil, nil},
		{
			name: "anonymous neighbours with the same prot join, unsorted input",
			in: []Mapping{
				{Start: 0x3000, End: 0x4000, Prot: "rw-p"},
				{Start: 0x1000, End: 0x2000, Prot: "rw-p"},
				{Start: 0x2000, End: 0x3000, Prot: "rw-p", Offset: 0x99},
			},
			want: []string{"1000-4000 rw-p"},
		},
		{
			name: "different prot, path, or a gap keep ranges apart",
			in: []Mapping{
				{Start: 0x1000, End: 0x2000, Prot: "rw-p"},
				{Start: 0x2000, End: 0x3000, Prot: "r--p"},
				{Start: 0x3000, End: 0x4000, Prot: "r--p", Path: "[heap]"},
				{Start: 0x5000, End: 0x6000, Prot: "r--p", Path: "[heap]"},
				{Start: 0x6000, End: 0x7000, Prot: "r--s", Path: "[heap]"},
			},
			want: []string{"1000-2000 rw-p", "2000-3000 r--p", "3000-4000 r--p [heap]", "5000-6000 r--p [heap]", "6000-7000 r--s [heap]"},
		},
		{
			name: "files join only with contiguous offsets",
			in: []Mapping{
				{Start: 0x1000, End: 0x2000, Prot: "r--p", Path: "/f", Offset: 0},
				{Start: 0x2000, End: 0x4000, Prot: "r--p", Path: "/f", Offset: 0x1000},
				{Start: 0x4000, End: 0x5000, Prot: "r--p", Path: "/f", Offset: 0x1000},
			},
			want: []string{"1000-4000 r--p /f@0", "4000-5000 r--p /f@1000"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := append([]Mapping(nil), tc.in...)
			equalLines(t, "merged", maps(MergeAdjacent(tc.in)), tc.want)
			for i := range before {
				if before[i] != tc.in[i] {
					t.Fatal("input modified")
				}
			}
		})
	}
}

func TestSeedFromProcThenSqueezeAndFail(t *testing.T) {
	const heap, heapEnd = 0x55550000, 0x55572000
	procMaps, err := ParseProcMaps(strings.NewReader(
		"55540000-55541000 r-xp 00000000 08:02 1 /usr/bin/app\n" +
			"55550000-55572000 rw-p 00000000 00:00 0 [heap]\n" +
			"7f0000000000-7f0000001000 r--p 00000000 08:02 2 /usr/lib/libc.so.6\n" +
			"7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]\n" +
			"ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0 [vsyscall]\n"))
	if err != nil {
		t.Fatal(err)
	}
	tr := NewTracker(Options{})
	tr.SeedFromProc(ProcImage{
		PID: 77, PPID: 1, Comm: "app", Exe: "/usr/bin/app", StartBrk: heap, Brk: heapEnd - 0x100,
		StartStack: 0x7ffd00020000, Maps: procMaps,
	})
	r := tr.Snapshot(77)
	if !r.FromProc || r.Layout != "flexible" || r.ExecSeq != 0 || r.Squeezer != nil {
		t.Fatalf("seeded %+v", r)
	}
	equalLines(t, "seeded layout", maps(r.VMAs), []string{
		"55540000-55541000 r-xp /usr/bin/app@0",
		"55550000-55572000 rw-p [heap]",
		"7f0000000000-7f0000001000 r--p /usr/lib/libc.so.6@0",
		"7ffd00000000-7ffd00021000 rw-p [stack]",
	})

	g := newGen(77)
	g.seq = 1000
	ch := tr.Apply(g.mmap(heapEnd+page, page, protR, 0x02, "/etc/passwd", 0, heapEnd+page))
	if ch.NewSqueezer == nil || ch.NewSqueezer.Placement != PlacementHint || ch.NewSqueezer.Headroom != page {
		t.Fatalf("squeezer %+v", ch.NewSqueezer)
	}
	ch = tr.Apply(g.brk(heapEnd+0x10000, heapEnd-0x100))
	if ch.BrkFailure == nil || ch.BrkFailure.BlockedBy == nil || ch.BrkFailure.BlockedBy.Path != "/etc/passwd" {
		t.Fatalf("failure %+v", ch.BrkFailure)
	}
	r = tr.Finish()[0]
	if r.Squeezer == nil || len(r.BrkFailures) != 1 || r.Ended != "stopped" {
		t.Errorf("final %+v", r)
	}
}

func TestSeedFromProcLegacy(t *testing.T) {
	tr := NewTracker(Options{})
	tr.SeedFromProc(ProcImage{PID: 9, Personality: addrCompatLayout})
	r := tr.Snapshot(9)
	if r.Layout != "legacy" || !strings.HasPrefix(r.LayoutReason, "ADDR_COMPAT_LAYOUT") {
		t.Errorf("layout %q %q", r.Layout, r.LayoutReason)
	}
	g := newGen(9)
	if ch := tr.Apply(g.anon(0, page, A)); ch.Placement != PlacementBottomUp {
		t.Errorf("placement %q", ch.Placement)
	}
}

func TestVMFlags(t *testing.T) {
	for _, c := range []struct {
		prot, path string
		want       uint64
	}{
		{"r-xp", "/bin/true", vmRead | vmExec},
		{"rw-s", "/dev/shm/x", vmRead | vmWrite | vmMayShare},
		{"---p", "", 0},
		{"rw-p", "[stack]", vmRead | vmWrite | vmGrowsDown},
		{"rw", "", 0},
	} {
		if got := VMFlags(c.prot, c.path); got != c.want {
			t.Errorf("VMFlags(%q, %q) = %#x, want %#x", c.prot, c.path, got, c.want)
		}
	}
}

// AppendProcPerms is VMFlags' inverse on every permission string /proc
// prints, and says 's' for VM_MAYSHARE alone (a read-only MAP_SHARED file
// mapping has no VM_SHARED), as show_map_vma does.
func TestAppendProcPermsInvertsVMFlags(t *testing.T) {
	for _, r := range "r-" {
		for _, w := range "w-" {
			for _, x := range "x-" {
				for _, s := range "ps" {
					prot := string([]rune{r, w, x, s})
					if got := string(AppendProcPerms(nil, VMFlags(prot, ""))); got != prot {
						t.Errorf("%s: back as %s", prot, got)
					}
				}
			}
		}
	}
	const vmShared = 0x8 // VM_SHARED without VM_MAYSHARE is not what /proc calls shared
	if got := string(AppendProcPerms(nil, vmRead|vmShared)); got != "r--p" {
		t.Errorf("VM_READ|VM_SHARED: %s, want r--p", got)
	}
}
