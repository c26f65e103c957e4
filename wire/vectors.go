package wire

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
)

// WireVector is one cross-language test vector of testdata/vectors/wire/: a message, the key
// it is sealed with, and the exact bytes every implementation must produce and accept.
type WireVector struct {
	Desc    string `json:"desc"`
	Kind    string `json:"kind"`               // report | ack | token | receipt | manifest
	Key     string `json:"key"`                // hex: MAC key (R or T) or Ed25519 seed
	Kid     string `json:"kid"`                // hex of the COSE kid
	Payload string `json:"payload"`            // hex of the deterministic CBOR payload
	Cose    string `json:"cose"`               // hex of the whole tagged COSE message
	WantErr string `json:"want_err,omitempty"` // for negative vectors: the error name a decoder must give
}

// GenerateVectors returns the wire vectors. They are deterministic: fixed keys, fixed values.
func GenerateVectors() []WireVector {
	rKey := bytes.Repeat([]byte{0x52}, 32) // 'R'
	tKey := bytes.Repeat([]byte{0x54}, 32) // 'T'
	serverSeed := bytes.Repeat([]byte{0x53}, 32)
	server := ed25519.NewKeyFromSeed(serverSeed)
	head := bytes.Repeat([]byte{0xab}, 32)

	report := &Report{Dev: "meter-0001", Epoch: 1, RSeq: 7, Boot: 3, Time: 1767225600,
		Man:   ManifestRef{Product: "watermeter", Version: 2, Root: bytes.Repeat([]byte{0x11}, 32)},
		Meas:  Measurement{Status: MeasMismatch, FilesChecked: 5, LastCheck: 1767225500, Bad: []Finding{{Path: "metrology.mpy", Kind: KindModified}}},
		State: StateCodeMismatch | StateRefusingCode,
		Log: Segment{First: 4, Entries: []Entry{{N: 4, T: 1767225500, Type: EntryCheckFail,
			Payload: MustMarshal(CheckFailPayload{Bad: []BadFile{{Path: "metrology.mpy", Kind: KindModified, Expected: bytes.Repeat([]byte{1}, 8), Seen: bytes.Repeat([]byte{2}, 8)}}, Files: 5}),
			Tag:     bytes.Repeat([]byte{0xcd}, 16)}}, N: 4, Head: head, Seal: bytes.Repeat([]byte{0xef}, 32)},
		Nonce: bytes.Repeat([]byte{0x0a}, 8), Reading: &Reading{Litres: 123456, Flags: FlowLeak}}
	reportCose, _ := SealReport(report, rKey)

	ack := &Ack{Dev: "meter-0001", Epoch: 1, AckedRSeq: 7, Nonce: bytes.Repeat([]byte{0x0c}, 8),
		Anchor: Anchor{N: 4, Head: head}}
	token := &Token{Dev: "meter-0001", Epoch: 1, ID: bytes.Repeat([]byte{0x71}, 16), Action: TokenService,
		UntilRSeq: 20, Expires: 1767312000, Args: TokenArgs{WorkOrder: "WO-17", Technician: "j.doe", Window: 3600}}
	tokenCose, _ := SealToken(token, tKey)
	ack.Commands = [][]byte{tokenCose}
	receipt := &Receipt{Dev: "meter-0001", Epoch: 1, N: 4, Head: head, Time: 1767225601}
	ack.Receipt = SignReceipt(receipt, server)
	ackCose, _ := SealAck(ack, tKey)

	forged := append([]byte(nil), ackCose...)
	forged[len(forged)-1] ^= 0x01

	h := hex.EncodeToString
	kid := h([]byte("meter-0001"))
	return []WireVector{
		{Desc: "report with one check-fail entry, MAC under R", Kind: "report", Key: h(rKey), Kid: kid, Payload: h(MustMarshal(report)), Cose: h(reportCose)},
		{Desc: "service token, MAC under T", Kind: "token", Key: h(tKey), Kid: kid, Payload: h(MustMarshal(token)), Cose: h(tokenCose)},
		{Desc: "ack with anchor, receipt and the service token as a command, MAC under T", Kind: "ack", Key: h(tKey), Kid: kid, Payload: h(MustMarshal(ack)), Cose: h(ackCose)},
		{Desc: "anchor receipt signed by the server key (key = Ed25519 seed)", Kind: "receipt", Key: h(serverSeed), Kid: h(KeyID(server.Public().(ed25519.PublicKey))), Payload: h(MustMarshal(receipt)), Cose: h(ack.Receipt)},
		{Desc: "forged ack: last MAC byte flipped", Kind: "ack", Key: h(tKey), Kid: kid, Payload: h(MustMarshal(ack)), Cose: h(forged), WantErr: ErrBadMAC.Error()},
		{Desc: "ack MAC'd under R instead of T", Kind: "ack", Key: h(tKey), Kid: kid, Payload: h(MustMarshal(ack)), Cose: h(mustSealAck(ack, rKey)), WantErr: ErrBadMAC.Error()},
	}
}

func mustSealAck(a *Ack, key []byte) []byte {
	b, err := SealAck(a, key)
	if err != nil {
		panic(err)
	}
	return b
}
