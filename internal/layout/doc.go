// Package layout rebuilds the address space of each traced process image
// from events and judges its brk area. It is pure Go: it never touches the
// kernel, so it is tested with synthetic and recorded event streams.
//
// A Tracker keeps one image per traced PID, started by an exec (its VMA
// snapshot is the ELF loader's work), a fork (a copy of the parent) or
// /proc (--pid). Each image is a sorted slice of regions that mmap, munmap,
// mprotect, mremap and brk split, trim and replace as the kernel does to
// VMAs. Regions are finer than VMAs: each remembers the event that created
// it and how it was placed, so the squeezer can be named exactly. Reports
// join them back the way /proc/PID/maps shows them, with "[heap]" and
// "[stack]" labelled by the kernel's own rules, then MergeAdjacent.
//
// A Tracker is not safe for concurrent use: feed it from one goroutine.
package layout
