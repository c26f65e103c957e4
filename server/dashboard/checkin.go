package dashboard

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"

	"github.com/fieldseal/fieldseal/fschain"
	"github.com/fieldseal/fieldseal/store"
)

// The check-in report of a returned device: what the server holds beside what the
// device's own exported log says (the same offline check as `fieldseal log verify`, with
// the server's receipt), on one printable page.

// maxUpload bounds an uploaded export (the guard's logs are far smaller).
const maxUpload = 8 << 20

type logSide struct {
	Verdict  string // clean, tamper, failed
	Summary  string
	Dev      string
	Epoch    uint32
	From, N  uint64
	Range    string
	Head     string
	Lines    []string
	Agrees   string // how the log relates to the server's anchor
	Mismatch bool
}

func (d *dash) checkinPage(w http.ResponseWriter, r *http.Request) {
	d.renderCheckin(w, r, nil, "")
}

func (d *dash) renderCheckin(w http.ResponseWriter, r *http.Request, side *logSide, uploadErr string) {
	data, err := d.loadDevice(r.Context(), r, r.PathValue("id"))
	if err != nil {
		d.fail(w, r, err)
		return
	}
	data.Title = "Check-in report " + data.D.ID
	d.render(w, r, "checkin.html", struct {
		*deviceData
		Log       *logSide
		UploadErr string
		FullHead  string
	}{data, side, uploadErr, hex.EncodeToString(data.D.AnchorHead)})
}

func (d *dash) checkin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxUpload+4096)
	f, _, err := r.FormFile("export")
	if err != nil {
		d.renderCheckin(w, r, nil, "Choose the device's exported log (the file from 'fieldseal log export' or the agent), at most 8 MiB.")
		return
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxUpload+1))
	if err != nil || len(b) > maxUpload {
		d.renderCheckin(w, r, nil, "The file could not be read or is over 8 MiB.")
		return
	}
	dev, err := d.st.GetDevice(r.Context(), r.PathValue("id"))
	if err != nil {
		d.fail(w, r, err)
		return
	}
	x, err := fschain.DecodeExport(b)
	if err != nil {
		d.renderCheckin(w, r, nil, "This is not a device log export: "+err.Error())
		return
	}
	opt := fschain.CheckOptions{ServerPub: d.pub}
	if len(dev.Receipt) > 0 {
		opt.Receipts = [][]byte{dev.Receipt}
	}
	res, err := fschain.CheckExport(x, opt)
	if err != nil {
		d.renderCheckin(w, r, nil, "The export cannot be checked: "+err.Error())
		return
	}
	d.renderCheckin(w, r, compareLog(dev, x, res), "")
}

// compareLog says what the export's offline check found and how it relates to the
// server's anchor.
func compareLog(dev *store.Device, x *fschain.Export, res *fschain.CheckResult) *logSide {
	s := &logSide{Dev: x.Dev, Epoch: x.Epoch, From: x.BaseN + 1, N: x.N, Head: hex.EncodeToString(x.Head)}
	s.Range = fmt.Sprintf("%d–%d", s.From, s.N)
	if s.N < s.From {
		s.Range = fmt.Sprintf("none kept after entry %d", s.N)
	}
	switch {
	case res.Err != nil:
		s.Verdict = "failed"
		s.Summary = fmt.Sprintf("The log fails verification: %s at entry %d — %s.", res.Err.Name, res.Err.Seq, lookupReason(res.Err.Name).Meaning)
	case len(res.Tamper) > 0:
		s.Verdict = "tamper"
		s.Summary = fmt.Sprintf("The log verifies and holds %d tamper event(s).", len(res.Tamper))
	default:
		s.Verdict = "clean"
		s.Summary = fmt.Sprintf("The log verifies: %d entries, no tamper events.", res.Entries)
	}
	if x.BaseN > 0 {
		s.Lines = append(s.Lines, fmt.Sprintf("Entries 1–%d were pruned on the device after the server acknowledged them; the server's record holds them.", x.BaseN))
	}
	if s.Verdict == "clean" && (dev.State == store.StateTampered || dev.State == store.StateSuspect) {
		s.Lines = append(s.Lines, "The server holds tamper evidence from entries the device has since pruned: the server's side of this report is the record.")
	}
	for _, t := range res.Tamper {
		l := fmt.Sprintf("Entry %d: %s", t.Entry.N, t.Summary)
		if t.LaterOK {
			l += " — later entries show the files matching again"
		}
		if t.Cleared {
			l += "; a later tamper-cleared entry records an inspection"
		}
		s.Lines = append(s.Lines, l)
	}
	if len(res.Receipts) > 0 {
		s.Lines = append(s.Lines, fmt.Sprintf("%d receipt(s) signed by this server agree with the log, up to entry %d.", len(res.Receipts), res.Covered))
	}
	switch {
	case x.Dev != dev.ID || x.Epoch != dev.Epoch:
		s.Mismatch, s.Agrees = true, fmt.Sprintf("This export is of %s epoch %d, not of %s epoch %d.", x.Dev, x.Epoch, dev.ID, dev.Epoch)
	case x.N < dev.AnchorN:
		s.Mismatch, s.Agrees = true, fmt.Sprintf("The device's log ends at entry %d, before the %d the server already verified: entries were cut off or an older copy restored (rollback).", x.N, dev.AnchorN)
	case x.N == dev.AnchorN && !bytes.Equal(x.Head, dev.AnchorHead):
		s.Mismatch, s.Agrees = true, "The device's head differs from the one the server verified at the same entry: the history was rewritten (fork)."
	case x.N == dev.AnchorN:
		s.Agrees = "The device's log ends exactly where the server's verified anchor is, with the same head."
	default:
		s.Agrees = fmt.Sprintf("The device holds %d entries the server has not seen yet (entries %d–%d); the next report delivers them.", x.N-dev.AnchorN, dev.AnchorN+1, x.N)
	}
	return s
}
