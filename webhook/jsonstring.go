package webhook

import (
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Strings the router keeps: found, validated and decoded with
// encoding/json's rules, including its replacement of invalid UTF-8.

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
