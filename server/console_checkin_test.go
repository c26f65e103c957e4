package server_test

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/fieldseal/fieldseal/server"
	"github.com/fieldseal/fieldseal/wire"
)

// upload posts a file to the check-in form as the browser would.
func (b *browser) upload(path string, file []byte) (int, string) {
	b.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("csrf", b.csrf)
	fw, _ := mw.CreateFormFile("export", "meter.export")
	fw.Write(file)
	mw.Close()
	req, _ := http.NewRequest("POST", b.base+path, &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Origin", b.base)
	code, page, _ := b.do(req)
	return code, page
}

// The check-in report puts the device's exported log, checked offline with the server's
// key and receipt, beside what the server holds: a log that ends at the anchor, one with
// entries the server has not seen yet (and its tamper entry), and a file that is no export.
func TestConsoleCheckIn(t *testing.T) {
	e := newEnv(t)
	registerManifest(e)
	d := e.tampered("m-1")
	b := newBrowser(t, e.base)
	b.signIn(e.token("vera", server.RoleViewer))
	code, page, _ := b.get("/ui/devices/m-1/checkin")
	if code != 200 || !strings.Contains(page, "What the server holds") || !strings.Contains(page, `enctype="multipart/form-data"`) {
		t.Fatalf("check-in page: %d", code)
	}
	export := func() []byte {
		raw, err := d.w.Export().EncodeCBOR()
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	code, page = b.upload("/ui/devices/m-1/checkin", export())
	// The device pruned what the server acknowledged, the cover-open included: the export is
	// clean and says so, and the report points at the server's record.
	if code != 200 || !strings.Contains(page, "ends exactly where the server") || !strings.Contains(page, "<strong>clean</strong>") ||
		!strings.Contains(page, "none kept after entry 2") || !strings.Contains(page, "server holds tamper evidence") {
		t.Fatalf("export at the anchor: %d\n%s", code, section(page))
	}
	d.log(wire.EntryRegister, &wire.RegisterPayload{Litres: 1300})
	d.log(wire.EntryMagnet, &wire.MagnetPayload{Strength: 9})
	code, page = b.upload("/ui/devices/m-1/checkin", export())
	if code != 200 || !strings.Contains(page, "holds 2 entries the server has not seen yet") || !strings.Contains(page, "magnet") {
		t.Fatalf("export with unreported entries: %d\n%s", code, section(page))
	}
	code, page = b.upload("/ui/devices/m-1/checkin", []byte("not an export"))
	if code != 200 || !strings.Contains(page, "This is not a device log export") {
		t.Fatalf("garbage upload: %d\n%s", code, section(page))
	}
}

func section(page string) string {
	if i := strings.Index(page, "exported log says"); i >= 0 {
		return page[i:min(len(page), i+1500)]
	}
	return page[:min(len(page), 1500)]
}
