package dashboard

import (
	"crypto/hmac"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/fieldseal/fieldseal/server"
	"github.com/fieldseal/fieldseal/store"
)

// The console's actions. Each calls the Backend operation behind the matching API route
// (audited under the signed-in token's name) and sends the browser back to the device
// page with a one-line confirmation (post/redirect/get: a reload does not repeat it).

func (d *dash) done(w http.ResponseWriter, r *http.Request, dev, msg string) {
	http.Redirect(w, r, "/ui/devices/"+url.PathEscape(dev)+"?done="+url.QueryEscape(msg)+"&ds="+d.flashMAC(msg), http.StatusSeeOther)
}

// flashMAC binds a confirmation to this server, so a link cannot make the console show
// text of someone else's choosing.
func (d *dash) flashMAC(msg string) string {
	return base64.RawURLEncoding.EncodeToString(d.sess.mac("flash", []byte(msg))[:12])
}

// flash is the confirmation a redirect carries, if this server wrote it.
func (d *dash) flash(r *http.Request) string {
	msg, sig := r.URL.Query().Get("done"), r.URL.Query().Get("ds")
	if msg == "" || !hmac.Equal([]byte(sig), []byte(d.flashMAC(msg))) {
		return ""
	}
	return msg
}

// refused answers an action the server refused, in words, with the status the API uses.
func (d *dash) refused(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		d.problem(w, r, http.StatusNotFound, "Not found: "+err.Error())
	case errors.Is(err, store.ErrConflict):
		d.problem(w, r, http.StatusConflict, "Someone else changed this first: "+err.Error()+". Go back, reload and try again.")
	case errors.Is(err, ErrForbidden):
		d.problem(w, r, http.StatusForbidden, err.Error())
	case errors.Is(err, server.ErrInput):
		d.problem(w, r, http.StatusBadRequest, strings.TrimPrefix(err.Error(), server.ErrInput.Error()+": "))
	default:
		d.problem(w, r, http.StatusInternalServerError, "The server failed: "+err.Error())
	}
}

func field(r *http.Request, name string, max int) (string, bool) {
	v := strings.TrimSpace(r.PostFormValue(name))
	return v, len(v) <= max
}

func (d *dash) ack(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		d.problem(w, r, http.StatusBadRequest, "Alert number "+strconv.Quote(r.PathValue("id"))+" is not a number.")
		return
	}
	if err := d.be.AckAlert(r.Context(), current(r.Context()).User, id); err != nil {
		d.refused(w, r, err)
		return
	}
	if dev := r.PostFormValue("device"); dev != "" {
		d.done(w, r, dev, "Alert "+strconv.FormatInt(id, 10)+" acknowledged.")
		return
	}
	http.Redirect(w, r, "/ui/alerts", http.StatusSeeOther)
}

func (d *dash) clear(w http.ResponseWriter, r *http.Request) {
	dev := r.PathValue("id")
	reason, ok := field(r, "reason", 1000)
	if !ok || reason == "" {
		d.problem(w, r, http.StatusBadRequest, "Write what the inspection found (1–1000 characters): the reason is kept in the audit record.")
		return
	}
	if err := d.be.ClearTamper(r.Context(), current(r.Context()).User, dev, reason); err != nil {
		d.refused(w, r, err)
		return
	}
	d.done(w, r, dev, "Tamper cleared: the device is trusted again, and a clear token waits for its next report.")
}

func (d *dash) bookVisit(w http.ResponseWriter, r *http.Request) {
	dev := r.PathValue("id")
	wo, ok1 := field(r, "work_order", 64)
	tech, ok2 := field(r, "technician", 64)
	hours, err := strconv.ParseFloat(r.PostFormValue("window_h"), 64)
	switch {
	case !ok1 || !ok2 || wo == "":
		d.problem(w, r, http.StatusBadRequest, "A work order (1–64 characters) is required; the technician's name is at most 64 characters.")
		return
	case err != nil || hours <= 0 || hours > 7*24:
		d.problem(w, r, http.StatusBadRequest, "The service window is a number of hours between 0 and 168.")
		return
	}
	v, err := d.be.BookVisit(r.Context(), current(r.Context()).User, dev, wo, tech, time.Duration(hours*float64(time.Hour)))
	if err != nil {
		d.refused(w, r, err)
		return
	}
	d.done(w, r, dev, "Service visit "+v.ID+" booked: the service token goes out with the device's next acknowledgement.")
}

func (d *dash) closeVisit(w http.ResponseWriter, r *http.Request) {
	seal, ok1 := field(r, "seal_number", 64)
	result, ok2 := field(r, "result", 1000)
	if !ok1 || !ok2 || seal == "" || result == "" {
		d.problem(w, r, http.StatusBadRequest, "Closing a visit needs the new physical seal number (1–64 characters) and the inspection result (1–1000).")
		return
	}
	v, err := d.be.CloseVisit(r.Context(), current(r.Context()).User, r.PathValue("id"), seal, result)
	if err != nil {
		d.refused(w, r, err)
		return
	}
	d.done(w, r, v.Dev, "Visit closed with seal "+seal+".")
}
