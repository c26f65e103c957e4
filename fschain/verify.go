package fschain

import (
	"crypto/hmac"
	"errors"
	"fmt"

	"github.com/fieldseal/fieldseal/wire"
)

// Failure names of fschain.md, "Verification". They are stable: logs, metrics, API
// responses, vectors and docs use them verbatim.
const (
	NameGap          = "gap"           // an entry is missing
	NameReorder      = "reorder"       // entries out of order or duplicated
	NameRollback     = "rollback"      // the device claims fewer entries than already verified
	NameFork         = "fork"          // a resent entry differs from the verified one
	NameForgedEntry  = "forged-entry"  // a tag does not verify under the evolved key
	NameHeadMismatch = "head-mismatch" // the recomputed head is not the claimed one
	NameBadSeal      = "bad-seal"      // the seal does not verify: truncation or corruption
	NameBadReceipt   = "bad-receipt"   // offline check only: a receipt is not the server's or not this log's
)

// Errors matched with errors.Is against a *VerifyError of the same name.
var (
	ErrGap          = errors.New(NameGap)
	ErrReorder      = errors.New(NameReorder)
	ErrRollback     = errors.New(NameRollback)
	ErrFork         = errors.New(NameFork)
	ErrForgedEntry  = errors.New(NameForgedEntry)
	ErrHeadMismatch = errors.New(NameHeadMismatch)
	ErrBadSeal      = errors.New(NameBadSeal)
	ErrBadReceipt   = errors.New(NameBadReceipt)
)

var sentinels = map[string]error{
	NameGap: ErrGap, NameReorder: ErrReorder, NameRollback: ErrRollback, NameFork: ErrFork,
	NameForgedEntry: ErrForgedEntry, NameHeadMismatch: ErrHeadMismatch, NameBadSeal: ErrBadSeal,
	NameBadReceipt: ErrBadReceipt,
}

// VerifyError is a verification failure: its stable Name and the sequence number Seq of
// the entry (or claimed n) where the log stopped being trustworthy.
type VerifyError struct {
	Name   string
	Seq    uint64
	Detail string
}

func (e *VerifyError) Error() string {
	if e.Detail == "" {
		return fmt.Sprintf("%s at entry %d", e.Name, e.Seq)
	}
	return fmt.Sprintf("%s at entry %d: %s", e.Name, e.Seq, e.Detail)
}

// Unwrap lets errors.Is(err, ErrGap) and friends match by name.
func (e *VerifyError) Unwrap() error { return sentinels[e.Name] }

func verr(name string, seq uint64, format string, args ...any) *VerifyError {
	return &VerifyError{Name: name, Seq: seq, Detail: fmt.Sprintf(format, args...)}
}

// Anchor is the verifier's state: the last verified entry and the key that follows it.
// The server keeps one per device and epoch, and replaces it by compare-and-set on N,
// durably, before it acks.
type Anchor struct {
	Dev     string
	Epoch   uint32
	N       uint64
	Head    Hash
	NextKey Key
}

// NewAnchor is the anchor of a freshly provisioned device: N=0, Head=h_0, NextKey=K_1.
func NewAnchor(dev string, epoch uint32, k1 Key) Anchor {
	return Anchor{Dev: dev, Epoch: epoch, N: 0, Head: GenesisHead(dev, epoch), NextKey: k1}
}

// Verify checks seg against a and returns the advanced anchor, the newly verified entries
// (n > a.N, a subslice of seg.Entries), or a *VerifyError naming the first failure.
//
// headAt may be nil; when non-nil it returns the stored head of an already verified entry,
// so that resent entries (n ≤ a.N) can be checked against what was verified (fork). Resent
// entries whose predecessor head is unknown cannot be checked and are ignored: they are
// never returned as new.
//
// Checks run in this order, so that every implementation names the same failure:
// rollback, sequence (gap/reorder), count, fork, forged-entry, head-mismatch, bad-seal.
func Verify(a Anchor, seg wire.Segment, headAt func(n uint64) (Hash, bool)) (Anchor, []wire.Entry, error) {
	v, err := verify(a, seg, headAt, true, false, false)
	return v.Anchor, v.Fresh, err
}

