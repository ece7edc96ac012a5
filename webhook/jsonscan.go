package webhook

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth bounds the nesting of arrays and objects, as encoding/json does,
// so a hostile body cannot make the scanner use unbounded memory.
const maxDepth = 10000

// scanner walks JSON text in place. It validates everything it passes over
// with the same grammar as encoding/json, but materialises only the strings
// the caller asks for; every other value is skipped without allocating.
//
// Strings are copied into arena, an append-only buffer: strings.Builder
// never rewrites bytes it has handed out, so every string sliced from it
// stays valid after the request body is reused, at the cost of one or two
// allocations per request instead of one per string.
type scanner struct {
	data    []byte
	pos     int
	arena   strings.Builder
	scratch []byte // unescaped object keys, reused
	stack   []byte // open containers while skipping, reused
	stackA  [64]byte
	// blk and mask cache plainRun's bitmap of one 64-byte block.
	blk  int
	mask uint64
}

// syntaxError is input that is not JSON.
type syntaxError struct {
	msg string
	at  int
}

func (e *syntaxError) Error() string { return fmt.Sprintf("%s (at byte %d)", e.msg, e.at) }

func (s *scanner) reset(data []byte) {
	s.data, s.pos = data, 0
	s.stack = s.stackA[:0]
	s.blk = -1
}

func (s *scanner) eof() error {
	return &syntaxError{msg: "unexpected end of JSON input", at: len(s.data)}
}

// invalid reports the byte at s.pos, or the end of input.
func (s *scanner) invalid(context string) error {
	if s.pos >= len(s.data) {
		return s.eof()
	}
	return &syntaxError{msg: "invalid character " + quoteChar(s.data[s.pos]) + " " + context, at: s.pos + 1}
}

func quoteChar(c byte) string {
	switch c {
	case '\'':
		return `'\''`
	case '"':
		return `'"'`
	}
	// As encoding/json does, a byte reads as the rune of the same value.
	q := strconv.Quote(string(rune(c)))
	return "'" + q[1:len(q)-1] + "'"
}

// ws skips JSON whitespace.
func (s *scanner) ws() { s.pos = skipWS(s.data, s.pos) }

// peek returns the byte at s.pos, or 0 at the end of input; 0 never
// starts a JSON value, so callers treat it as a syntax error.
func (s *scanner) peek() byte {
	if s.pos < len(s.data) {
		return s.data[s.pos]
	}
	return 0
}

// kindName names the JSON value starting at s.pos the way encoding/json's
// type errors do; "" when no value can start there.
func (s *scanner) kindName() string {
	switch c := s.peek(); {
	case c == '{':
		return "object"
	case c == '[':
		return "array"
	case c == '"':
		return "string"
	case c == 't' || c == 'f':
		return "bool"
	case c == 'n':
		return "null"
	case c == '-' || (c >= '0' && c <= '9'):
		return "number"
	}
	return ""
}

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
// shift and a count of trailing zeros whatever its length. A byte-wise or
// word-wise loop instead mispredicts its exit on nearly every string, and
// Kubernetes objects are mostly short strings (managedFields above all).
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

// stringEnd returns the index of the quote that closes the string whose
// first content byte is at i, and whether it holds escapes. Escapes are
// validated here so that unquote can trust them.
func (s *scanner) stringEnd(i int) (int, bool, error) {
	data := s.data
	escaped := false
	for {
		i = s.plainRun(i)
		if i >= len(data) {
			s.pos = i
			return 0, false, s.eof()
		}
		switch data[i] {
		case '"':
			return i, escaped, nil
		case '\\':
			escaped = true
			n, err := s.escapeLen(i)
			if err != nil {
				return 0, false, err
			}
			i += n
		default:
			s.pos = i
			return 0, false, s.invalid("in string literal")
		}
	}
}

