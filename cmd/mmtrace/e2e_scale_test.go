package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// scaleVMAs is how many mappings TestScaleManyVMAsMatchProcMaps lives among:
// more than the default vm.max_map_count (65530), as JVMs, databases and
// sanitizer builds have (issue 18).
const scaleVMAs = 100000

// At 100k VMAs, after 20k rounds of munmap + MAP_FIXED, file pages over
// anonymous ones, protection flips and MAP_FIXED_NOREPLACE in holes, the
// model must equal the process's own /proc/self/maps, every one of them.
func TestScaleManyVMAsMatchProcMaps(t *testing.T) {
	_, dir := binaries(t)
	const rounds = 20000
	raiseMaxMapCount(t, scaleVMAs+rounds+1000)
	maps := filepath.Join(t.TempDir(), "maps")
	res := run(t, []string{"MAPS_OUT=" + maps}, "--format", "json", "--",
		filepath.Join(dir, "many_vmas"), strconv.Itoa(scaleVMAs), strconv.Itoa(rounds), filepath.Join(dir, "data"))
	if res.code != 0 {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	rep := res.report(t, "many_vmas")
	if rep.Uncertain || rep.LostEvents != 0 {
		t.Errorf("lost %d events (notes %q): with the default ring nothing should be; stderr:\n%s",
			rep.LostEvents, rep.Notes, res.stderr)
	}
	if len(rep.VMAs) < scaleVMAs {
		t.Errorf("the report has %d VMAs, want at least %d", len(rep.VMAs), scaleVMAs)
	}
	sameLayout(t, rep, maps)
}

// raiseMaxMapCount makes vm.max_map_count at least n for the test, and
// puts the old value back after it.
func raiseMaxMapCount(t *testing.T, n int) {
	t.Helper()
	const path = "/proc/sys/vm/max_map_count"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	old, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if old >= n {
		return
	}
	if err := os.WriteFile(path, []byte(strconv.Itoa(n)), 0); err != nil {
		t.Fatalf("raise vm.max_map_count from %d to %d: %v", old, n, err)
	}
	t.Cleanup(func() {
		if err := os.WriteFile(path, []byte(strconv.Itoa(old)), 0); err != nil {
			t.Errorf("restore vm.max_map_count to %d: %v", old, err)
		}
	})
}
