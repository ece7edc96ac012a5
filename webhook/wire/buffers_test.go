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

// countingReader is an endless body that counts what was read of it.
type countingReader struct{ n int }

func (c *countingReader) Read(p []byte) (int, error) {
	c.n += len(p)
	return len(p), nil
}

func TestReadAllLimit(t *testing.T) {
	atLimit := strings.Repeat("x", MaxRequestBytes)
	for _, size := range []int64{-1, MaxRequestBytes} {
		if got, err := ReadAll(strings.NewReader(atLimit), nil, size); err != nil || len(got) != MaxRequestBytes {
			t.Fatalf("body at the limit, size %d: %d bytes, %v", size, len(got), err)
		}
	}
	for _, size := range []int64{-1, 10, MaxRequestBytes} {
		c := &countingReader{}
		if _, err := ReadAll(c, nil, size); err != ErrTooLarge {
			t.Fatalf("endless body, size %d: error %v, want ErrTooLarge", size, err)
		}
		if c.n > MaxRequestBytes+1 {
			t.Fatalf("endless body, size %d: read %d bytes, want at most the limit and one", size, c.n)
		}
	}
	c := &countingReader{}
	if _, err := ReadAll(c, nil, MaxRequestBytes+1); err != ErrTooLarge || c.n != 0 {
		t.Fatalf("declared over the limit: error %v after reading %d bytes, want ErrTooLarge before reading", err, c.n)
	}
}

func TestDrainIsBounded(t *testing.T) {
	c := &countingReader{}
	Drain(c)
	if c.n != MaxDrainBytes {
		t.Fatalf("Drain of an endless body read %d bytes, want MaxDrainBytes (%d)", c.n, MaxDrainBytes)
	}
}
