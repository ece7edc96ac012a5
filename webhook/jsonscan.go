package webhook

import (
	"fmt"
	"strconv"
	"strings"
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
	s.stack = s.stack[:0]
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
