// Package version says which mmtrace this is, for --version: the module
// version, the VCS revision the build recorded and the Go that built it.
package version

import (
	"cmp"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Text is what --version prints: the module version (a tag or a
// pseudo-version with go install, "(devel)" in a checkout), the VCS
// revision where the build recorded one, and the Go version.
func Text() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = &debug.BuildInfo{GoVersion: runtime.Version()}
	}
	return Format(bi)
}

// Format is Text for the given build information.
func Format(bi *debug.BuildInfo) string {
	version := cmp.Or(bi.Main.Version, "(devel)")
	var b strings.Builder
	fmt.Fprintf(&b, "mmtrace %s\n", version)
	set := map[string]string{}
	for _, s := range bi.Settings {
		set[s.Key] = s.Value
	}
	if rev := set["vcs.revision"]; rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		var extra []string
		if t := set["vcs.time"]; t != "" {
			extra = append(extra, t)
		}
		if set["vcs.modified"] == "true" {
			extra = append(extra, "modified")
		}
		fmt.Fprintf(&b, "  revision %s", rev)
		if len(extra) > 0 {
			fmt.Fprintf(&b, " (%s)", strings.Join(extra, ", "))
		}
		b.WriteString("\n")
	}
	goos, goarch := cmp.Or(set["GOOS"], runtime.GOOS), cmp.Or(set["GOARCH"], runtime.GOARCH)
	fmt.Fprintf(&b, "  built with %s for %s/%s\n", cmp.Or(bi.GoVersion, runtime.Version()), goos, goarch)
	return b.String()
}
