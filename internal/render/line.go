package render

import (
	"strings"
	"unicode/utf8"
)

// ANSI SGR parameters used across the text output.
const (
	sgrNone   = ""
	sgrBold   = "1"
	sgrDim    = "2"
	sgrRed    = "31"
	sgrBadRed = "1;31"
	sgrGreen  = "32"
	sgrYellow = "33"
)

// kindBarSGR paints a mapping's row of the picture as a solid block.
var kindBarSGR = [...]string{
	kindAnon: "2;7", kindText: "7;34", kindData: "7;36", kindHeap: "1;7;32",
	kindFile: "7;33", kindStack: "7;35", kindSpecial: "7;35", kindKernel: sgrDim,
}

// styled is a line of text made of coloured segments, so that it can be
// cut to the terminal width by visible characters and printed with or
// without ANSI colour.
type styled struct {
	segs []segment
}

type segment struct {
	text string
	sgr  string
}

func (l *styled) add(text, sgr string) { l.segs = append(l.segs, segment{text, sgr}) }

func (l *styled) width() int {
	n := 0
	for _, s := range l.segs {
		n += utf8.RuneCountInString(printable(s.text))
	}
	return n
}

// printable escapes what a terminal must not see raw: control characters
// (a file name may hold a newline or an escape sequence) and invalid
// UTF-8, as \xNN.
func printable(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || r < 0x20 || (r >= 0x7f && r < 0xa0) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || r < 0x20 || (r >= 0x7f && r < 0xa0) {
			for _, c := range []byte(s[i : i+size]) {
				b.WriteString(`\x`)
				b.WriteByte("0123456789abcdef"[c>>4])
				b.WriteByte("0123456789abcdef"[c&0xf])
			}
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// render writes the line, cut to width visible characters (ending in "…"
// when cut), trailing blanks removed, with colour when asked.
func (l *styled) render(width int, color bool) string {
	var b strings.Builder
	total := l.width()
	room := total
	if width > 0 && total > width {
		room = width - 1
	}
	for _, s := range l.segs {
		text := printable(s.text)
		if n := utf8.RuneCountInString(text); n > room {
			text = cutRunes(text, room)
		}
		room -= utf8.RuneCountInString(text)
		if color && s.sgr != "" && (strings.TrimSpace(text) != "" || solid(s.sgr)) {
			b.WriteString("\x1b[" + s.sgr + "m" + text + "\x1b[0m")
		} else {
			b.WriteString(text)
		}
		if room <= 0 {
			break
		}
	}
	if width > 0 && total > width {
		b.WriteString("…")
		return b.String()
	}
	return strings.TrimRight(b.String(), " ")
}

// appendLine appends the line as render(0, color) returns it, without
// building strings, and removes the trailing blanks of all of b: the
// per-event path, after the plain text it lays out itself.
func (l *styled) appendLine(b []byte, color bool) []byte {
	room := l.width()
	for _, s := range l.segs {
		text := printable(s.text)
		room -= utf8.RuneCountInString(text)
		if color && s.sgr != "" && (strings.TrimSpace(text) != "" || solid(s.sgr)) {
			b = append(b, "\x1b["...)
			b = append(b, s.sgr...)
			b = append(b, 'm')
			b = append(b, text...)
			b = append(b, "\x1b[0m"...)
		} else {
			b = append(b, text...)
		}
		if room <= 0 {
			break
		}
	}
	for len(b) > 0 && b[len(b)-1] == ' ' {
		b = b[:len(b)-1]
	}
	return b
}

// solid reports whether sgr paints the background (reverse video): then
// blanks must be coloured too, as in a mapping's bar.
func solid(sgr string) bool {
	for _, p := range strings.Split(sgr, ";") {
		if p == "7" {
			return true
		}
	}
	return false
}

// cutRunes returns the first n runes of s.
func cutRunes(s string, n int) string {
	if n <= 0 {
		return ""
	}
	i := 0
	for pos := range s {
		if i == n {
			return s[:pos]
		}
		i++
	}
	return s
}

// fit pads or cuts s to exactly n runes, cutting with "…".
func fit(s string, n int) string {
	c := utf8.RuneCountInString(s)
	switch {
	case c == n:
		return s
	case c < n:
		return s + strings.Repeat(" ", n-c)
	case n <= 1:
		return cutRunes(s, n)
	}
	return cutRunes(s, n-1) + "…"
}

// padLeft right-aligns s in n runes.
func padLeft(s string, n int) string {
	c := utf8.RuneCountInString(s)
	if c >= n {
		return s
	}
	return strings.Repeat(" ", n-c) + s
}
