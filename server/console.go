package server

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fieldseal/fieldseal/server/dashboard"
	"github.com/fieldseal/fieldseal/store"
)

// The operator's console (server/dashboard) is mounted at "/" and "/ui/" of every server.
// It signs people in with their API tokens and acts through the same audited operations
// as the API routes, with the same roles (consoleRoles must agree with Routes: the test
// TestConsoleRolesMatchAPI checks).

var consoleRoles = map[string][]string{
	dashboard.ActAck:        opRoles,     // POST /api/v1/alerts/{id}/ack
	dashboard.ActClear:      opRoles,     // POST /api/v1/devices/{id}/clear
	dashboard.ActVisitOpen:  serviceRole, // POST /api/v1/devices/{id}/visits
	dashboard.ActVisitClose: serviceRole, // POST /api/v1/visits/{id}/close
	dashboard.ActCheckIn:    anyRole,     // reads only: checks an uploaded log
	"sign out":              anyRole,
}

// ConsoleActionRoutes maps each console action to the API route it shares its rule with.
var ConsoleActionRoutes = map[string]string{
	dashboard.ActAck:        "POST /api/v1/alerts/{id}/ack",
	dashboard.ActClear:      "POST /api/v1/devices/{id}/clear",
	dashboard.ActVisitOpen:  "POST /api/v1/devices/{id}/visits",
	dashboard.ActVisitClose: "POST /api/v1/visits/{id}/close",
}

type console struct {
	s       *Server
	handler http.Handler
	mu      sync.Mutex
	once    map[string]onceCode // one-time sign-in codes (the demo's link)
}

type onceCode struct {
	hash    []byte
	expires time.Time
}

func (s *Server) consoleHandler() http.Handler {
	s.consoleOnce.Do(func() {
		c := &console{s: s, once: map[string]onceCode{}}
		m := hmac.New(sha256.New, s.priv.Seed())
		m.Write([]byte("fieldseal console session key v1"))
		c.handler = dashboard.New(s.st, dashboard.Options{Backend: c, SessionKey: m.Sum(nil), ServerPub: s.PublicKey(), Now: s.now})
		s.con = c
	})
	return s.con.handler
}

// ConsoleLink returns a one-time sign-in path for the admin token ("/ui/login?once=…"),
// valid for 24 hours or until used: the demo prints it so the browser never carries the
// token itself.
func (s *Server) ConsoleLink() string {
	s.consoleHandler()
	code := newSecret("")
	s.con.mu.Lock()
	s.con.once[code] = onceCode{hash: hashToken(s.admin), expires: time.Now().Add(24 * time.Hour)}
	s.con.mu.Unlock()
	return "/ui/login?once=" + code
}

func (c *console) Redeem(code string) (dashboard.User, bool) {
	c.mu.Lock()
	oc, ok := c.once[code]
	delete(c.once, code)
	c.mu.Unlock()
	if !ok || time.Now().After(oc.expires) {
		return dashboard.User{}, false
	}
	u, err := c.Lookup(context.Background(), oc.hash)
	return u, err == nil
}

func (c *console) SignIn(ctx context.Context, secret string) (dashboard.User, error) {
	if secret == "" || len(secret) > 256 {
		return dashboard.User{}, store.ErrNotFound
	}
	u, err := c.Lookup(ctx, hashToken(secret))
	if err != nil {
		c.s.auditAdmin(ctx, "console", "sign-in-refused", "", "unknown-token", nil)
		return u, err
	}
	c.s.auditAdmin(ctx, u.Name, "sign-in", "", "console", map[string]any{"role": u.Role})
	return u, nil
}

func (c *console) Lookup(ctx context.Context, hash []byte) (dashboard.User, error) {
	t, err := c.s.st.GetAPIToken(ctx, hash)
	if err != nil {
		return dashboard.User{}, err
	}
	return dashboard.User{Name: t.Name, Role: t.Role, TokenHash: t.Hash}, nil
}

func (c *console) Allowed(role, action string) bool { return ConsoleAllowed(role, action) }

// ConsoleAllowed reports whether role may take a console action.
func ConsoleAllowed(role, action string) bool {
	return slices.Contains(consoleRoles[action], role)
}

// check repeats the role rule inside the operation, whatever the caller checked.
func (c *console) check(u dashboard.User, action string) error {
	if !c.Allowed(u.Role, action) {
		return fmt.Errorf("%w: role %s may not %s", dashboard.ErrRefused, u.Role, action)
	}
	return nil
}

// consoleErr turns an operator error into the console's refusal (shown as 400).
func consoleErr(err error) error {
	if errors.Is(err, ErrInput) {
		return fmt.Errorf("%w: %s", dashboard.ErrRefused, strings.TrimPrefix(err.Error(), ErrInput.Error()+": "))
	}
	return err
}

func (c *console) AckAlert(ctx context.Context, u dashboard.User, id int64) error {
	if err := c.check(u, dashboard.ActAck); err != nil {
		return err
	}
	return consoleErr(c.s.AckAlert(ctx, id, u.Name))
}

func (c *console) ClearTamper(ctx context.Context, u dashboard.User, dev, result string) error {
	if err := c.check(u, dashboard.ActClear); err != nil {
		return err
	}
	return consoleErr(c.s.ClearTamper(ctx, dev, result, u.Name))
}

func (c *console) BookVisit(ctx context.Context, u dashboard.User, dev, workOrder, technician string, window time.Duration) (*store.Visit, error) {
	if err := c.check(u, dashboard.ActVisitOpen); err != nil {
		return nil, err
	}
	v, err := c.s.openVisit(ctx, dev, workOrder, technician, window, u.Name)
	return v, consoleErr(err)
}

func (c *console) CloseVisit(ctx context.Context, u dashboard.User, visit, sealNumber, result string) (*store.Visit, error) {
	if err := c.check(u, dashboard.ActVisitClose); err != nil {
		return nil, err
	}
	v, err := c.s.CloseVisit(ctx, visit, sealNumber, result, u.Name)
	return v, consoleErr(err)
}

// AckAlert acknowledges an alert and records who did (the API route and the console).
func (s *Server) AckAlert(ctx context.Context, id int64, actor string) error {
	if err := s.st.AckAlert(ctx, id, actor, s.now()); err != nil {
		return err
	}
	s.auditAdmin(ctx, actor, "alert-ack", "", "acknowledged", map[string]any{"alert": id})
	return nil
}
