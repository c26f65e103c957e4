package dashboard

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Sign-in and sessions. Signing in with an API token's secret (one token per person:
// the admin creates them with POST /api/v1/tokens) sets a session cookie that names the
// token by its hash, carries an expiry and a random id, and is MAC'd with the server's
// session key; the secret itself never sits in the browser. Every request looks the token
// up again, so deleting the token ends its sessions at once. A form's CSRF field is a MAC
// of the session, checked on every state-changing request together with the Origin.

// SessionCookie is the console's session cookie.
const SessionCookie = "fieldseal_session"

// SessionLifetime is how long a sign-in lasts.
const SessionLifetime = 12 * time.Hour

type session struct {
	hash    []byte // the API token's SHA-256
	expires time.Time
	id      []byte // random, names the session for sign-out
	raw     string // the signed payload, base64
}

type sessions struct {
	key []byte
	mu  sync.Mutex
	// ended are sessions signed out before they expire (this process only: a sign-out on
	// one replica does not reach the others; deleting the API token does).
	ended map[string]time.Time
}

func (ss *sessions) mac(label string, payload []byte) []byte {
	m := hmac.New(sha256.New, ss.key)
	m.Write([]byte(label))
	m.Write(payload)
	return m.Sum(nil)
}

// issue returns the cookie value of a new session for the token hash.
func (ss *sessions) issue(hash []byte, now time.Time) string {
	p := make([]byte, 0, 32+8+16)
	p = append(p, hash...)
	p = binary.BigEndian.AppendUint64(p, uint64(now.Add(SessionLifetime).Unix()))
	id := make([]byte, 16)
	rand.Read(id)
	p = append(p, id...)
	return base64.RawURLEncoding.EncodeToString(p) + "." + base64.RawURLEncoding.EncodeToString(ss.mac("session", p))
}

// parse checks a cookie value: MAC, expiry, not signed out.
func (ss *sessions) parse(v string, now time.Time) (*session, bool) {
	a, b, ok := strings.Cut(v, ".")
	if !ok || len(v) > 200 {
		return nil, false
	}
	p, err1 := base64.RawURLEncoding.DecodeString(a)
	tag, err2 := base64.RawURLEncoding.DecodeString(b)
	if err1 != nil || err2 != nil || len(p) != 56 || !hmac.Equal(tag, ss.mac("session", p)) {
		return nil, false
	}
	s := &session{hash: p[:32], expires: time.Unix(int64(binary.BigEndian.Uint64(p[32:40])), 0), id: p[40:], raw: a}
	if !now.Before(s.expires) {
		return nil, false
	}
	ss.mu.Lock()
	_, ended := ss.ended[string(s.id)]
	ss.mu.Unlock()
	return s, !ended
}

func (ss *sessions) end(s *session, now time.Time) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for id, exp := range ss.ended {
		if now.After(exp) {
			delete(ss.ended, id)
		}
	}
	ss.ended[string(s.id)] = s.expires
}

// csrf is the form token of a session.
func (ss *sessions) csrf(s *session) string {
	return base64.RawURLEncoding.EncodeToString(ss.mac("csrf", []byte(s.raw))[:24])
}

func setSessionCookie(w http.ResponseWriter, r *http.Request, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
}

type ctxKey struct{}

type who struct {
	User
	sess *session
	csrf string
}

func current(ctx context.Context) *who {
	w, _ := ctx.Value(ctxKey{}).(*who)
	return w
}

// signedIn resolves the request's session to its user, or nil.
func (d *dash) signedIn(r *http.Request) *who {
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return nil
	}
	s, ok := d.sess.parse(c.Value, time.Now())
	if !ok {
		return nil
	}
	u, err := d.be.Lookup(r.Context(), s.hash)
	if err != nil {
		return nil
	}
	return &who{User: u, sess: s, csrf: d.sess.csrf(s)}
}

// view admits a signed-in user of any role to a page, or sends the browser to sign in.
func (d *dash) view(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u := d.signedIn(r)
		if u == nil {
			http.Redirect(w, r, "/ui/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, u)))
	}
}

// act guards a state-changing request: POST, signed in, same origin, the session's CSRF
// token, and a role the backend admits for action.
func (d *dash) act(action string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxUpload+64<<10)
		u := d.signedIn(r)
		if u == nil {
			d.problem(w, r, http.StatusUnauthorized, "Your session has ended: sign in again.")
			return
		}
		if !sameOrigin(r) || !hmac.Equal([]byte(r.PostFormValue("csrf")), []byte(u.csrf)) {
			d.problem(w, r, http.StatusForbidden, "This form is stale or came from another site (CSRF check failed): reload the page and try again.")
			return
		}
		if !d.be.Allowed(u.Role, action) {
			d.problem(w, r, http.StatusForbidden, "Role "+u.Role+" may not "+action+".")
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, u)))
	}
}

// sameOrigin: a browser names the page a POST came from in Origin (or at least Referer);
// it must be this host.
func sameOrigin(r *http.Request) bool {
	src := r.Header.Get("Origin")
	if src == "" || src == "null" {
		src = r.Header.Get("Referer")
	}
	if src == "" {
		return true // not a browser (curl with the CSRF token): the token decides
	}
	u, err := url.Parse(src)
	return err == nil && u.Host == r.Host
}

// safeNext keeps a post-sign-in redirect on this site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/ui/"
	}
	return next
}

func (d *dash) loginPage(w http.ResponseWriter, r *http.Request) {
	if code := r.URL.Query().Get("once"); code != "" {
		// The demo's one-time link: the code is spent by this visit.
		if u, ok := d.be.Redeem(code); ok {
			setSessionCookie(w, r, d.sess.issue(u.TokenHash, time.Now()), int(SessionLifetime/time.Second))
			http.Redirect(w, r, "/ui/", http.StatusSeeOther)
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
		d.render(w, r, "login.html", struct {
			page
			Next, Error string
		}{d.page(r, "Sign in", ""), "/ui/", "This sign-in link was already used or has expired. Sign in with your API token."})
		return
	}
	d.render(w, r, "login.html", struct {
		page
		Next, Error string
	}{d.page(r, "Sign in", ""), safeNext(r.URL.Query().Get("next")), ""})
}

func (d *dash) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	next := safeNext(r.PostFormValue("next"))
	if !sameOrigin(r) {
		d.problem(w, r, http.StatusForbidden, "Sign-in must come from this site's own form.")
		return
	}
	secret := strings.TrimSpace(r.PostFormValue("token"))
	u, err := d.be.SignIn(r.Context(), secret)
	if err != nil || secret == "" {
		w.WriteHeader(http.StatusUnauthorized)
		d.render(w, r, "login.html", struct {
			page
			Next, Error string
		}{d.page(r, "Sign in", ""), next, "That API token is not valid. Ask your administrator for a token of your own (fieldseal tokens are shown once, when created)."})
		return
	}
	setSessionCookie(w, r, d.sess.issue(u.TokenHash, time.Now()), int(SessionLifetime/time.Second))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (d *dash) logout(w http.ResponseWriter, r *http.Request) {
	if u := current(r.Context()); u != nil {
		d.sess.end(u.sess, time.Now())
	}
	setSessionCookie(w, r, "", -1)
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}

// HashToken is how an API token secret is named in sessions: its SHA-256, as the store keeps it.
func HashToken(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}