// escapeLen validates the escape sequence at i and returns its length.
func (s *scanner) escapeLen(i int) (int, error) {
	data := s.data
	if i+1 >= len(data) {
		return 0, s.eof()
	}
	switch data[i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2, nil
	case 'u':
		for j := i + 2; j < i+6; j++ {
			if j >= len(data) {
				return 0, s.eof()
			}
			if !isHex(data[j]) {
				s.pos = j
				return 0, s.invalid("in \\u hexadecimal character escape")
			}
		}
		return 6, nil
	}
	s.pos = i + 1
	return 0, s.invalid("in string escape code")
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// readString decodes the string at s.pos into the arena. Like
// encoding/json, invalid UTF-8 and unpaired surrogates become U+FFFD.
func (s *scanner) readString() (string, error) {
	start := s.pos + 1
	end, escaped, err := s.stringEnd(start)
	if err != nil {
		return "", err
	}
	s.pos = end + 1
	raw := s.data[start:end]
	if len(raw) == 0 {
		return "", nil
	}
	n := s.arena.Len()
	if !escaped && utf8.Valid(raw) {
		s.arena.Write(raw)
	} else {
		s.arena.Write(unquote(s.scratch[:0], raw))
	}
	return s.arena.String()[n:], nil
}

// readKey returns an object key at s.pos for matching against field
// names. It aliases the input, or the scratch buffer when the key holds
// escapes, so it is valid only until the next call.
func (s *scanner) readKey() ([]byte, error) {
	start := s.pos + 1
	end, escaped, err := s.stringEnd(start)
	if err != nil {
		return nil, err
	}
	s.pos = end + 1
	if !escaped {
		return s.data[start:end], nil
	}
	s.scratch = unquote(s.scratch[:0], s.data[start:end])
	return s.scratch, nil
}

// unquote appends the decoded content of a validated string literal, with
// encoding/json's replacement of invalid UTF-8 and surrogates.
func unquote(dst, raw []byte) []byte {
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c == '\\':
			switch raw[i+1] {
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				r := hex4(raw[i+2:])
				i += 6
				if utf16.IsSurrogate(r) {
					if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
						if dec := utf16.DecodeRune(r, hex4(raw[i+2:])); dec != utf8.RuneError {
							dst = utf8.AppendRune(dst, dec)
							i += 6
							continue
						}
					}
					r = utf8.RuneError
				}
				dst = utf8.AppendRune(dst, r)
				continue
			default: // '"', '\\', '/'
				dst = append(dst, raw[i+1])
			}
			i += 2
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			i++
		default:
			r, size := utf8.DecodeRune(raw[i:])
			if r == utf8.RuneError && size == 1 {
				dst = utf8.AppendRune(dst, utf8.RuneError)
			} else {
				dst = append(dst, raw[i:i+size]...)
			}
			i += size
		}
	}
	return dst
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// literal passes over true, false or null at s.pos.
func (s *scanner) literal(word string) error {
	i, err := s.skipLiteral(s.pos, word)
	s.pos = i
	return err
}

func (s *scanner) skipLiteral(i int, word string) (int, error) {
	if i+len(word) <= len(s.data) && string(s.data[i:i+len(word)]) == word {
		return i + len(word), nil
	}
	for j := 0; j < len(word); j++ {
		if i+j >= len(s.data) {
			return i + j, s.eof()
		}
		if s.data[i+j] != word[j] {
			s.pos = i + j
			return i + j, s.invalid("in literal " + word)
		}
	}
	return i + len(word), nil
}

// skipNumber passes over a number at i with JSON's grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) skipNumber(i int) (int, error) {
	data := s.data
	if i < len(data) && data[i] == '-' {
		i++
	}
	switch {
	case i < len(data) && data[i] == '0':
		i++
	case i < len(data) && data[i] >= '1' && data[i] <= '9':
		i = digits(data, i+1)
	default:
		s.pos = i
		return i, s.invalid("in numeric literal")
	}
	if i < len(data) && data[i] == '.' {
		i++
		if i >= len(data) || data[i] < '0' || data[i] > '9' {
			s.pos = i
			return i, s.invalid("after decimal point in numeric literal")
		}
		i = digits(data, i)
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i >= len(data) || data[i] < '0' || data[i] > '9' {
			s.pos = i
			return i, s.invalid("in exponent of numeric literal")
		}
		i = digits(data, i)
	}
	return i, nil
}

func digits(data []byte, i int) int {
	for i < len(data) && data[i] >= '0' && data[i] <= '9' {
		i++
	}
	return i
}

