package version

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestFormat(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.99.1", Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.time", Value: "2026-12-02T04:00:00Z"},
		{Key: "vcs.modified", Value: "true"}, {Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "amd64"},
	}}
	want := "mmtrace v1.2.3\n  revision 0123456789ab (2026-12-02T04:00:00Z, modified)\n  built with go1.99.1 for linux/amd64\n"
	if got := Format(bi); got != want {
		t.Errorf("Format:\n%s\nwant\n%s", got, want)
	}
	if got := Format(&debug.BuildInfo{GoVersion: "go1.99.1"}); !strings.HasPrefix(got, "mmtrace (devel)\n  built with go1.99.1") {
		t.Errorf("Format without build info: %q", got)
	}
}

// A test binary has build information: Text names this Go.
func TestText(t *testing.T) {
	if got := Text(); !strings.HasPrefix(got, "mmtrace ") || !strings.Contains(got, runtime.Version()) {
		t.Errorf("Text() = %q", got)
	}
}
