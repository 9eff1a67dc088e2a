package main

import (
	"fmt"
	"math/rand/v2"
	"strconv"
)

// Keys are prefix + lowercase hex digits of a 128-bit session id (32 hex
// digits, 37 bytes with the default "sess:" prefix). The id is derived from the
// key index alone (not from --seed), so every run and every target sees the
// same keyspace and --no-populate can reuse a previous population. Longer keys
// (--key-size) append more hex digits from the same deterministic stream.
//
// The first 64-bit word is a bijective mix of the index, so a key read back
// from the server (expiry events) maps to its index without a lookup table.

const (
	keySalt0 = 0x9e3779b97f4a7c15
	keySalt1 = 0xd1b54a32d192ed03
	keySalt2 = 0xa0761d6478bd642f
	keySalt3 = 0xe7037ed1a0b428db

	fmixC1 = 0xff51afd7ed558ccd
	fmixC2 = 0xc4ceb9fe1a85ec53

	idHexDigits  = 32 // 128-bit session id
	maxKeyDigits = 64 // four 64-bit words
	maxKeyPrefix = 128
)

var (
	fmixC1Inv = mulInverse(fmixC1)
	fmixC2Inv = mulInverse(fmixC2)
)

const hexDigits = "0123456789abcdef"

// fmix64 is MurmurHash3's 64-bit finalizer: a bijection on uint64.
func fmix64(x uint64) uint64 {
	x ^= x >> 33
	x *= fmixC1
	x ^= x >> 33
	x *= fmixC2
	x ^= x >> 33
	return x
}

// unfmix64 inverts fmix64 (x ^= x>>33 is its own inverse because 2*33 >= 64).
func unfmix64(x uint64) uint64 {
	x ^= x >> 33
	x *= fmixC2Inv
	x ^= x >> 33
	x *= fmixC1Inv
	x ^= x >> 33
	return x
}

// mulInverse returns the multiplicative inverse of an odd c modulo 2^64
// (Newton's iteration: each step doubles the number of correct low bits).
func mulInverse(c uint64) uint64 {
	x := c // correct to 3 bits for any odd c
	for range 5 {
		x *= 2 - c*x
	}
	return x
}

// keyGen builds the keys of one run.
type keyGen struct {
	prefix string
	size   int    // total key length in bytes
	hdr    []byte // RESP bulk header "$<size>\r\n"
}

func newKeyGen(prefix string, size int) (*keyGen, error) {
	digits := size - len(prefix)
	if digits < idHexDigits || digits > maxKeyDigits {
		return nil, fmt.Errorf("key size %d with prefix %q leaves %d hex digits; need %d..%d (key size %d..%d)",
			size, prefix, digits, idHexDigits, maxKeyDigits, len(prefix)+idHexDigits, len(prefix)+maxKeyDigits)
	}
	hdr := []byte{'$'}
	hdr = strconv.AppendInt(hdr, int64(size), 10)
	hdr = append(hdr, '\r', '\n')
	return &keyGen{prefix: prefix, size: size, hdr: hdr}, nil
}

// keyWords returns the four 64-bit words the hex digits of key idx come from;
// words 0 and 1 are the 128-bit session id.
func keyWords(idx uint64) [4]uint64 {
	var w [4]uint64
	w[0] = fmix64(idx + keySalt0)
	w[1] = fmix64(w[0] ^ keySalt1)
	w[2] = fmix64(w[1] ^ keySalt2)
	w[3] = fmix64(w[2] ^ keySalt3)
	return w
}

// appendKey appends the key of index idx to b. It does not allocate when b has
// room.
func (k *keyGen) appendKey(b []byte, idx uint64) []byte {
	b = append(b, k.prefix...)
	w := keyWords(idx)
	digits := k.size - len(k.prefix)
	for i := range digits {
		shift := 60 - 4*uint(i%16)
		b = append(b, hexDigits[(w[i/16]>>shift)&0xf])
	}
	return b
}

// appendBulkKey appends the key as a RESP bulk string.
func (k *keyGen) appendBulkKey(b []byte, idx uint64) []byte {
	b = append(b, k.hdr...)
	b = k.appendKey(b, idx)
	return append(b, '\r', '\n')
}

func (k *keyGen) key(idx uint64) string {
	return string(k.appendKey(make([]byte, 0, k.size), idx))
}

// index maps a key back to its index; ok is false for keys this generator did
// not produce.
func (k *keyGen) index(key []byte) (idx uint64, ok bool) {
	if len(key) != k.size || string(key[:len(k.prefix)]) != k.prefix {
		return 0, false
	}
	var w0 uint64
	for _, c := range key[len(k.prefix) : len(k.prefix)+16] {
		var v byte
		switch {
		case c >= '0' && c <= '9':
			v = c - '0'
		case c >= 'a' && c <= 'f':
			v = c - 'a' + 10
		default:
			return 0, false
		}
		w0 = w0<<4 | uint64(v)
	}
	idx = unfmix64(w0) - keySalt0
	var buf [maxKeyPrefix + maxKeyDigits]byte
	if string(k.appendKey(buf[:0], idx)) != string(key) {
		return 0, false
	}
	return idx, true
}

// payloadSlack is how many distinct start offsets the payload pool offers.
const payloadSlack = 4096

const payloadAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// newPayloadPool returns size+payloadSlack random-looking printable bytes,
// deterministic for a seed. Values are windows of it (payloadAt), so the hot
// loop never allocates or generates a value.
func newPayloadPool(seed uint64, size int) []byte {
	rng := rand.New(rand.NewPCG(seed, 0x7061796c6f616473))
	buf := make([]byte, size+payloadSlack)
	var v uint64
	for i := range buf {
		if i%10 == 0 {
			v = rng.Uint64()
		}
		buf[i] = payloadAlphabet[v&63]
		v >>= 6
	}
	return buf
}

// payloadAt returns the size-byte value starting at offset off (mod the slack).
func payloadAt(pool []byte, size int, off uint64) []byte {
	o := int(off % (payloadSlack + 1))
	return pool[o : o+size]
}