// VerifyHeads is Verify without the chain key: it checks sequence numbers, overlaps and the
// head chain up to the claimed head, but neither tags nor the seal. It is what a third party
// holding only signed anchor receipts can check. The returned anchor has a zero NextKey.
func VerifyHeads(a Anchor, seg wire.Segment, headAt func(n uint64) (Hash, bool)) (Anchor, []wire.Entry, error) {
	a.NextKey = Key{}
	v, err := verify(a, seg, headAt, false, false, false)
	return v.Anchor, v.Fresh, err
}

// VerifyPrefix is an extension, not part of fschain.md: it accepts a segment that carries
// only the oldest of the entries the device claims (last entry < claimed n), for
// store-and-forward over transports whose message limit is smaller than the backlog. Every
// new entry's tag is checked and the anchor advances to the last entry sent, but neither
// the claimed head nor the seal can be checked (they are about n). Tail truncation is
// therefore caught only by the segment that ends at the claimed n: a server using this
// must treat a device that never sends it as incomplete. A segment that does reach the
// claimed n is checked exactly as by Verify. A prefix holding only entries at or below the
// anchor (resent because the ack of the chunk that carried them was lost) is accepted as
// one that moves nothing, once its entries reproduce the verified heads: the device learns
// the anchor from the answer and goes on from there.
func VerifyPrefix(a Anchor, seg wire.Segment, headAt func(n uint64) (Hash, bool)) (Anchor, []wire.Entry, error) {
	v, err := verify(a, seg, headAt, true, true, false)
	return v.Anchor, v.Fresh, err
}

// Verified is what a successful VerifyChunk computed, so that no caller hashes an entry
// again: the advanced anchor, the newly verified entries and the head h_n of each.
type Verified struct {
	Anchor Anchor
	Fresh  []wire.Entry // a subslice of the segment's entries
	Heads  []Hash       // Heads[i] is the head of Fresh[i]
	// Partial is true when the segment stopped short of the claimed n (VerifyPrefix): its
	// entries' tags verified, but neither the claimed head nor the seal could be checked.
	Partial bool
}

// VerifyChunk is VerifyPrefix returning the heads it computed (a server stores one per
// entry, to answer headAt later).
func VerifyChunk(a Anchor, seg wire.Segment, headAt func(n uint64) (Hash, bool)) (Verified, error) {
	return verify(a, seg, headAt, true, true, true)
}

