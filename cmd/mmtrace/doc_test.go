package main

// The man page, the shell completions and `make install` are tested
// against the real flag set, so none of them drifts from the program.

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// docFlag is one flag as a document shows it.
type docFlag struct {
	short, arg string
}

// realFlags are the flags users see (not the hidden testing ones), plus
// pflag's own --help, with the argument name --help shows ("" for a
// switch).
func realFlags() map[string]docFlag {
	fs := newFlagSet(&options{}, io.Discard)
	flags := map[string]docFlag{"help": {short: "h"}}
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		arg, _ := pflag.UnquoteUsage(f)
		flags[f.Name] = docFlag{short: f.Shorthand, arg: arg}
	})
	return flags
}

// manFlags reads the OPTIONS section of a man page: each .TP entry's tag
// line, such as `.BR \-p ", " \-\-pid " \fIPID\fR"`.
func manFlags(t *testing.T, page string) map[string]docFlag {
	t.Helper()
	_, opts, ok := strings.Cut(page, "\n.SH OPTIONS\n")
	if !ok {
		t.Fatal("the man page has no OPTIONS section")
	}
	opts, _, _ = strings.Cut(opts, "\n.SH ")
	lines := strings.Split(opts, "\n")
	tag := regexp.MustCompile(`^(?:-([a-zA-Z]), )?--([a-z0-9-]+)(?: (\S+))?$`)
	flags := map[string]docFlag{}
	for i, l := range lines {
		if l != ".TP" || i+1 == len(lines) {
			continue
		}
		// Plain text of the tag: no macro, fonts, quotes or escapes.
		s := lines[i+1]
		s = regexp.MustCompile(`^\.[A-Z]+ `).ReplaceAllString(s, "")
		s = regexp.MustCompile(`\\f[BIR]`).ReplaceAllString(s, "")
		s = strings.ReplaceAll(s, `\-`, "-")
		s = strings.ReplaceAll(s, `"`, "")
		s = strings.ReplaceAll(strings.Join(strings.Fields(s), " "), " , ", ", ")
		m := tag.FindStringSubmatch(s)
		if m == nil {
			t.Errorf("man page: cannot read the option tag %q", lines[i+1])
			continue
		}
		if _, dup := flags[m[2]]; dup {
			t.Errorf("man page: --%s twice", m[2])
		}
		flags[m[2]] = docFlag{short: m[1], arg: m[3]}
	}
	return flags
}

// compareFlags reports what doc says that the flag set does not.
func compareFlags(t *testing.T, what string, doc map[string]docFlag) {
	t.Helper()
	real := realFlags()
	for name, f := range real {
		d, ok := doc[name]
		if !ok {
			t.Errorf("%s lacks --%s", what, name)
			continue
		}
		if d.short != f.short {
			t.Errorf("%s: --%s has short form %q, the program %q", what, name, d.short, f.short)
		}
		switch {
		case (d.arg == "") != (f.arg == ""):
			t.Errorf("%s: --%s takes argument %q, the program %q", what, name, d.arg, f.arg)
		case f.arg != "string" && f.arg != "int" && f.arg != "uints" && d.arg != f.arg:
			// A named argument (`NAME` in the usage) is named the same.
			t.Errorf("%s: --%s names its argument %q, the program %q", what, name, d.arg, f.arg)
		}
	}
	for name := range doc {
		if _, ok := real[name]; !ok {
			t.Errorf("%s documents --%s, which the program does not have", what, name)
		}
	}
}

func TestManPageFlags(t *testing.T) {
	b, err := os.ReadFile("../../doc/mmtrace.1")
	if err != nil {
		t.Fatal(err)
	}
	compareFlags(t, "doc/mmtrace.1", manFlags(t, string(b)))
}

// --help shows the same flags as the man page: both come from the flag set.
func TestHelpAgreesWithManPage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	mainStatus([]string{"--help"}, &stdout, &stderr)
	line := regexp.MustCompile(`^  (?:-([a-zA-Z]), |    )--([a-z0-9-]+)(?: (\S+))?  `)
	help := map[string]docFlag{"help": {short: "h"}}
	for _, l := range strings.Split(stderr.String(), "\n") {
		if m := line.FindStringSubmatch(l); m != nil {
			help[m[2]] = docFlag{short: m[1], arg: m[3]}
		}
	}
	compareFlags(t, "--help", help)
	b, err := os.ReadFile("../../doc/mmtrace.1")
	if err != nil {
		t.Fatal(err)
	}
	man := manFlags(t, string(b))
	for name, h := range help {
		if m := man[name]; m.short != h.short || (m.arg == "") != (h.arg == "") {
			t.Errorf("--%s: --help shows %+v, the man page %+v", name, h, m)
		}
	}
	// The man page renders without warnings where groff is installed.
	if _, err := exec.LookPath("groff"); err == nil {
		out, err := exec.Command("groff", "-man", "-Tutf8", "-ww", "-z", "../../doc/mmtrace.1").CombinedOutput()
		if err != nil || len(out) > 0 {
			t.Errorf("groff: %v\n%s", err, out)
		}
	}
}

