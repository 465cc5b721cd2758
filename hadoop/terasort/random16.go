// Package terasort is the sort benchmark of Hadoop's examples: TeraGen
// writes the 100-byte records of the sort benchmark (the same bytes as
// Hadoop's TeraGen and Nyberg's gensort, row for row), TeraSort sorts them
// with the MapReduce engine through a total-order partitioner built from
// a sample of the keys, and TeraValidate checks that the output is globally
// sorted and that its checksum matches the input's.
package terasort

import (
	"fmt"
	"math/bits"
	"strconv"
)

// Uint128 is an unsigned 128-bit integer (Hadoop's Unsigned16).
type Uint128 struct{ Hi, Lo uint64 }

func (a Uint128) mul(b Uint128) Uint128 {
	hi, lo := bits.Mul64(a.Lo, b.Lo)
	hi += a.Hi*b.Lo + a.Lo*b.Hi
	return Uint128{hi, lo}
}

// Add returns a+b modulo 2^128.
func (a Uint128) Add(b Uint128) Uint128 {
	lo, carry := bits.Add64(a.Lo, b.Lo, 0)
	hi, _ := bits.Add64(a.Hi, b.Hi, carry)
	return Uint128{hi, lo}
}

// String is the number in lower-case hex without leading zeros, as
// Unsigned16.toString prints TeraGen and TeraValidate checksums.
func (a Uint128) String() string {
	if a.Hi == 0 {
		return strconv.FormatUint(a.Lo, 16)
	}
	return strconv.FormatUint(a.Hi, 16) + fmt.Sprintf("%016x", a.Lo)
}

// byteAt is byte i of the number, 0 being the most significant.
func (a Uint128) byteAt(i int) byte {
	if i < 8 {
		return byte(a.Hi >> (56 - 8*i))
	}
	return byte(a.Lo >> (120 - 8*i))
}

// hexDigit is hex digit p (0 = most significant) as an upper-case
// character.
func (a Uint128) hexDigit(p int) byte {
	d := a.byteAt(p / 2)
	if p%2 == 0 {
		d >>= 4
	}
	return "0123456789ABCDEF"[d&0xf]
}

// The 128-bit linear congruential generator of gensort (Random16):
// x' = a·x + c mod 2^128, with L'Ecuyer's multiplier.
var (
	lcgA = Uint128{0x2360ed051fc65da4, 0x4385df649fccf645}
	lcgC = Uint128{0x4a696d4772617952, 0x4950202020202001}
)

// step[i] advances the generator by 2^i steps: x' = step[i].a·x + step[i].c.
var step = func() (s [128]struct{ a, c Uint128 }) {
	s[0].a, s[0].c = lcgA, lcgC
	for i := 1; i < 128; i++ {
		p := s[i-1]
		// f(f(x)) = a·(a·x + c) + c = a²·x + (a·c + c)
		s[i].a, s[i].c = p.a.mul(p.a), p.a.mul(p.c).Add(p.c)
	}
	return s
}()

// skipAhead returns the generator state n steps from 0 (Random16.skipAhead).
func skipAhead(n Uint128) Uint128 {
	var r Uint128
	for i := 0; i < 64; i++ {
		if n.Lo&(1<<i) != 0 {
			r = step[i].a.mul(r).Add(step[i].c)
		}
	}
	for i := 0; i < 64; i++ {
		if n.Hi&(1<<i) != 0 {
			r = step[64+i].a.mul(r).Add(step[64+i].c)
		}
	}
	return r
}

// next advances the generator one step (Random16.nextRand).
func next(r Uint128) Uint128 { return lcgA.mul(r).Add(lcgC) }

// ParseUint128 reads a number in String's form (hex, no leading zeros
// needed).
func ParseUint128(s string) (Uint128, error) {
	if s == "" || len(s) > 32 {
		return Uint128{}, fmt.Errorf("%q is not a 128-bit hex number", s)
	}
	var u Uint128
	split := max(len(s)-16, 0)
	lo, err := strconv.ParseUint(s[split:], 16, 64)
	if err != nil {
		return Uint128{}, fmt.Errorf("%q is not a 128-bit hex number", s)
	}
	u.Lo = lo
	if split > 0 {
		if u.Hi, err = strconv.ParseUint(s[:split], 16, 64); err != nil {
			return Uint128{}, fmt.Errorf("%q is not a 128-bit hex number", s)
		}
	}
	return u, nil
}
