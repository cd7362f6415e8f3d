package events

import "encoding/binary"

// The records' byte layout: every field of every struct that crosses the
// ring buffer (bpf/mmtrace.bpf.c), at its offset. Nothing else in mmtrace
// reads or writes record bytes. wire_test.go checks each size, offset and
// width against the Go mirrors bpf2go generates from the C, so a change
// there fails the tests until it is made here too.
//
// Records are in the byte order of the machine that made them (the
// kernel's); a recording names it in its header and refuses to replay on
// a machine of the other order.

var ne = binary.NativeEndian

// A field's type is its width; its value is its offset in the record.
type (
	u8  int
	u16 int
	u32 int
	i32 int
	u64 int
	i64 int
)

func (o u8) get(b []byte) uint8      { return b[o] }
func (o u16) get(b []byte) uint16    { return ne.Uint16(b[o:]) }
func (o u32) get(b []byte) uint32    { return ne.Uint32(b[o:]) }
func (o i32) get(b []byte) int32     { return int32(ne.Uint32(b[o:])) }
func (o u64) get(b []byte) uint64    { return ne.Uint64(b[o:]) }
func (o i64) get(b []byte) int64     { return int64(ne.Uint64(b[o:])) }
func (o u8) put(b []byte, v uint8)   { b[o] = v }
func (o u32) put(b []byte, v uint32) { ne.PutUint32(b[o:], v) }
func (o u64) put(b []byte, v uint64) { ne.PutUint64(b[o:], v) }

// chars is a char[n] at off.
type chars struct{ off, n int }

func (c chars) get(b []byte) []byte { return b[c.off : c.off+c.n] }

// struct event_header, the start of every record.
const (
	hdrKind u8  = 0 // enum event_kind
	hdrABI  u8  = 1 // enum event_abi
	hdrPID  u32 = 4
	hdrTID  u32 = 8
	hdrSeq  u32 = 12
	hdrTime u64 = 16

	sizeHeader = 24
)

// struct mem_event: mmap, munmap, mremap, mprotect, brk, personality,
// unmodeled calls.
const (
	memSyscall      u32 = 24
	memFD           i32 = 28
	memAddr         u64 = 32
	memLen          u64 = 40
	memNewLen       u64 = 48
	memNewAddr      u64 = 56
	memOffset       u64 = 64
	memProt         u32 = 72
	memFlags        u32 = 76
	memRet          i64 = 80
	memSearchLow    u64 = 88
	memSearchHigh   u64 = 96
	memSearchResult u64 = 104
	memSearchFlags  u32 = 112
	memSearches     u32 = 116

	sizeMem = 120
)

// struct mem_path_event: a mem_event followed by the mapped file's path.
var memPath = chars{sizeMem, 256}

const sizeMemPath = sizeMem + 256

// orderUnknownFlag is SEARCH_ORDER_UNKNOWN in mem_event.search_flags (a
// #define in the C, so not in the generated bindings).
const orderUnknownFlag = 0x80000000

// struct exec_event.
const (
	execPPID                 u32 = 24
	execOldPID               u32 = 28
	execPersonality          u32 = 32
	execParentABI            u8  = 36
	execVMAsKnown            u8  = 37
	execVMACount             u32 = 40
	execLostBefore           u32 = 44
	execTaskSize             u64 = 48
	execStartCode            u64 = 56
	execEndCode              u64 = 64
	execStartData            u64 = 72
	execEndData              u64 = 80
	execStartBrk             u64 = 88
	execBrk                  u64 = 96
	execStartStack           u64 = 104
	execMmapBase             u64 = 112
	execMmapLegacyBase       u64 = 120
	execMmapCompatBase       u64 = 128
	execMmapCompatLegacyBase u64 = 136
	execRlimStackCur         u64 = 144
	execRlimStackMax         u64 = 152
	execMntNS                u32 = 448
	execArgsLen              u32 = 712
	execArgsFlags            u16 = 716

	sizeExec    = 2768
	sizeExecMin = int(execMntNS) // recordings made before mnt_ns, root and args
)

var (
	execComm       = chars{160, 16}
	execParentComm = chars{176, 16}
	execFilename   = chars{192, 256}
	execRoot       = chars{456, 256}
	execArgs       = chars{720, 2048}
)

// exec_event.vmas_known: 0 the kernel could not walk the VMAs at exec, 1
// it did, vmasFromProc the consumer read them from /proc (EncodeProcVMAs).
const vmasFromProc = 2

// struct vma_event: one VMA of a new image.
const (
	vmaStart u64 = 24
	vmaEnd   u64 = 32
	vmaFlags u64 = 40
	vmaPgOff u64 = 48
	vmaIndex u32 = 56
	vmaTotal u32 = 60

	sizeVMA = 320
)

var vmaPath = chars{64, 256}

// struct vma_batch: up to batchMax VMA records in one ring record, which
// the loader splits (SplitVMABatch); recordings and the decoder see only
// the VMA records. A transport detail, so its kind is not a Kind.
const (
	kindVMABatch     = 14 // KIND_VMA_BATCH
	batchCount   u32 = 24
	batchStride  u32 = 28
	batchFirst       = 32 // v[0]
	batchMax         = 8  // VMA_BATCH

	sizeVMABatch = batchFirst + batchMax*sizeVMA
)

// struct execve_event.
const (
	execveSyscall   u32 = 24
	execveArgc      u16 = 28
	execveArgsFlags u16 = 30
	execveRet       i64 = 32

	sizeExecve    = 4392
	sizeExecveMin = 296 // execveArgs.off: older versions had a shorter argument area
)

var (
	execveFilename = chars{40, 256}
	execveArgs     = chars{sizeExecveMin, 4096}
)

// enum args_flag, in exec_event.args_flags and execve_event.args_flags.
const argsTruncated = 1

// struct task_event: fork and exit.
const (
	taskChild    u32 = 24
	taskExitCode i32 = 28

	sizeTask = 48
)

var taskComm = chars{32, 16}

// struct lost_event, made by the consumer.
const (
	lostCount u64 = 24

	sizeLost = 32
)

// VMABatch is a batch of an exec's VMA records as the kernel sends them.
type VMABatch []byte

// SplitVMABatch reports whether raw is a VMA batch, and returns it. A
// batch the kernel cannot have made (a count out of range, a stride that
// is not a VMA record's size, fewer bytes than its count needs) is not
// one: passed on whole, the decoder counts it as a record of unknown kind.
func SplitVMABatch(raw []byte) (VMABatch, bool) {
	if len(raw) < batchFirst || hdrKind.get(raw) != kindVMABatch {
		return nil, false
	}
	n, stride := int(batchCount.get(raw)), int(batchStride.get(raw))
	if n < 1 || n > batchMax || stride != sizeVMA || len(raw) < batchFirst+n*sizeVMA {
		return nil, false
	}
	return VMABatch(raw), true
}

// Len is the number of VMA records in b.
func (b VMABatch) Len() int { return int(batchCount.get(b)) }

// Record is b's i-th VMA record, a slice of b.
func (b VMABatch) Record(i int) []byte {
	off := batchFirst + i*sizeVMA
	return b[off : off+sizeVMA : off+sizeVMA]
}
