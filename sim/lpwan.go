package sim

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fieldseal/fieldseal/agent"
	"github.com/fieldseal/fieldseal/wire"
)

// lpRound is an LPWAN meter's report: one round of frames (the entries not sent yet, then
// a status) through its link, then the downlinks the network server held for it.
func (m *Meter) lpRound(ctx context.Context, now time.Time) {
	unix := uint64(now.Unix())
	frames, err := m.lp.Uplink(unix)
	if err != nil {
		m.logf("%s: lpwan uplink: %v", m.ID, err)
		return
	}
	st, err := m.status(frames[len(frames)-1])
	if err != nil {
		m.logf("%s: lpwan status: %v", m.ID, err)
		return
	}
	m.town.reports.Add(1)
	downs, err := m.lk.Round(ctx, frames, st)
	if err != nil {
		m.town.sendErrs.Add(1)
		if ctx.Err() == nil {
			m.logf("%s: lpwan: %v", m.ID, err)
		}
	} else {
		m.town.acked.Add(1) // the server took the status
	}
	for _, f := range downs {
		switch err := m.lp.Downlink(f, unix); {
		case err == nil, errors.Is(err, agent.ErrLPStale):
		case isRejected(err):
			m.town.rejected.Add(1)
		default:
			m.town.ackErrs.Add(1)
			m.logf("%s: lpwan downlink: %v", m.ID, err)
		}
	}
	m.serviceStarted(now)
}

// status decodes the round's status frame (the meter's own, under its key): the link
// needs its rseq and whether it asks for an ack.
func (m *Meter) status(frame []byte) (*wire.LPStatusFrame, error) {
	body, err := wire.LPOpen(frame, m.b.UplinkKey, m.b.Device, m.b.Epoch)
	if err != nil {
		return nil, err
	}
	if body[0] != wire.LPStatus {
		return nil, fmt.Errorf("the round's last frame is of type %#x, not a status", body[0])
	}
	return wire.DecodeLPStatus(body)
}
