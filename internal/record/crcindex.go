package record

import "hash/crc32"

// Checksums of byte ranges in constant time, for damage handling.
//
// Resyncing after damage tries every sync marker as the start of a
// frame. Checking one candidate by reading its claimed payload costs up
// to MaxRecord bytes, so a crafted file of markers that each claim a
// 1 MiB frame costs a megabyte per marker: quadratic in the file size.
// A crcIndex instead keeps checksums of prefixes of a window of the file
// (one every crcStep bytes), and gets the checksum of any range from two
// prefixes: CRC32C is linear, so
//
//	crc(A||B) = crc(A)·x^(8·len(B)) mod P  xor  crc(B)
//
// (zlib's crc32_combine), hence crc(B) from crc(A||B) and crc(A). Each
// candidate then costs at most 2·crcStep bytes and one multiplication by
// x^(8n), whatever length it claims; the prefixes cost each byte of the
// window once.

// crcStep is the distance between kept prefix checksums: the index costs
// 4/crcStep bytes per byte of window.
const crcStep = 16

// castagnoliReflected is the CRC32C polynomial in the bit order
// hash/crc32 uses.
const castagnoliReflected = 0x82F63B78

// mulModP multiplies a and b as polynomials modulo P (reflected: bit 31
// is x^0).
func mulModP(a, b uint32) uint32 {
	var p uint32
	for m := uint32(1) << 31; m != 0; m >>= 1 {
		if a&m != 0 {
			p ^= b
		}
		if b&1 != 0 {
			b = b>>1 ^ castagnoliReflected
		} else {
			b >>= 1
		}
	}
	return p
}

// x2n[k] is x^(2^k) mod P.
var x2n = func() (t [32]uint32) {
	p := uint32(1) << 30 // x^1
	for k := range t {
		t[k] = p
		p = mulModP(p, p)
	}
	return t
}()

// xPow8n is x^(8n) mod P: multiplying a CRC by it appends n zero bytes.
func xPow8n(n uint64) uint32 {
	p := uint32(1) << 31 // x^0
	for k := 3; n != 0; n, k = n>>1, k+1 {
		if n&1 != 0 {
			p = mulModP(x2n[k&31], p)
		}
	}
	return p
}

// crcIndex indexes the checksums of a window of the file: a byte slice w
// whose start stays put (the caller keeps it in memory while the index
// is in use) and which may grow at the end.
type crcIndex struct {
	active bool
	origin int64    // file offset of w[0]
	cps    []uint32 // cps[j] is the CRC32C of w[:j*crcStep]
	// Cached x^(8n) by n: candidates in crafted damage tend to claim
	// a few lengths.
	shifts   [8]struct{ n, x uint32 }
	examined *int64 // bytes checksummed, for tests
}

// reset starts an empty index of the window at file offset origin.
func (x *crcIndex) reset(origin int64) {
	x.active, x.origin = true, origin
	x.cps = append(x.cps[:0], 0)
}

// prefix is the CRC32C of w[:n], extending the index as needed.
func (x *crcIndex) prefix(w []byte, n int) uint32 {
	for len(x.cps) <= n/crcStep {
		j := len(x.cps) - 1
		x.cps = append(x.cps, crc32.Update(x.cps[j], castagnoli, w[j*crcStep:(j+1)*crcStep]))
		*x.examined += crcStep
	}
	j := n / crcStep
	*x.examined += int64(n - j*crcStep)
	return crc32.Update(x.cps[j], castagnoli, w[j*crcStep:n])
}

// sum is the CRC32C of w[a:b].
func (x *crcIndex) sum(w []byte, a, b int) uint32 {
	n := uint32(b - a)
	c := &x.shifts[(n*0x9E3779B1)>>29]
	if c.n != n || c.x == 0 { // x^k mod P is never 0
		c.n, c.x = n, xPow8n(uint64(n))
	}
	return x.prefix(w, b) ^ mulModP(c.x, x.prefix(w, a))
}
