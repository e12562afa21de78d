// The component model's canonical ABI, by hand, for standard Go.
//
// Why by hand: Go's wasm port (GOOS=wasip1 GOARCH=wasm) has 64-bit pointers
// and ints, while the canonical ABI lays strings, lists and records out with
// 32-bit ones, so no Go struct can mirror them; and go:wasmimport and
// go:wasmexport take only numbers and pointers to plain-number structs.
// (wit-bindgen-go's bindings assume TinyGo's 32-bit layout: standard Go
// rejects them.) So every value crosses as numbers: a string is an address
// and a length into linear memory, and the helpers below read and write that
// memory.

package main

import (
	"runtime/debug"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// The garbage collector is off. cabi_realloc runs while the host lowers a
// value into this instance, when the component model forbids calling imports;
// a collection starting inside it would (it reads the clock, it may let other
// goroutines run) and the call would trap with "cannot leave component
// instance". Off is affordable because the server gives every call a fresh
// instance: memory is what one call allocates, within its memory limit.
func init() {
	debug.SetGCPercent(-1)
}

// pinned holds the memory given to the host (results) or filled by it
// (arguments, results of imports) while the host may still use it: until the
// next exported call has copied its arguments (see release). With the
// collector off (see init) nothing would free it anyway; the pins keep it
// safe should a tool turn the collector back on.
var pinned [][]uint64

// alloc returns n zeroed bytes, 8-aligned (the most any canonical ABI type
// asks), pinned.
func alloc(n uint32) uint32 {
	buf := make([]uint64, n/8+1)
	pinned = append(pinned, buf)
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(buf))))
}

// release forgets the memory of the previous call. Exported functions call
// it once they have copied their arguments into Go values.
func release() {
	pinned = nil
}

// cabiRealloc is how the host asks for memory: for the arguments of an
// exported function, and for the strings and lists an import returns.
//
//go:wasmexport cabi_realloc
func cabiRealloc(old, oldSize, align, newSize uint32) uint32 {
	if align > 8 {
		panic("cabi_realloc: alignment above 8")
	}
	p := alloc(newSize)
	copy(bytesAt(p, newSize), bytesAt(old, min(oldSize, newSize)))
	return p
}

// Addresses are uint32 offsets into linear memory, which never moves, so
// turning one into a pointer is sound here, though `go vet` reports
// "possible misuse of unsafe.Pointer" for each such conversion.

// bytesAt is linear memory [ptr, ptr+n) as a slice (no copy).
func bytesAt(ptr, n uint32) []byte {
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(uintptr(ptr))), n)
}

func load8(addr uint32) uint8   { return *(*uint8)(unsafe.Pointer(uintptr(addr))) }
func load32(addr uint32) uint32 { return *(*uint32)(unsafe.Pointer(uintptr(addr))) }

func store8(addr uint32, v uint8)   { *(*uint8)(unsafe.Pointer(uintptr(addr))) = v }
func store32(addr uint32, v uint32) { *(*uint32)(unsafe.Pointer(uintptr(addr))) = v }

// liftString copies a string argument (or a string an import returned).
func liftString(ptr, n uint32) string {
	return string(bytesAt(ptr, n))
}

// liftOption copies an option<string> argument: its three flat values.
func liftOption(isSome, ptr, n uint32) (string, bool) {
	if isSome == 0 {
		return "", false
	}
	return liftString(ptr, n), true
}

// lowerString copies s into pinned memory: its address and length. A WIT
// string is UTF-8, and the host traps on anything else, so invalid bytes
// (from a web page, say) become U+FFFD.
func lowerString(s string) (uint32, uint32) {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	n := uint32(len(s))
	p := alloc(n)
	copy(bytesAt(p, n), s)
	return p, n
}

// storeString writes s as a string field (address, length) at addr.
func storeString(addr uint32, s string) {
	p, n := lowerString(s)
	store32(addr, p)
	store32(addr+4, n)
}

// storeStrings writes a list<string> field at addr.
func storeStrings(addr uint32, items []string) {
	n := uint32(len(items))
	list := alloc(8 * n)
	for i, s := range items {
		storeString(list+8*uint32(i), s)
	}
	store32(addr, list)
	store32(addr+4, n)
}

// returnErr lowers the err case of result<T, string>: the tag at 0, the
// string at 4 (every T here is 4-aligned).
func returnErr(message string, size uint32) uint32 {
	ret := alloc(size)
	store8(ret, 1)
	storeString(ret+4, message)
	return ret
}
