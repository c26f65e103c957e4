package fschain

import (
	"crypto/ed25519"
	"fmt"

	"github.com/fieldseal/fieldseal/wire"
)

// SignReceipt is the server's anchor receipt for a (fschain.md, "Anchor receipt"):
// COSE_Sign1 over [dev, epoch, n, h_n, server_time], sent in the ack and kept by the device.
func SignReceipt(a Anchor, serverTime uint64, serverKey ed25519.PrivateKey) []byte {
	return wire.SignReceipt(&wire.Receipt{Dev: a.Dev, Epoch: a.Epoch, N: a.N, Head: cp(a.Head[:]), Time: serverTime}, serverKey)
}

// VerifyReceipt checks an anchor receipt offline: the server's signature, and that it is
// about device dev in epoch.
func VerifyReceipt(data []byte, serverPub ed25519.PublicKey, dev string, epoch uint32) (*wire.Receipt, error) {
	r, err := wire.OpenReceipt(data, serverPub)
	if err != nil {
		return nil, err
	}
	if r.Dev != dev || r.Epoch != epoch {
		return nil, fmt.Errorf("%w: receipt for %s epoch %d, not %s epoch %d", wire.ErrMalformed, r.Dev, r.Epoch, dev, epoch)
	}
	if len(r.Head) != 32 {
		return nil, fmt.Errorf("%w: receipt head is %d bytes", wire.ErrMalformed, len(r.Head))
	}
	return r, nil
}
