package fschain

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
)

// Key is a chain key K_n. The device holds only the current one; each append replaces it
// by H("fs1/evolve" || K_n), which cannot be undone.
type Key [32]byte

// Hash is a SHA-256 digest: a head h_n or a seal.
type Hash [32]byte

// TagSize is the length of an entry tag (HMAC-SHA-256 truncated to 128 bits).
const TagSize = 16

// Labels of fschain.md, "Construction".
const (
	labelGenesis = "fs1/genesis"
	labelEntry   = "fs1/entry"
	labelMAC     = "fs1/mac"
	labelHead    = "fs1/head"
	labelEvolve  = "fs1/evolve"
	labelSeal    = "fs1/seal"
)

// maxDevLen bounds the device id (fschain.md: 1–64 bytes); fixed buffers below rely on it.
const maxDevLen = 64

func appendLP(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// GenesisHead is h_0 = H("fs1/genesis" || lp(D) || u32(e)).
func GenesisHead(dev string, epoch uint32) Hash {
	var buf [16 + 2 + maxDevLen + 4]byte
	b := append(buf[:0], labelGenesis...)
	b = appendLP(b, dev)
	b = binary.BigEndian.AppendUint32(b, epoch)
	return sha256.Sum256(b)
}

// Evolve returns K_{n+1} = H("fs1/evolve" || K_n).
func Evolve(k Key) Key {
	var buf [len(labelEvolve) + 32]byte
	copy(buf[:], labelEvolve)
	copy(buf[len(labelEvolve):], k[:])
	return sha256.Sum256(buf[:])
}

// KeyAt returns K_n derived from K_1 (n ≥ 1): what an auditor holding K_1 needs to check a
// log that starts after a pruned base.
func KeyAt(k1 Key, n uint64) Key {
	k := k1
	for i := uint64(1); i < n; i++ {
		k = Evolve(k)
	}
	return k
}

// subKey is H(label || K): the MAC key derived from a chain key for one purpose.
func subKey(label string, k *Key) [32]byte {
	var buf [16 + 32]byte
	b := append(buf[:0], label...)
	b = append(b, k[:]...)
	return sha256.Sum256(b)
}

// hmac256 is HMAC-SHA-256 with a 32-byte key, written out so the hot path of append and
// verify allocates nothing. It equals crypto/hmac for such keys (a test checks).
func hmac256(key *[32]byte, msg []byte) Hash {
	var buf [64 + 256]byte
	if len(msg) > 256 {
		// Only reachable with device ids far beyond 64 bytes. Copies keep key and msg on
		// the caller's stack in the hot path (escape analysis is per function).
		m := hmac.New(sha256.New, append([]byte(nil), key[:]...))
		m.Write(append([]byte(nil), msg...))
		var out Hash
		m.Sum(out[:0])
		return out
	}
	for i := 0; i < 64; i++ {
		var k byte
		if i < 32 {
			k = key[i]
		}
		buf[i] = k ^ 0x36
	}
	copy(buf[64:], msg)
	inner := sha256.Sum256(buf[:64+len(msg)])
	for i := 0; i < 64; i++ {
		var k byte
		if i < 32 {
			k = key[i]
		}
		buf[i] = k ^ 0x5c
	}
	copy(buf[64:], inner[:])
	return sha256.Sum256(buf[:64+32])
}

// chain holds the per-device constants of the construction so each step only adds the
// per-entry fields.
type chain struct {
	dev   string
	epoch uint32
	// entryPrefix is "fs1/entry" || lp(D) || u32(e); sealPrefix is "fs1/seal" || lp(D) || u32(e).
	entryPrefix []byte
	sealPrefix  []byte
}

func newChain(dev string, epoch uint32) *chain {
	c := &chain{dev: dev, epoch: epoch}
	c.entryPrefix = binary.BigEndian.AppendUint32(appendLP([]byte(labelEntry), dev), epoch)
	c.sealPrefix = binary.BigEndian.AppendUint32(appendLP([]byte(labelSeal), dev), epoch)
	return c
}

// msgBuf is large enough for "fs1/head" || msg_n || tag_n with the longest device id.
type msgBuf [len(labelHead) + len(labelEntry) + 2 + maxDevLen + 4 + 8 + 8 + 2 + 32 + 32 + TagSize]byte

// buildMsg writes "fs1/head" || msg_n into buf and returns it; msg_n starts at len(labelHead).
func (c *chain) buildMsg(buf *msgBuf, n, t uint64, typ uint16, prev *Hash, payload []byte) []byte {
	b := append(buf[:0], labelHead...)
	b = append(b, c.entryPrefix...)
	b = binary.BigEndian.AppendUint64(b, n)
	b = binary.BigEndian.AppendUint64(b, t)
	b = binary.BigEndian.AppendUint16(b, typ)
	b = append(b, prev[:]...)
	ph := sha256.Sum256(payload)
	return append(b, ph[:]...)
}

// Msg returns msg_n of fschain.md, for test vectors and debugging.
func Msg(dev string, epoch uint32, n, t uint64, typ uint16, prev Hash, payload []byte) []byte {
	var buf msgBuf
	c := newChain(dev, epoch)
	return append([]byte(nil), c.buildMsg(&buf, n, t, typ, &prev, payload)[len(labelHead):]...)
}

// step computes tag_n under k and h_n for one entry. One buffer serves both hashes that
// cover msg_n: the HMAC's inner hash reads key⊕ipad || msg_n, then the 8 bytes before msg_n
// become "fs1/head" and the head hash reads "fs1/head" || msg_n || tag_n — msg_n is
// written once (this is the hot path of append and verify).
func (c *chain) step(k *Key, prev *Hash, n, t uint64, typ uint16, payload []byte) (tag [TagSize]byte, head Hash) {
	var buf [64 + len(msgBuf{})]byte
	mk := subKey(labelMAC, k)
	for i := 0; i < 32; i++ {
		buf[i] = mk[i] ^ 0x36
	}
	for i := 32; i < 64; i++ {
		buf[i] = 0x36
	}
	b := append(buf[:64], c.entryPrefix...)
	b = binary.BigEndian.AppendUint64(b, n)
	b = binary.BigEndian.AppendUint64(b, t)
	b = binary.BigEndian.AppendUint16(b, typ)
	b = append(b, prev[:]...)
	ph := sha256.Sum256(payload)
	b = append(b, ph[:]...)
	inner := sha256.Sum256(b)
	var outer [64 + 32]byte
	for i := 0; i < 32; i++ {
		outer[i] = mk[i] ^ 0x5c
	}
	for i := 32; i < 64; i++ {
		outer[i] = 0x5c
	}
	copy(outer[64:], inner[:])
	full := sha256.Sum256(outer[:])
	copy(tag[:], full[:TagSize])
	copy(buf[64-len(labelHead):64], labelHead)
	b = append(b, tag[:]...)
	return tag, sha256.Sum256(b[64-len(labelHead):])
}

// headOf computes h_n from h_{n-1} and an entry with the tag it carries (no key needed).
func (c *chain) headOf(prev *Hash, n, t uint64, typ uint16, payload, tag []byte) Hash {
	var buf msgBuf
	b := c.buildMsg(&buf, n, t, typ, prev, payload)
	b = append(b, tag...)
	return sha256.Sum256(b)
}

// seal computes seal_n = HMAC(H("fs1/seal" || K_{n+1}), "fs1/seal" || lp(D) || u32(e) || u64(n) || h_n).
func (c *chain) seal(next *Key, n uint64, head *Hash) Hash {
	var buf [len(labelSeal) + 2 + maxDevLen + 4 + 8 + 32]byte
	b := append(buf[:0], c.sealPrefix...)
	b = binary.BigEndian.AppendUint64(b, n)
	b = append(b, head[:]...)
	sk := subKey(labelSeal, next)
	return hmac256(&sk, b)
}

// Step computes one entry of the construction: tag_n, h_n, K_{n+1} and seal_n. It is the
// reference the Writer and the vectors are built on.
func Step(dev string, epoch uint32, k Key, prev Hash, n, t uint64, typ uint16, payload []byte) (tag [TagSize]byte, head Hash, next Key, seal Hash) {
	c := newChain(dev, epoch)
	tag, head = c.step(&k, &prev, n, t, typ, payload)
	next = Evolve(k)
	return tag, head, next, c.seal(&next, n, &head)
}

// Seal computes seal_n under K_{n+1}; Seal(dev, e, K_1, 0, h_0) is seal_0.
func Seal(dev string, epoch uint32, next Key, n uint64, head Hash) Hash {
	return newChain(dev, epoch).seal(&next, n, &head)
}
