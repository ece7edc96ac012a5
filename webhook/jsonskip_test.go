package webhook

import (
	"math/rand/v2"
	"testing"
)

// TestBlockMask: the word-at-a-time bitmap flags exactly the bytes a
// byte-at-a-time test flags, for every byte value in every position.
func TestBlockMask(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	data := make([]byte, 64*1024+37)
	for i := range data {
		switch r.IntN(4) {
		case 0:
			data[i] = byte(r.IntN(256))
		case 1:
			data[i] = `"\`[r.IntN(2)]
		default:
			// Neighbours of the flagged values, where borrows would show.
			data[i] = []byte{0x00, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x5b, 0x5c, 0x5d, 0x7f, 0x80, 0x9f, 0xa0, 0xa2, 0xdc, 0xff}[r.IntN(16)]
		}
	}
	for blk := 0; blk < len(data); blk += 64 {
		var want uint64
		for j := blk; j < min(blk+64, len(data)); j++ {
			if c := data[j]; c == '"' || c == '\\' || c < 0x20 {
				want |= 1 << (j - blk)
			}
		}
		if got := blockMask(data, blk); got != want {
			t.Fatalf("block at %d: mask %064b, want %064b", blk, got, want)
		}
	}
}
