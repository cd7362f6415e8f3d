package record

import (
	"encoding/binary"
	"hash/crc32"
)

// FormatVersion is the version of the file format this package writes, and
// the newest it reads.
const FormatVersion = 1

// MaxRecord is the largest record payload a frame may carry. Ring-buffer
// records are a few hundred bytes; anything near this is damage.
const MaxRecord = 1 << 20

// maxHeader bounds the JSON header for the same reason.
const maxHeader = 1 << 20

var magic = [...]byte{0x89, 'm', 'm', 't', 'r', 'a', 'c', 'e', '\r', '\n', 0x1a, '\n'}

const (
	preambleLen = len(magic) + 4 + 4 // magic, version, header length

	sync0, sync1   = 0xE5, 0x7A
	frameHeaderLen = 8 // sync marker, kind, flags, payload length
	crcLen         = 4
	frameOverhead  = frameHeaderLen + crcLen
)

// Frame kinds.
const (
	kindRecord = 1 // a ring-buffer record
	kindEnd    = 2 // end of recording; payload: u64 number of record frames
)

// le is the byte order of the framing (not of the payloads).
var le = binary.LittleEndian

// castagnoli is hardware-accelerated by hash/crc32 on amd64 and arm64.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)
