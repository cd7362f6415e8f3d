package kernelreport

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/mmtrace/mmtrace/internal/loader"
)

func report() *loader.KernelReport {
	return &loader.KernelReport{
		Kernel: "6.18.0", Machine: "x86_64", CanTrace: false,
		Blockers: []string{"no BTF", "no ring buffer"},
		Checks: []loader.Check{
			{Name: "BTF", Result: loader.No, Required: true, Detail: "missing"},
			{Name: "kfunc bpf_iter_task_vma_new", Result: loader.Yes, Detail: "6.7+"},
		},
		Path:      []loader.Choice{{What: "exec mappings", Choice: "kernel walk", Why: "the kfunc is there"}, {What: "backups", Choice: "0"}},
		Uncertain: []string{"nothing"},
	}
}

// The text aligns each table's columns and ends with the reasons.
func TestWriteText(t *testing.T) {
	var b bytes.Buffer
	if err := WriteText(&b, report()); err != nil {
		t.Fatal(err)
	}
	want := "kernel 6.18.0 (x86_64): mmtrace cannot trace here\n\n" +
		"  result  needed    check                        detail\n" +
		"  no      required  BTF                          missing\n" +
		"  yes     optional  kfunc bpf_iter_task_vma_new  6.7+\n" +
		"\npath mmtrace takes here\n" +
		"  exec mappings  kernel walk (the kfunc is there)\n" +
		"  backups        0\n" +
		"\nwhat reports will call uncertain or note\n  - nothing\n" +
		"\nwhy mmtrace cannot trace here\n  - no BTF\n  - no ring buffer\n\n"
	if b.String() != want {
		t.Errorf("WriteText:\n%s\nwant\n%s", b.String(), want)
	}
}

// One line, "type" first, the report's fields beside it.
func TestWriteJSON(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJSON(&b, report()); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b.Bytes(), []byte(`{"type":"kernel","kernel":"6.18.0"`)) || bytes.Count(b.Bytes(), []byte("\n")) != 1 {
		t.Errorf("WriteJSON: %s", b.String())
	}
	var got loader.KernelReport
	if err := json.Unmarshal(b.Bytes(), &got); err != nil || !reflect.DeepEqual(&got, report()) {
		t.Errorf("the line decodes to %+v, %v", got, err)
	}
}

func TestRefusal(t *testing.T) {
	r := report()
	if got, want := Refusal(r), "cannot trace on this kernel: no BTF (and 1 more reasons, listed above)"; got != want {
		t.Errorf("Refusal = %q, want %q", got, want)
	}
	r.Blockers = r.Blockers[:1]
	if got, want := Refusal(r), "cannot trace on this kernel: no BTF"; got != want {
		t.Errorf("Refusal = %q, want %q", got, want)
	}
	r.CanTrace = true
	if got := Refusal(r); got != "" {
		t.Errorf("Refusal of a kernel that can trace = %q", got)
	}
}
