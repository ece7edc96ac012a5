package wire

import (
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestReadAll(t *testing.T) {
	body := strings.Repeat("0123456789", 5000)
	plain := func() io.Reader { return strings.NewReader(body) }
	cases := []struct {
		name string
		r    func() io.Reader
		size int64
	}{
		{"known size", plain, int64(len(body))},
		{"unknown size", plain, -1},
		{"size understated", plain, 10},
		{"size overstated", plain, int64(len(body)) * 2},
		{"one byte at a time", func() io.Reader { return iotest.OneByteReader(plain()) }, int64(len(body))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, buf := range [][]byte{nil, make([]byte, 0, 16), make([]byte, 3, 1<<20)} {
				if got, err := ReadAll(c.r(), buf[:0], c.size); err != nil || string(got) != body {
					t.Fatalf("read %d bytes, err %v; want %d", len(got), err, len(body))
				}
			}
		})
	}
	if got, err := ReadAll(strings.NewReader(""), nil, 0); err != nil || len(got) != 0 {
		t.Fatalf("empty body: %q, %v", got, err)
	}
	if _, err := ReadAll(iotest.ErrReader(io.ErrUnexpectedEOF), nil, -1); err != io.ErrUnexpectedEOF {
		t.Fatalf("error %v, want the reader's", err)
	}
}
