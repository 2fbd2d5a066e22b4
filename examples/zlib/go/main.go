// The Go cgo twin of this example (src/lib.rs and tests/zlib.rs), for the
// line counts in the README: streaming deflate/inflate of 10 MiB with a
// z_stream and buffers in Go memory, pinned with runtime.Pinner, and the
// unpinned next_in mistake caught by cgo's check. Not built by CI.
package main

/*
#cgo LDFLAGS: -lz
#include <zlib.h>
*/
import "C"

import (
	"bytes"
	"fmt"
	"runtime"
	"unsafe"
)

const chunk = 64 * 1024

func stream(strm *C.z_stream, input []byte, pinInput bool, step func(*C.z_stream) C.int) []byte {
	out := make([]byte, chunk)
	var p runtime.Pinner
	p.Pin(strm)
	p.Pin(&out[0])
	if pinInput {
		p.Pin(&input[0])
	}
	defer p.Unpin()
	strm.next_in = (*C.Bytef)(unsafe.Pointer(&input[0]))
	strm.avail_in = C.uInt(len(input))
	var result []byte
	for {
		strm.next_out = (*C.Bytef)(unsafe.Pointer(&out[0]))
		strm.avail_out = chunk
		rc := step(strm)
		produced := chunk - int(strm.avail_out)
		result = append(result, out[:produced]...)
		switch {
		case rc == C.Z_STREAM_END:
			strm.next_in, strm.next_out = nil, nil
			return result
		case rc == C.Z_OK, rc == C.Z_BUF_ERROR && produced > 0:
		default:
			panic(fmt.Sprintf("zlib returned %d", rc))
		}
	}
}

func compress(input []byte, pinInput bool) []byte {
	strm := new(C.z_stream)
	if C.deflateInit_(strm, C.Z_DEFAULT_COMPRESSION, C.zlibVersion(), C.int(unsafe.Sizeof(*strm))) != C.Z_OK {
		panic("deflateInit")
	}
	out := stream(strm, input, pinInput, func(s *C.z_stream) C.int { return C.deflate(s, C.Z_FINISH) })
	C.deflateEnd(strm)
	return out
}

func decompress(input []byte) []byte {
	strm := new(C.z_stream)
	if C.inflateInit_(strm, C.zlibVersion(), C.int(unsafe.Sizeof(*strm))) != C.Z_OK {
		panic("inflateInit")
	}
	out := stream(strm, input, true, func(s *C.z_stream) C.int { return C.inflate(s, C.Z_NO_FLUSH) })
	C.inflateEnd(strm)
	return out
}

func input() []byte {
	words := []string{"managed ", "pointer ", "pinned ", "zlib ", "stream ", "cgo ", "check ", "\n"}
	x := uint64(0x9e3779b97f4a7c15)
	v := make([]byte, 0, 10<<20)
	for len(v) < 10<<20 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		v = append(v, words[x%8]...)
	}
	return v[:10<<20]
}

func main() {
	data := input()
	packed := compress(data, true)
	if len(packed) >= len(data)/3 || !bytes.Equal(decompress(packed), data) {
		panic("round trip")
	}
	func() {
		defer func() { fmt.Println("caught:", recover()) }()
		compress([]byte("some bytes that deflate would read through next_in"), false)
	}()
}
