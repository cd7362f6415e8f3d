// Package record writes and reads mmtrace recordings: the files of
// `mmtrace -w FILE` and `mmtrace -r FILE`.
//
// A recording holds the raw records exactly as the kernel programs wrote
// them to the ring buffer, plus records the consumer synthesises in the same
// byte format (lost-event counts). This package frames those records; it
// never looks inside them. internal/events decodes them on replay.
//
// # File format, version 1
//
// All integers of the framing are little-endian, whatever the machine, so a
// recording made on one machine reads on another. The record payloads are
// kernel structs in the byte order of the recording machine; the header
// says which, and the reader refuses a recording of the other byte order.
//
//	preamble
//	  0   magic  "\x89mmtrace\r\n\x1a\n" (12 bytes)
//	 12   u32    format version (1)
//	 16   u32    header length n (at most 1 MiB)
//	 20   [n]    header, a JSON object (see Header; unknown fields are ignored)
//	 20+n u32    CRC32C (Castagnoli) of bytes 12 .. 20+n
//	frames, one after another until the end of the file
//	  0   2 bytes  sync marker 0xE5 0x7A
//	  2   u8       kind: 1 record, 2 end of recording
//	  3   u8       flags: 0 (a frame with other flags is skipped as unknown)
//	  4   u32      payload length p (at most MaxRecord)
//	  8   [p]      payload
//	  8+p u32      CRC32C of bytes 2 .. 8+p (kind, flags, length, payload)
//
// The magic's first byte and its \r\n, \x1a\n catch files mangled by 7-bit
// or text-mode transfers, as PNG's do. Close writes an end frame whose
// payload is a u64 count of the record frames written; a recording without
// one was cut short or its writer was killed.
//
// Compatibility: the format version changes only for changes an older
// reader cannot skip; readers refuse newer versions with a sentence saying
// so. Additions an older reader can skip (new frame kinds, new header
// fields) keep the version: unknown kinds are skipped and counted.
//
// # Damage
//
// Every frame carries its own checksum and starts with a sync marker, so a
// damaged frame costs that frame, not the rest of the file: the reader
// warns with the frame's offset, scans forward for the next sync marker
// that begins a frame with a valid length and checksum, and goes on from
// there. A file cut short replays all its complete frames, then warns with
// the offset where it ends mid-record. Frame lengths above MaxRecord are
// damage, so garbage cannot ask for huge allocations. Stepping over damage
// costs time linear in the bytes stepped over, however the damage is
// crafted: candidate frames are checked against indexed checksums
// (crcindex.go), not read once per marker.
//
// # Durability
//
// The Writer buffers frames and hands the buffer to the kernel when a Write
// finds it holds data older than one second, and on every Flush. The
// caller must call Flush about once a second while no records arrive (a
// ticker in the consumer loop), so that a `kill -9` of mmtrace loses at
// most the last second. Data handed to the kernel survives the death of
// the process; only a crash of the machine can lose it (no fsync).
package record
