package main

// Paths as the traced process sees them: in a chroot and in a new mount
// namespace after pivot_root, the report's file names must equal the
// process's own /proc/self/maps, and the report says where its root is.

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// bindRoot makes dir a recursive bind mount of / (so the fixtures, /proc
// and the test's temporary files are inside) and removes it at the end.
func bindRoot(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "--rbind", "/", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount --rbind / %s: %v\n%s", dir, err, out)
	}
	// Private, so unmounting it does not reach back into the real tree.
	exec.Command("mount", "--make-rprivate", dir).Run()
	t.Cleanup(func() { exec.Command("umount", "-R", "-l", dir).Run() })
	return dir
}

// Also with the exec-time mappings read from /proc (kernels before 6.7),
// which names them as mmtrace sees them, from outside the chroot.
func TestPathsInChroot(t *testing.T) {
	_, dir := binaries(t)
	root := bindRoot(t)
	for _, how := range [][]string{nil, {"--no-exec-vmas"}} {
		t.Run(strings.Join(append([]string{"exec VMAs"}, how...), " "), func(t *testing.T) {
			maps := filepath.Join(t.TempDir(), "maps")
			args := append(append([]string{}, how...), "--format", "json", "--",
				"chroot", root, filepath.Join(dir, "hint_squeeze"), "/etc/passwd")
			var rep jsonReport
			// The /proc fallback reads the new image's maps when its exec
			// record arrives; a loaded machine can let the short fixture
			// exit first, and the report then says the exec mappings are
			// unknown (uncertain, never wrong). Try again then.
			for try := 1; ; try++ {
				res := run(t, []string{"MAPS_OUT=" + maps}, args...)
				if res.code != 0 {
					t.Fatalf("exit %d\n%s", res.code, res.stderr)
				}
				rep = res.report(t, "hint_squeeze")
				gone := strings.Contains(strings.Join(rep.Notes, "\n"), "/proc was gone")
				if !gone || try == 3 {
					break
				}
				t.Logf("try %d: the fixture exited before its maps were read from /proc", try)
			}
			t.Logf("uncertain %v, notes %q", rep.Uncertain, rep.Notes)
			sameLayout(t, rep, maps) // names as the process saw them
			for _, v := range rep.VMAs {
				if strings.HasPrefix(v.Path, root) {
					t.Errorf("%s named from the global root: %s", v.Start, v.Path)
				}
			}
			if !strings.Contains(strings.Join(rep.Notes, "\n"), "its root is "+root) {
				t.Errorf("the report does not say the process's root is %s: %q", root, rep.Notes)
			}
		})
	}
}

// unshare -m, then pivot_root into a bind of /: the process's root is its
// namespace's root, in a namespace that is not mmtrace's.
func TestPathsInMountNamespace(t *testing.T) {
	_, dir := binaries(t)
	for _, tool := range []string{"unshare", "pivot_root"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s (util-linux) is needed: %v", tool, err)
		}
	}
	root := bindRoot(t)
	if err := os.MkdirAll(filepath.Join(root, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	old := filepath.Join("/tmp", "mmtrace-oldroot-"+filepath.Base(root))
	maps := filepath.Join(t.TempDir(), "maps")
	script := `set -e
mount --make-rprivate /
mount --rbind "$1" "$1"
cd "$1"
mkdir -p "$2"
pivot_root . ".$2"
cd /
umount -l "$2"
rmdir "$2"
exec "$3" /etc/passwd`
	res := run(t, []string{"MAPS_OUT=" + maps}, "--format", "json", "--",
		"unshare", "-m", "sh", "-c", script, "sh", root, old, filepath.Join(dir, "hint_squeeze"))
	if res.code != 0 {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	rep := res.report(t, "hint_squeeze")
	sameLayout(t, rep, maps)
	if !strings.Contains(strings.Join(rep.Notes, "\n"), "mount namespace mnt:[") {
		t.Errorf("the report does not name the process's mount namespace: %q", rep.Notes)
	}
}
