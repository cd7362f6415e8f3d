// Package layout rebuilds the address space of each traced process image
// from events and judges its brk area. It is pure Go: it never touches the
// kernel, so it is tested with synthetic and recorded event streams.
package layout
