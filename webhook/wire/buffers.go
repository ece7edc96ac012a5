package wire

import (
	"fmt"
	"io"
	"sync"
)

const (
	// MaxRequestBytes bounds a request body. etcd stores objects of up to
	// 1.5 MiB and an UPDATE review carries the object twice, plus JSON
	// overhead: controller-runtime settles on 7 MiB for the same reason.
	MaxRequestBytes = 7 << 20
	// initialBufferSize holds a typical pod review (4-8 KB) without growing.
	initialBufferSize = 16 << 10
	// maxPooledBuffer drops buffers that grew for an unusually large
	// request, so one such request does not pin its memory for good.
	maxPooledBuffer = 1 << 20
	// MaxDrainBytes bounds what Drain reads of a body refused as too
	// large: past it the connection is closed, with the answer possibly
	// lost, rather than read on for a client that does not stop.
	MaxDrainBytes = 32 << 20
)

// buffers recycles request bodies and encoded responses: at admission
// rates, allocating them afresh is most of the garbage a request makes.
var buffers = sync.Pool{New: func() any {
	b := make([]byte, 0, initialBufferSize)
	return &b
}}

// GetBuffer returns an empty pooled buffer, for a request body or an
// encoded response; give it back with PutBuffer once nothing aliases it.
func GetBuffer() *[]byte { return buffers.Get().(*[]byte) }

// PutBuffer returns b to the pool, unless it grew past what ordinary
// requests need.
func PutBuffer(b *[]byte) {
	if cap(*b) <= maxPooledBuffer {
		*b = (*b)[:0]
		buffers.Put(b)
	}
}

// ErrTooLarge is ReadAll's answer to a body of more than MaxRequestBytes.
var ErrTooLarge = fmt.Errorf("request body is larger than the %d-byte limit", MaxRequestBytes)

// ReadAll is io.ReadAll into buf, grown to size first when the caller
// knows it (Content-Length), so a body is read without reallocation. It
// reads at most MaxRequestBytes: a body that declares more, or turns out
// longer, is ErrTooLarge, read no further than one byte past the limit
// (what http.MaxBytesReader does, without allocating one per request).
func ReadAll(r io.Reader, buf []byte, size int64) ([]byte, error) {
	if size > MaxRequestBytes {
		return buf, ErrTooLarge
	}
	if size > 0 && int(size) >= cap(buf) {
		// One byte more, so the read that returns io.EOF needs no growth.
		buf = make([]byte, 0, size+1)
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):min(cap(buf), MaxRequestBytes+1)])
		buf = buf[:len(buf)+n]
		if len(buf) > MaxRequestBytes {
			return buf, ErrTooLarge
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// Drain reads and discards what is left of a body refused as too large,
// up to MaxDrainBytes, so the client reads the refusal. A client that sends
// its whole body before reading the answer (the apiserver's does) would
// otherwise meet a closed connection: over HTTP/1.1 net/http reads only a
// little of an unread body before closing, and the kernel resets a socket
// closed with unread data, dropping the answer already sent.
func Drain(r io.Reader) {
	_, _ = io.CopyN(io.Discard, r, MaxDrainBytes)
}
