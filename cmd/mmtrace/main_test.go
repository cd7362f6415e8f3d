package main

import (
	"bytes"
	"strings"
	"testing"
)

// Mistakes on the command line: one sentence, a pointer to --help, exit 2.
func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--format", "xml"},
		{"--squeeze-threshold", "lots"},
		{"--squeeze-threshold", "12 parsecs"},
		{"--comm", ""},
		{"--comm", "a-name-longer-than-15"},
		{"--pid", "0"},
		{"--pid", "abc"},
		{"--ring-size", "1000"},
		{"--backups", "many"},
		{"--backups", "-1"},
		{"--backups", "9"},
		{"--color", "purple"},
		{"--no-such-flag"},
		{"stray"},
		{"--"},
		{"-r", "x.mmt", "-w", "y.mmt"},
		{"-r", "x.mmt", "--", "true"},
		{"--pid", "1", "--", "true"},
	} {
		var stdout, stderr bytes.Buffer
		code := mainStatus(args, &stdout, &stderr)
		if code != exitUsage {
			t.Errorf("%q: exit %d, want %d", args, code, exitUsage)
		}
		msg := stderr.String()
		if !strings.HasPrefix(msg, "mmtrace: ") || !strings.Contains(msg, "mmtrace --help") || strings.Contains(msg, "panic") {
			t.Errorf("%q: stderr %q", args, msg)
		}
		if stdout.Len() != 0 {
			t.Errorf("%q: wrote to stdout: %q", args, stdout.String())
		}
	}
}

// --help teaches the three uses and lists every flag with its default.
func TestHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := mainStatus([]string{"--help"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	help := stderr.String()
	for _, want := range []string{
		"sudo mmtrace --comm bash", "-w incident.mmt", "mmtrace -r incident.mmt", "--check",
		"--squeeze-threshold SIZE", `(default "64MiB")`, `(default "text")`, "--pid PID", "--svg FILE",
	} {
		if !strings.Contains(help, want) {
			t.Errorf("--help lacks %q", want)
		}
	}
	if strings.Contains(help, "no-exec-vmas") {
		t.Errorf("--help shows the hidden testing flag")
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]uint64{
		"4096": 4096, "64K": 64 << 10, "64KiB": 64 << 10, "64MiB": 64 << 20, "1.5G": 3 << 29,
		"2 GB": 2 << 30, "1t": 1 << 40, "0": 0,
	} {
		got, err := parseSize(in)
		if err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "K", "-1", "1..2M", "12 parsecs"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) accepted", in)
		}
	}
}

// Replay errors are a sentence and exit 1, without root.
func TestReplayMissingFile(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := mainStatus([]string{"-r", "/nonexistent/trace.mmt"}, &stdout, &stderr)
	if code != exitError || !strings.Contains(stderr.String(), "/nonexistent/trace.mmt") {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}
