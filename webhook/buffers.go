package webhook

import (
	"io"
	"sync"
)

const (
	// initialBufferSize holds a typical pod review (4-8 KB) without growing.
	initialBufferSize = 16 << 10
	// maxPooledBuffer drops buffers that grew for an unusually large
	// request, so one such request does not pin its memory for good.
	maxPooledBuffer = 1 << 20
)

// buffers recycles request bodies and encoded responses: at admission
// rates, allocating them afresh is most of the garbage a request makes.
var buffers = sync.Pool{New: func() any {
	b := make([]byte, 0, initialBufferSize)
	return &b
}}

func getBuffer() *[]byte { return buffers.Get().(*[]byte) }

func putBuffer(b *[]byte) {
	if cap(*b) <= maxPooledBuffer {
		*b = (*b)[:0]
		buffers.Put(b)
	}
}

// readAll is io.ReadAll into buf, grown to size first when the caller
// knows it (Content-Length), so a body is read without reallocation.
func readAll(r io.Reader, buf []byte, size int64) ([]byte, error) {
	if size > 0 && size < maxRequestBytes && int(size) >= cap(buf) {
		// One byte more, so the read that returns io.EOF needs no growth.
		buf = make([]byte, 0, size+1)
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}