// allFlagWords are every --long and -s form a completion must offer.
func allFlagWords() []string {
	var words []string
	for name, f := range realFlags() {
		words = append(words, "--"+name)
		if f.short != "" {
			words = append(words, "-"+f.short)
		}
	}
	slices.Sort(words)
	return words
}

// complete runs the bash completion function on a command line whose
// last word is being completed.
func complete(t *testing.T, words ...string) []string {
	t.Helper()
	script := `source ../../contrib/completion/mmtrace.bash
COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _mmtrace
printf '%s\n' "${COMPREPLY[@]}"`
	out, err := exec.Command("bash", append([]string{"-c", script, "bash"}, words...)...).Output()
	if err != nil {
		t.Fatalf("bash completion of %q: %v", words, err)
	}
	return strings.Fields(string(out))
}

func TestBashCompletion(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	offered := complete(t, "mmtrace", "-")
	for _, w := range allFlagWords() {
		if !slices.Contains(offered, w) {
			t.Errorf("bash completion does not offer %s (offers %q)", w, offered)
		}
	}
	for _, hidden := range []string{"--no-exec-vmas", "--backups-only"} {
		if slices.Contains(offered, hidden) {
			t.Errorf("bash completion offers the hidden %s", hidden)
		}
	}
	for _, c := range []struct {
		words []string
		want  []string
	}{
		{[]string{"mmtrace", "--format", ""}, []string{"json", "text"}},
		{[]string{"mmtrace", "--color", "a"}, []string{"always", "auto"}},
		{[]string{"mmtrace", "--backups", ""}, []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "auto"}},
	} {
		got := complete(t, c.words...)
		slices.Sort(got)
		if !slices.Equal(got, c.want) {
			t.Errorf("completing %q: %q, want %q", c.words, got, c.want)
		}
	}
	// Comm names come from /proc: the bash doing the completing is one.
	if got := complete(t, "mmtrace", "--comm", "ba"); !slices.Contains(got, "bash") {
		t.Errorf("--comm completion %q lacks bash", got)
	}
	// After --, a command.
	if got := complete(t, "mmtrace", "-p", "1", "--", "bas"); !slices.Contains(got, "bash") {
		t.Errorf("command completion after -- %q lacks bash", got)
	}
}

func TestZshCompletion(t *testing.T) {
	b, err := os.ReadFile("../../contrib/completion/_mmtrace")
	if err != nil {
		t.Fatal(err)
	}
	spec := string(b)
	if !strings.HasPrefix(spec, "#compdef mmtrace\n") {
		t.Errorf("_mmtrace does not start with #compdef mmtrace")
	}
	// Each flag appears as an _arguments spec: '--name[...' or {-s,--name}.
	for name, f := range realFlags() {
		long := regexp.MustCompile(`(?m)^  '[^']*` + regexp.QuoteMeta("--"+name) + `\[|[{,]` + regexp.QuoteMeta("--"+name) + `[},]`)
		if !long.MatchString(spec) {
			t.Errorf("zsh completion lacks --%s", name)
		}
		if f.short != "" && !strings.Contains(spec, "{-"+f.short+",--"+name+"}") {
			t.Errorf("zsh completion lacks -%s for --%s", f.short, name)
		}
	}
	for _, want := range []string{"(text json)", "(auto always never)", "/proc/[0-9]*/comm"} {
		if !strings.Contains(spec, want) {
			t.Errorf("zsh completion lacks %q", want)
		}
	}
	if _, err := exec.LookPath("zsh"); err == nil {
		if out, err := exec.Command("zsh", "-n", "../../contrib/completion/_mmtrace").CombinedOutput(); err != nil {
			t.Errorf("zsh -n: %v\n%s", err, out)
		}
	}
}

// make install lays out the tree a distribution packager expects, under
// DESTDIR and PREFIX.
func TestMakeInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds mmtrace")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	if os.Getenv("MMTRACE_BIN") != "" {
		t.Skip("a test VM: the source tree is read-only there")
	}
	dest := t.TempDir()
	cmd := exec.Command("make", "-C", "../..", "install", "DESTDIR="+dest, "PREFIX=/opt/mm")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	want := map[string]os.FileMode{
		"opt/mm/bin/mmtrace":                               0o755,
		"opt/mm/share/man/man1/mmtrace.1":                  0o644,
		"opt/mm/share/bash-completion/completions/mmtrace": 0o644,
		"opt/mm/share/zsh/site-functions/_mmtrace":         0o644,
	}
	var got []string
	_ = filepath.WalkDir(dest, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dest, path)
			got = append(got, rel)
		}
		return nil
	})
	for path, mode := range want {
		fi, err := os.Stat(filepath.Join(dest, path))
		if err != nil {
			t.Errorf("make install: %v", err)
			continue
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), mode)
		}
	}
	if len(got) != len(want) {
		t.Errorf("make install installed %q, want exactly %d files", got, len(want))
	}
	out, err := exec.Command(filepath.Join(dest, "opt/mm/bin/mmtrace"), "--version").Output()
	if err != nil || !strings.HasPrefix(string(out), "mmtrace ") {
		t.Errorf("installed mmtrace --version: %v, %q", err, out)
	}
}
