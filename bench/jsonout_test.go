package main

import (
	"strings"
	"testing"
)

func TestCountOutput(t *testing.T) {
	in := `{"type":"exec","seq":1,"pid":10}
{"type":"mmap","seq":2,"pid":10,"addr":"0x0","len":28672,"prot":"r--"}
{"type":"munmap","seq":3,"pid":10,"addr":"0x7f0000000000","len":28672,"result":0}
{"type":"mmap","seq":4,"pid":10,"addr":"0x0","len":4096,"prot":"r--"}
{"type":"brk","seq":5,"pid":10,"requested":"0x0"}
{"type":"report","pid":10,"vmas":[]}
{"type":"summary","images":1,"lost_events":7,"failing":[]}
`
	c, err := countOutput(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if c.events != 5 || c.burst != 2 || c.lost != 7 || c.images != 1 || !c.hasSummary {
		t.Errorf("countOutput = %+v, want 5 events, 2 burst, 7 lost, 1 image, a summary", c)
	}
}

func TestCountOutputLongLine(t *testing.T) {
	long := `{"type":"report","vmas":["` + strings.Repeat("x", 3<<20) + "\"]}\n"
	c, err := countOutput(strings.NewReader(long + `{"type":"exit","pid":1}` + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.events != 1 || c.hasSummary {
		t.Errorf("countOutput = %+v, want 1 event and no summary", c)
	}
}
