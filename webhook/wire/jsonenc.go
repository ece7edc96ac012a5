package wire

import "unicode/utf8"

// AppendJSONString appends s as a quoted JSON string, escaped exactly as
// encoding/json escapes it, so hand-built output matches json.Marshal byte
// for byte.
func AppendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	dst = AppendJSONChars(dst, s)
	return append(dst, '"')
}

const hexDigits = "0123456789abcdef"

// AppendJSONBytes is AppendJSONString for a value held as bytes. It
// hands them to AppendJSONChars in pieces of up to 32 bytes, cut between
// runes: a conversion that small, to a string that does not escape, is
// made on the stack, so no copy of the value is allocated.
func AppendJSONBytes(dst, b []byte) []byte {
	dst = append(dst, '"')
	for len(b) > 0 {
		n := min(len(b), 32)
		// Back off to a rune's first byte, so that no valid UTF-8
		// sequence is split; bytes that are all continuations are
		// invalid wherever they are cut.
		for k := n; k > n-utf8.UTFMax && k > 0 && k < len(b); k-- {
			if utf8.RuneStart(b[k]) {
				n = k
				break
			}
		}
		dst = AppendJSONChars(dst, string(b[:n]))
		b = b[n:]
	}
	return append(dst, '"')
}

// AppendJSONChars appends the escaped characters of s: quote, backslash
// and control bytes; <, > and & (encoding/json's HTML-safe default);
// U+2028 and U+2029; and invalid UTF-8 as U+FFFD.
func AppendJSONChars(dst []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(dst, s[start:]...)
}
