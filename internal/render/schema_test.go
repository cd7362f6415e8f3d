package render

import (
	"bytes"
	"encoding/json"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/mmtrace/mmtrace/internal/events"
	"github.com/mmtrace/mmtrace/internal/layout"
)

// schemaStream is every kind of line the JSON renderer writes, in every
// form: each event kind (with -v, so VMA lines too), failed and
// successful calls, the null forms, cut command lines, each report
// fixture, a report with nothing to blame, and the summary.
func schemaStream(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	jr := NewJSON(&buf, Options{Verbose: true})
	drive(jr, hintSqueezeStream(), nil)
	drive(jr, miscStream(), nil)
	tracked := layout.Change{Tracked: true, Comm: "x"}
	for _, ev := range []events.Event{
		{Kind: events.KindUnmodeled, Syscall: 30, Addr: 0x1000, Len: 2, NewLen: 3, Ret: 0x7f0000000000},
		{Kind: events.KindUnmodeled, Syscall: 31, Ret: -22},
		{Kind: events.KindMunmap, Addr: 0x1000, Len: 4096, Ret: -22},
		{Kind: events.KindExecve, Path: "/bin/sh", Argv: []string{"sh", "-c"}, ArgvTruncated: true},
		{Kind: events.KindExec, Exec: &events.Exec{Filename: "/bin/sh", Argv: []string{"sh"}, ArgvTruncated: true, Comm: "sh"}},
		{Kind: events.KindMremap, Addr: 0x1000, Len: 4096, NewLen: 8192, Ret: -12},
		{Kind: events.KindPersonality, Addr: 8, Ret: -1},
	} {
		jr.Event(&ev, tracked)
	}
	ready := tracked
	ready.SnapshotReady, ready.Headroom = true, 1<<30
	jr.Event(&events.Event{Kind: events.KindExec, Exec: &events.Exec{Comm: "sh"}}, ready)
	var failing []*layout.Report
	for _, g := range goldenReports {
		r := g.report()
		jr.Report(r)
		failing = append(failing, r)
	}
	nulls := healthyBash64()
	nulls.BoundedBy = nil
	nulls.BrkFailures = []layout.BrkFailure{{Seq: 9, Requested: 0x55d0c8000000, Result: 0x55d0c7c13000}}
	nulls.Notes = []string{"a note"}
	nulls.ArgvTruncated = true
	jr.Report(nulls)
	jr.Report(&layout.Report{}) // nothing known: empty lists, not null
	jr.Summary(sessionSummary(failing))
	jr.Summary(Summary{})
	if err := jr.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Every line the fast writer makes is exactly what encoding/json makes
// of the schema's Go type for it: no key the type lacks (strict
// decoding), none missing, same order, same formats. Every type is seen.
func TestJSONLinesMatchSchema(t *testing.T) {
	seen := map[string]bool{}
	for _, line := range bytes.Split(bytes.TrimSpace(schemaStream(t)), []byte("\n")) {
		var head struct{ Type string }
		if err := json.Unmarshal(line, &head); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, line)
		}
		newLine, ok := Lines[head.Type]
		if !ok {
			t.Errorf("a %q line has no type in the schema", head.Type)
			continue
		}
		seen[head.Type] = true
		v := newLine()
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			t.Errorf("%s line does not fit %T: %v\n%s", head.Type, v, err, line)
			continue
		}
		var again bytes.Buffer
		enc := json.NewEncoder(&again)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
		// The writer escapes two things encoding/json writes as they
		// are (the same JSON value): U+FFFD and DEL.
		want := bytes.ReplaceAll(line, []byte(`\ufffd`), []byte("\uFFFD"))
		want = bytes.ReplaceAll(want, []byte(`\u007f`), []byte("\x7f"))
		if got := bytes.TrimSpace(again.Bytes()); !bytes.Equal(got, want) {
			t.Errorf("%s line differs from its type's encoding:\nwriter: %s\ntype:   %s", head.Type, line, got)
		}
	}
	for typ := range Lines {
		if !seen[typ] {
			t.Errorf("no %q line was written: the test misses a type", typ)
		}
	}
}

// Every event kind has a line type.
func TestEveryKindHasALineType(t *testing.T) {
	for k := events.KindExec; k <= events.KindUnmodeled; k++ {
		if _, ok := Lines[k.String()]; !ok {
			t.Errorf("event kind %v has no line type", k)
		}
	}
}

// jsonKeys lists the JSON keys of a schema type, nested ones included.
func jsonKeys(t reflect.Type, into map[string]bool) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return
	}
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous {
			jsonKeys(f.Type, into)
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		into[name] = true
		jsonKeys(f.Type, into)
	}
}

func sortedKeys(m map[string]bool) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// The README documents the schema: the report's keys, the summary's,
// and the kinds of event line are those of the Go types.
func TestReadmeAgreesWithSchema(t *testing.T) {
	readme := readme(t)
	report := map[string]bool{}
	jsonKeys(reflect.TypeFor[ReportLine](), report)
	if got, want := readmeReportKeys(t), sortedKeys(report); !slices.Equal(got, want) {
		t.Errorf("README report keys %v\nReportLine's          %v", got, want)
	}

	i := strings.Index(readme, "`{\"type\":\"summary\"")
	if i < 0 {
		t.Fatal("the README no longer documents the summary line")
	}
	line := readme[i+1 : i+strings.Index(readme[i:], "}`")+1]
	var documented []string
	for _, m := range keyRE.FindAllStringSubmatch(line, -1) {
		documented = append(documented, m[1])
	}
	var top []string
	for i := range reflect.TypeFor[SummaryLine]().NumField() {
		name, _, _ := strings.Cut(reflect.TypeFor[SummaryLine]().Field(i).Tag.Get("json"), ",")
		top = append(top, name)
	}
	if !slices.Equal(documented, top) {
		t.Errorf("README summary keys %v\nSummaryLine's         %v", documented, top)
	}

	i = strings.Index(readme, "Event lines (")
	if i < 0 {
		t.Fatal("the README no longer lists the event lines")
	}
	list := readme[i : i+strings.Index(readme[i:], ")")]
	var kinds []string
	for _, m := range tickRE.FindAllStringSubmatch(list, -1) {
		kinds = append(kinds, m[1])
	}
	slices.Sort(kinds)
	var lineKinds []string
	for typ := range Lines {
		if typ != "report" && typ != "summary" {
			lineKinds = append(lineKinds, typ)
		}
	}
	slices.Sort(lineKinds)
	if !slices.Equal(kinds, lineKinds) {
		t.Errorf("README event lines %v\nschema's           %v", kinds, lineKinds)
	}
}

// The fast writer against encoding/json of the same typed lines: the
// reason json.go appends bytes by hand (run both with -bench JSONEvent).
func BenchmarkJSONEventEncodingJSON(b *testing.B) {
	st := hintSqueezeStream()[15:25]
	var buf bytes.Buffer
	jr := NewJSON(&buf, Options{})
	for i := range st {
		jr.Event(&st[i].ev, st[i].ch)
	}
	if err := jr.Flush(); err != nil {
		b.Fatal(err)
	}
	var typed []any
	for _, line := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
		var head struct{ Type string }
		_ = json.Unmarshal(line, &head)
		v := Lines[head.Type]()
		if err := json.Unmarshal(line, v); err != nil {
			b.Fatal(err)
		}
		typed = append(typed, v)
	}
	enc := json.NewEncoder(io.Discard)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := enc.Encode(typed[i%len(typed)]); err != nil {
			b.Fatal(err)
		}
	}
}
