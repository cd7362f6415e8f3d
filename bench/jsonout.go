package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// outputCounts is what an mmtrace --format json output file held.
type outputCounts struct {
	events     uint64 // event lines (everything but report and summary)
	burst      uint64 // mmap and munmap lines of the burst workload's length
	lost       uint64 // the summary's lost_events
	images     uint64 // the summary's images: process images traced
	hasSummary bool
}

// burstLen is the mapping length only the burst workload uses (burst.c).
const burstLen = 7 * 4096

var (
	reportPrefix  = []byte(`{"type":"report"`)
	summaryPrefix = []byte(`{"type":"summary"`)
	mmapPrefix    = []byte(`{"type":"mmap"`)
	munmapPrefix  = []byte(`{"type":"munmap"`)
	burstField    = fmt.Appendf(nil, `"len":%d,`, burstLen)
)

func countOutputFile(path string) (outputCounts, error) {
	f, err := os.Open(path)
	if err != nil {
		return outputCounts{}, fmt.Errorf("read mmtrace output: %w", err)
	}
	defer f.Close()
	c, err := countOutput(f)
	if err != nil {
		return c, fmt.Errorf("read mmtrace output %s: %w", path, err)
	}
	return c, nil
}

// countOutput counts lines by their "type" prefix (mmtrace writes "type"
// first) and decodes only the summary line.
func countOutput(r io.Reader) (outputCounts, error) {
	var c outputCounts
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			if err := c.add(line); err != nil {
				return c, err
			}
		}
		// A line longer than the buffer (a big report): it was counted
		// by its start, skip the rest.
		for err == bufio.ErrBufferFull {
			_, err = br.ReadSlice('\n')
		}
		if err == io.EOF {
			return c, nil
		}
		if err != nil {
			return c, err
		}
	}
}

func (c *outputCounts) add(line []byte) error {
	switch {
	case bytes.HasPrefix(line, reportPrefix):
	case bytes.HasPrefix(line, summaryPrefix):
		var s struct {
			Lost   uint64 `json:"lost_events"`
			Images uint64 `json:"images"`
		}
		if err := json.Unmarshal(line, &s); err != nil {
			return fmt.Errorf("summary line: %w", err)
		}
		c.lost, c.images, c.hasSummary = s.Lost, s.Images, true
	default:
		c.events++
		if (bytes.HasPrefix(line, mmapPrefix) || bytes.HasPrefix(line, munmapPrefix)) && bytes.Contains(line, burstField) {
			c.burst++
		}
	}
	return nil
}
