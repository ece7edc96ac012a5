package webhook

import (
	"encoding/binary"
	"math/bits"
)

// The skipping half of the scanner: what passes over the parts of an
// object the router does not read (spec, status, managedFields), most of a
// pod's bytes. It validates them as strictly as encoding/json would, so
// it runs on every byte; it is written for speed, where jsonscan.go is
// written for clarity.

// SWAR constants: eight bytes tested at once.
const (
	lsb  = 0x0101010101010101
	msb  = 0x8080808080808080
	low7 = 0x7f7f7f7f7f7f7f7f
)

// plainRun returns the index of the first '"', '\\' or control byte at or
// after i, or len(data): the run of string content needing no attention.
//
// It reads a bitmap of such bytes for the 64-byte block around i,
// computed once per block and cached, so finding the end of a string is a
// shift and a count of trailing zeros whatever its length. Kubernetes
// objects are mostly short strings (managedFields above all); on the 64 KB
// benchmark pod a byte-at-a-time loop takes about 15% longer.
func (s *scanner) plainRun(i int) int {
	if m := s.mask >> (i & 63); m != 0 && i&^63 == s.blk {
		return i + bits.TrailingZeros64(m)
	}
	return s.plainRunSlow(i)
}

func (s *scanner) plainRunSlow(i int) int {
	data := s.data
	for i < len(data) {
		blk := i &^ 63
		if blk != s.blk {
			s.mask = blockMask(data, blk)
			s.blk = blk
		}
		if m := s.mask >> (i & 63); m != 0 {
			return i + bits.TrailingZeros64(m)
		}
		i = blk + 64
	}
	return len(data)
}

// blockMask returns one bit per byte of data[blk:blk+64] (or up to the
// end): set for '"', '\\' and bytes below 0x20.
func blockMask(data []byte, blk int) uint64 {
	var m uint64
	if blk+64 <= len(data) {
		b := data[blk : blk+64]
		for w := 0; w < 64; w += 8 {
			m |= special8(binary.LittleEndian.Uint64(b[w:])) << w
		}
		return m
	}
	for j := blk; j < len(data); j++ {
		if c := data[j]; c == '"' || c == '\\' || c < 0x20 {
			m |= 1 << (j - blk)
		}
	}
	return m
}

// special8 returns one bit per byte of the little-endian word w, set for
// '"', '\\' and bytes below 0x20. The byte tests are exact (no carry
// crosses a byte), and the multiply gathers the eight flag bits, each
// partial product landing on a distinct bit.
func special8(w uint64) uint64 {
	q := w ^ (lsb * '"')
	b := w ^ (lsb * '\\')
	zq := ^(((q & low7) + low7) | q)
	zb := ^(((b & low7) + low7) | b)
	lt := ^(((w & low7) + lsb*0x60) | w)
	m := (zq | zb | lt) & msb
	return (m >> 7) * 0x0102040810204080 >> 56
}

// skipValue passes over the value at s.pos, whose container is at depth,
// validating it. This loop is where a large pod's time goes, so its
// common steps are written out in it rather than called: the position
// and plainRun's cached block bitmap stay in locals, open containers are
// a byte stack (deep nesting costs a byte per level, not a call frame),
// keys and values share one string scan, and only the rare paths
// (escapes, numbers, literals, errors) are calls.
func (s *scanner) skipValue(depth int) error {
	data := s.data
	n := len(data)
	i := s.pos
	blk, mask := s.blk, s.mask
	stack := s.stack
	base := len(stack)
	// limit is the stack length at which one more container would nest
	// deeper than maxDepth.
	limit := base + maxDepth - depth
	key := false // a key is expected at i
	var err error
	for {
		if i >= n {
			return s.eof()
		}
		c := data[i]
		if key && c != '"' {
			s.pos = i
			return s.invalid("looking for beginning of object key string")
		}
		switch c {
		case '"':
			i++
			for {
				// Move i to the next quote, backslash or control byte.
				for {
					if i&^63 != blk {
						if i >= n {
							break
						}
						blk = i &^ 63
						mask = blockMask(data, blk)
					}
					if m := mask >> (i & 63); m != 0 {
						i += bits.TrailingZeros64(m)
						break
					}
					i = blk + 64
				}
				if i >= n {
					return s.eof()
				}
				if data[i] == '"' {
					i++
					break
				}
				if data[i] != '\\' {
					s.pos = i
					return s.invalid("in string literal")
				}
				if i+1 < n && data[i+1] == '"' {
					i += 2 // \" is most escapes: managedFields keys are full of them
					continue
				}
				l, err := s.escapeLen(i)
				if err != nil {
					return err
				}
				i += l
			}
			if key {
				if i < n && data[i] <= ' ' {
					i = skipWS(data, i)
				}
				if i >= n || data[i] != ':' {
					s.pos = i
					return s.invalid("after object key")
				}
				i++
				if i < n && data[i] <= ' ' {
					i = skipWS(data, i)
				}
				key = false
				continue
			}
		case '{', '[':
			if len(stack) >= limit {
				s.pos = i
				return s.invalid("exceeded max depth")
			}
			i++
			if i < n && data[i] <= ' ' {
				i = skipWS(data, i)
			}
			if i < n && data[i] == c+2 { // '}' or ']': empty
				i++
				break
			}
			stack = append(stack, c)
			key = c == '{'
			continue
		case 't':
			i, err = s.skipLiteral(i, "true")
		case 'f':
			i, err = s.skipLiteral(i, "false")
		case 'n':
			i, err = s.skipLiteral(i, "null")
		default:
			if c != '-' && (c < '0' || c > '9') {
				s.pos = i
				return s.invalid("looking for beginning of value")
			}
			i, err = s.skipNumber(i)
		}
		if err != nil {
			return err
		}
		// A value ended at i: close containers until one expects another
		// value.
		for {
			if len(stack) == base {
				s.pos, s.blk, s.mask, s.stack = i, blk, mask, stack
				return nil
			}
			if i < n && data[i] <= ' ' {
				i = skipWS(data, i)
			}
			if i >= n {
				return s.eof()
			}
			top := stack[len(stack)-1]
			if c := data[i]; c == ',' {
				i++
				if i < n && data[i] <= ' ' {
					i = skipWS(data, i)
				}
				key = top == '{'
				break
			} else if c == top+2 {
				i++
				stack = stack[:len(stack)-1]
				continue
			}
			s.pos = i
			if top == '{' {
				return s.invalid("after object key:value pair")
			}
			return s.invalid("after array element")
		}
	}
}