func verify(a Anchor, seg wire.Segment, headAt func(n uint64) (Hash, bool), keyed, prefix, wantHeads bool) (Verified, error) {
	fail := func(err *VerifyError) (Verified, error) { return Verified{Anchor: a}, err }
	es := seg.Entries
	// rollback: the device claims to be behind what the server already verified.
	if seg.N < a.N {
		return fail(verr(NameRollback, seg.N, "device claims n=%d, below the verified anchor n=%d", seg.N, a.N))
	}
	// sequence: entries First, First+1, ... without holes, starting at most at a.N+1.
	last := a.N
	if len(es) > 0 {
		first := seg.First
		if first == 0 {
			return fail(verr(NameReorder, 0, "segment starts at entry 0; entries are numbered from 1"))
		}
		if first > a.N+1 {
			return fail(verr(NameGap, a.N+1, "segment starts at entry %d, verified up to %d", first, a.N))
		}
		for j := range es {
			want := first + uint64(j)
			if got := es[j].N; got != want {
				name := NameReorder
				if got > want && !containsN(es[j+1:], want) {
					name = NameGap
				}
				return fail(verr(name, want, "entry %d found where entry %d belongs", got, want))
			}
		}
		if end := first + uint64(len(es)) - 1; end > last {
			last = end
		}
	}
	// count: the claimed n must be the last entry (or the anchor when nothing is new).
	partial := prefix && seg.N > last && len(es) > 0 && last >= a.N
	if seg.N > last && !partial {
		return fail(verr(NameGap, last+1, "device claims n=%d but sent entries only up to %d", seg.N, last))
	}
	if seg.N < last {
		return fail(verr(NameHeadMismatch, seg.N, "device claims n=%d but sent entries up to %d", seg.N, last))
	}
	c := newChain(a.Dev, a.Epoch)
	// fork: resent entries must reproduce the verified heads.
	j := 0
	var prev Hash
	known := false
	for ; j < len(es) && es[j].N <= a.N; j++ {
		e := &es[j]
		if !known {
			if e.N == 1 {
				prev, known = GenesisHead(a.Dev, a.Epoch), true
			} else if headAt != nil {
				prev, known = headAt(e.N - 1)
			}
		}
		var want Hash
		have := false
		if e.N == a.N {
			want, have = a.Head, true
		} else if headAt != nil {
			want, have = headAt(e.N)
		}
		if !known {
			prev, known = want, have
			continue
		}
		if len(e.Tag) != TagSize || len(e.Payload) > wire.MaxPayload {
			if have {
				return fail(verr(NameFork, e.N, "resent entry has a %d-byte tag and %d-byte payload", len(e.Tag), len(e.Payload)))
			}
			known = false
			continue
		}
		h := c.headOf(&prev, e.N, e.T, e.Type, e.Payload, e.Tag)
		if have && h != want {
			return fail(verr(NameFork, e.N, "resent entry %d differs from the verified one", e.N))
		}
		prev = h
	}
	fresh := es[j:]
	// forged-entry: every new tag under the evolved key.
	head, k := a.Head, a.NextKey
	var heads []Hash
	if wantHeads {
		heads = make([]Hash, len(fresh))
	}
	for i := range fresh {
		e := &fresh[i]
		if len(e.Tag) != TagSize {
			return fail(verr(NameForgedEntry, e.N, "tag is %d bytes, want %d", len(e.Tag), TagSize))
		}
		if len(e.Payload) > wire.MaxPayload {
			return fail(verr(NameForgedEntry, e.N, "payload is %d bytes, limit %d", len(e.Payload), wire.MaxPayload))
		}
		if keyed {
			tag, h := c.step(&k, &head, e.N, e.T, e.Type, e.Payload)
			if !hmac.Equal(tag[:], e.Tag) {
				return fail(verr(NameForgedEntry, e.N, "tag does not verify under K_%d", e.N))
			}
			head = h
			k = Evolve(k)
		} else {
			head = c.headOf(&head, e.N, e.T, e.Type, e.Payload, e.Tag)
		}
		if wantHeads {
			heads[i] = head
		}
	}
	if partial {
		return Verified{Anchor: Anchor{Dev: a.Dev, Epoch: a.Epoch, N: last, Head: head, NextKey: k}, Fresh: fresh, Heads: heads, Partial: true}, nil
	}
	// head-mismatch: the claimed head is the recomputed one.
	if len(seg.Head) != len(head) || !hmac.Equal(seg.Head, head[:]) {
		return fail(verr(NameHeadMismatch, seg.N, "claimed head %x, recomputed %x", seg.Head, head[:]))
	}
	// bad-seal: only the holder of K_{m+1} could have sealed (m, h_m).
	if keyed {
		s := c.seal(&k, seg.N, &head)
		if !hmac.Equal(seg.Seal, s[:]) {
			return fail(verr(NameBadSeal, seg.N, "seal does not verify under K_%d (entries cut off or state corrupted)", seg.N+1))
		}
	}
	return Verified{Anchor: Anchor{Dev: a.Dev, Epoch: a.Epoch, N: seg.N, Head: head, NextKey: k}, Fresh: fresh, Heads: heads}, nil
}

func containsN(es []wire.Entry, n uint64) bool {
	for i := range es {
		if es[i].N == n {
			return true
		}
	}
	return false
}

// EntryHead computes h_n of entry e from h_{n-1}. It needs no key: it is what a verifier
// stores per entry to answer headAt later, and what an auditor recomputes.
func EntryHead(dev string, epoch uint32, prev Hash, e *wire.Entry) Hash {
	return newChain(dev, epoch).headOf(&prev, e.N, e.T, e.Type, e.Payload, e.Tag)
}
