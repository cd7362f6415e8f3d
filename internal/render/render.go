// Package render turns events and layout verdicts into what people read:
// per-event lines, report blocks with the address-space picture and the
// short story of an image (text), JSON lines, and an SVG timeline. It never
// judges anything itself; every verdict comes from internal/layout.
package render

import (
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mmtrace/mmtrace/internal/events"
	"github.com/mmtrace/mmtrace/internal/layout"
)

// DefaultWidth is used when Options.Width is zero (not a terminal).
const DefaultWidth = 100

// Options shape all renderers.
type Options struct {
	Color            bool   // ANSI colour (see ColorWanted)
	Width            int    // columns available; 0 means DefaultWidth
	SqueezeThreshold uint64 // headroom below this is shown as squeezed; 0 means layout.DefaultSqueezeThreshold
	Verbose          bool   // also show the exec snapshot's VMA records
}

func (o Options) width() int {
	if o.Width <= 0 {
		return DefaultWidth
	}
	if o.Width < 60 {
		return 60 // below this the picture cannot say anything useful
	}
	return o.Width
}

func (o Options) threshold() uint64 {
	if o.SqueezeThreshold == 0 {
		return layout.DefaultSqueezeThreshold
	}
	return o.SqueezeThreshold
}

// Renderer receives the stream in the order cmd/mmtrace drives it: Event
// for every decoded event, Snapshot when a new image's first layout is
// complete, Report when an image ends, Summary once at the end. Output is
// buffered: call Flush after each batch of events and before exiting.
type Renderer interface {
	Event(*events.Event, layout.Change)
	Snapshot(*layout.Report)
	Report(*layout.Report)
	Summary(Summary)
	Flush() error
}

// Summary closes a run.
type Summary struct {
	Images    int              // traced process images reported
	Squeezed  int              // images whose headroom fell below the threshold
	BrkFailed int              // images with at least one failed brk
	Lost      uint64           // records dropped in total
	Failing   []*layout.Report // the images that fail --check
	Duration  time.Duration    // how long mmtrace traced
	Check     bool             // --check was given
}

// ColorWanted says whether f is a terminal and the user has not asked for
// no colour (https://no-color.org: NO_COLOR set to anything non-empty).
func ColorWanted(f *os.File) bool {
	if f == nil || os.Getenv("NO_COLOR") != "" {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// TerminalWidth returns the number of columns of the terminal f, or 0 when
// f is not a terminal (then renderers use DefaultWidth).
func TerminalWidth(f *os.File) int {
	if f == nil {
		return 0
	}
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil || ws.Col == 0 {
		return 0
	}
	return int(ws.Col)
}
