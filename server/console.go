package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"net/http"
	"time"
)

// The operator's console (server/dashboard, mounted through Config.Dashboard) signs people
// in with their API tokens and acts through the server's audited operations; the server
// itself imports no HTML. It keeps what there is one of per server: the console's session
// key and the one-time sign-in codes of ConsoleLink.

// SetDashboard mounts the console's handler; call it before Start.
func (s *Server) SetDashboard(h http.Handler) { s.cfg.Dashboard = h }

// ConsoleSessionKey MACs the console's session cookies and CSRF tokens. It is derived from
// the server key, so replicas that share server.key share sessions.
func (s *Server) ConsoleSessionKey() []byte {
	m := hmac.New(sha256.New, s.priv.Seed())
	m.Write([]byte("fieldseal console session key v1"))
	return m.Sum(nil)
}

type onceCode struct {
	hash    []byte
	expires time.Time
}

// ConsoleLink returns a one-time sign-in path for the admin token ("/ui/login?once=…"),
// valid for 24 hours or until used: the demo prints it so the browser never carries the
// token itself.
func (s *Server) ConsoleLink() string {
	code := newSecret("")
	s.mu.Lock()
	s.once[code] = onceCode{hash: hashToken(s.admin), expires: time.Now().Add(24 * time.Hour)}
	s.mu.Unlock()
	return "/ui/login?once=" + code
}

// RedeemConsoleLink spends a ConsoleLink code: the hash of the API token it signs in as.
func (s *Server) RedeemConsoleLink(code string) (tokenHash []byte, ok bool) {
	s.mu.Lock()
	oc, ok := s.once[code]
	delete(s.once, code)
	s.mu.Unlock()
	if !ok || time.Now().After(oc.expires) {
		return nil, false
	}
	return oc.hash, true
}
