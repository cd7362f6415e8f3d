package main

// Mappings made outside mmap: each call the unmodeled fixture makes is
// either followed exactly (pkey_mprotect, checked against the process's
// own /proc/self/maps) or makes the report uncertain, naming the call,
// while /proc/self/maps shows what the call changed.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestUnmodeledCallsNamed(t *testing.T) {
	_, dir := binaries(t)
	for _, abi := range []string{"", "32"} {
		for _, c := range []struct {
			call   string
			inMaps string // what /proc/self/maps shows of the call ("" : nothing left)
		}{
			{"shmat", "/SYSV"},
			{"shmdt", ""},
			{"io_setup", "/[aio] (deleted)"},
		} {
			t.Run(c.call+abi, func(t *testing.T) {
				need32(t, abi)
				maps := filepath.Join(t.TempDir(), "maps")
				res := run(t, []string{"MAPS_OUT=" + maps}, "--format", "json", "--", filepath.Join(dir, "unmodeled"+abi), c.call)
				if res.code != 0 {
					t.Fatalf("exit %d\n%s", res.code, res.stderr)
				}
				b, err := os.ReadFile(maps)
				if err != nil {
					t.Fatal(err)
				}
				if c.inMaps != "" && !strings.Contains(string(b), c.inMaps) {
					t.Fatalf("the fixture's maps show no %s:\n%s", c.inMaps, b)
				}
				rep := res.report(t, "unmodeled"+abi)
				if !rep.Uncertain || !strings.Contains(strings.Join(rep.Notes, "\n"), c.call+" (seq ") {
					t.Errorf("%s: uncertain %v, notes %q; want an uncertain report naming %s", c.call, rep.Uncertain, rep.Notes, c.call)
				}
			})
		}
		// pkey_mprotect is mprotect with a key: followed exactly.
		t.Run("pkey_mprotect"+abi, func(t *testing.T) {
			need32(t, abi)
			maps := filepath.Join(t.TempDir(), "maps")
			res := run(t, []string{"MAPS_OUT=" + maps}, "--format", "json", "--", filepath.Join(dir, "unmodeled"+abi), "pkey_mprotect")
			if res.code != 0 {
				t.Fatalf("exit %d\n%s", res.code, res.stderr)
			}
			rep := res.report(t, "unmodeled"+abi)
			if rep.Uncertain {
				t.Errorf("pkey_mprotect made the report uncertain: %q", rep.Notes)
			}
			sameLayout(t, rep, maps)
		})
	}
}

// The shmat case of the hostile-input report: a segment above the heap,
// then a brk into it. The verdict cannot be trusted and must say so.
func TestShmatAboveHeapIsNotSilent(t *testing.T) {
	_, dir := binaries(t)
	res := run(t, nil, "--format", "json", "--", filepath.Join(dir, "unmodeled"), "shmat")
	if res.code != 0 {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	rep := res.report(t, "unmodeled")
	if len(rep.BrkFailures) != 1 {
		t.Fatalf("brk into the segment: %d failures recorded, want 1", len(rep.BrkFailures))
	}
	if !rep.Uncertain {
		t.Errorf("a failed brk next to an unmodelled shmat is reported as certain: %+v", rep.BrkFailures)
	}
}
