package main

// Names as /proc shows them: the names fixture maps memfds, an unlinked
// file, shared anonymous memory, /dev/zero and an io_uring ring, and the
// report's mappings must equal its own /proc/self/maps, names included.

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestNamesAsProcShowsThem(t *testing.T) {
	_, dir := binaries(t)
	for _, abi := range []string{"", "32"} {
		t.Run("names"+abi, func(t *testing.T) {
			need32(t, abi)
			maps := filepath.Join(t.TempDir(), "maps")
			res := run(t, []string{"MAPS_OUT=" + maps}, "--format", "json", "--", filepath.Join(dir, "names"+abi), t.TempDir())
			if res.code != 0 {
				t.Fatalf("exit %d\n%s", res.code, res.stderr)
			}
			rep := res.report(t, "names"+abi)
			sameLayout(t, rep, maps)
			// The kinds the fixture makes, each present by its /proc name
			// (sameLayout compared them; this catches a fixture that made
			// none of them).
			var all []string
			for _, v := range rep.VMAs {
				all = append(all, v.Path)
			}
			joined := strings.Join(all, "\n")
			for _, want := range []string{"/memfd:mmtrace-a (deleted)", "/memfd:mmtrace-b (deleted)", "/unlinked (deleted)", "/dev/zero (deleted)"} {
				if !strings.Contains(joined, want) {
					t.Errorf("no mapping named %q in %q", want, all)
				}
			}
		})
	}
}