// skipWS returns the index of the first byte at or after i that is not
// JSON whitespace.
func skipWS(data []byte, i int) int {
	for i < len(data) && data[i] <= ' ' && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// skipString passes over the string whose opening quote is at i-1 and
// returns the index after its closing quote.
func (s *scanner) skipString(i int) (int, error) {
	if i = s.plainRun(i); i < len(s.data) && s.data[i] == '"' {
		return i + 1, nil
	}
	return s.skipStringSlow(i)
}

// skipStringSlow continues skipString at an escape, a control byte or the
// end of input.
func (s *scanner) skipStringSlow(i int) (int, error) {
	data := s.data
	for {
		if i >= len(data) {
			return i, s.eof()
		}
		switch data[i] {
		case '"':
			return i + 1, nil
		case '\\':
			n, err := s.escapeLen(i)
			if err != nil {
				return i, err
			}
			i = s.plainRun(i + n)
		default:
			s.pos = i
			return i, s.invalid("in string literal")
		}
	}
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
	base := len(s.stack)
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
			if depth+len(s.stack)-base >= maxDepth {
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
			s.stack = append(s.stack, c)
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
			if len(s.stack) == base {
				s.pos, s.blk, s.mask = i, blk, mask
				return nil
			}
			if i < n && data[i] <= ' ' {
				i = skipWS(data, i)
			}
			if i >= n {
				return s.eof()
			}
			top := s.stack[len(s.stack)-1]
			if c := data[i]; c == ',' {
				i++
				if i < n && data[i] <= ' ' {
					i = skipWS(data, i)
				}
				key = top == '{'
				break
			} else if c == top+2 {
				i++
				s.stack = s.stack[:len(s.stack)-1]
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

func (s *scanner) colon() error {
	s.ws()
	if s.peek() != ':' {
		return s.invalid("after object key")
	}
	s.pos = skipWS(s.data, s.pos+1)
	return nil
}

// objectIter iterates over the members of the object at s.pos: each call
// to next returns the next key with s.pos at its value, which the caller
// must consume, or ok false after the closing brace.
type objectIter struct {
	s     *scanner
	first bool
}

// openObject enters the object at s.pos, whose nesting level is depth.
func (s *scanner) openObject(depth int) (objectIter, error) {
	if depth > maxDepth {
		return objectIter{}, s.invalid("exceeded max depth")
	}
	s.pos++ // '{'
	return objectIter{s: s, first: true}, nil
}

// next reads the next key and the colon after it. The key aliases the
// input or the scanner's scratch buffer until the next call.
func (o *objectIter) next() (key []byte, ok bool, err error) {
	if ok, err = o.nextMember(); !ok || err != nil {
		return nil, ok, err
	}
	if key, err = o.s.readKey(); err != nil {
		return nil, false, err
	}
	return key, true, o.s.colon()
}

// nextMember moves to the next member's key, leaving s.pos at its opening
// quote, or returns ok false after the closing brace.
func (o *objectIter) nextMember() (bool, error) {
	s := o.s
	s.ws()
	if o.first {
		o.first = false
		if s.peek() == '}' {
			s.pos++
			return false, nil
		}
	} else {
		switch s.peek() {
		case '}':
			s.pos++
			return false, nil
		case ',':
			s.pos++
			s.ws()
		default:
			return false, s.invalid("after object key:value pair")
		}
	}
	if s.peek() != '"' {
		return false, s.invalid("looking for beginning of object key string")
	}
	return true, nil
}

// arrayIter iterates over the elements of an array like objectIter does.
type arrayIter struct {
	s     *scanner
	first bool
}

// openArray enters the array at s.pos, whose nesting level is depth.
func (s *scanner) openArray(depth int) (arrayIter, error) {
	if depth > maxDepth {
		return arrayIter{}, s.invalid("exceeded max depth")
	}
	s.pos++ // '['
	return arrayIter{s: s, first: true}, nil
}

// next moves to the next element, leaving s.pos at it, or returns false
// after the closing bracket.
func (a *arrayIter) next() (bool, error) {
	s := a.s
	s.ws()
	if a.first {
		a.first = false
		if s.peek() == ']' {
			s.pos++
			return false, nil
		}
		return true, nil
	}
	switch s.peek() {
	case ']':
		s.pos++
		return false, nil
	case ',':
		s.pos++
		s.ws()
		return true, nil
	}
	return false, s.invalid("after array element")
}

// appendFolded appends name folded as encoding/json folds field names for
// its case-insensitive match: ASCII letters upper-cased, other runes
// mapped through ToUpper(ToLower(r)).
func appendFolded(dst, name []byte) []byte {
	for i := 0; i < len(name); {
		c := name[i]
		if c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(name[i:])
		dst = utf8.AppendRune(dst, unicode.ToUpper(unicode.ToLower(r)))
		i += n
	}
	return dst
}
