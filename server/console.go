package server

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"github.com/fieldseal/fieldseal/analytics"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/fieldseal/fieldseal/store"
)

// The operator's console (server/dashboard, mounted through Config.Dashboard) signs people
// in with their API tokens and acts through Console: the same audited operations as the
// API routes, with the same roles (consoleRoles must agree with Routes: the test
// TestConsoleRolesMatchAPI checks). The server itself imports no HTML.

// Console actions: what a signed-in person may do, by role.
const (
	ActAck        = "acknowledge alerts"
	ActClear      = "clear a tamper"
	ActVisitOpen  = "book a service visit"
	ActVisitClose = "close a service visit"
	ActCheckIn    = "check in a returned device"
	ActSignOut    = "sign out"
)

var consoleRoles = map[string][]string{
	ActAck:        OperatorRole, // POST /api/v1/alerts/{id}/ack
	ActClear:      OperatorRole, // POST /api/v1/devices/{id}/clear
	ActVisitOpen:  ServiceRole,  // POST /api/v1/devices/{id}/visits
	ActVisitClose: ServiceRole,  // POST /api/v1/visits/{id}/close
	ActCheckIn:    AnyRole,      // reads only: checks an uploaded log
	ActSignOut:    AnyRole,
}

// ConsoleActionRoutes maps each console action to the API route it shares its rule with.
var ConsoleActionRoutes = map[string]string{
	ActAck:        "POST /api/v1/alerts/{id}/ack",
	ActClear:      "POST /api/v1/devices/{id}/clear",
	ActVisitOpen:  "POST /api/v1/devices/{id}/visits",
	ActVisitClose: "POST /api/v1/visits/{id}/close",
}

// ErrForbidden is a console action the signed-in role may not take.
var ErrForbidden = errors.New("forbidden")

// ConsoleUser is who a console session belongs to: an API token's name and role.
type ConsoleUser struct {
	Name, Role string
	TokenHash  []byte
}

// Console is the server's side of the operator's console.
type Console struct {
	s    *Server
	key  []byte
	mu   sync.Mutex
	once map[string]onceCode // one-time sign-in codes (the demo's link)
}

type onceCode struct {
	hash    []byte
	expires time.Time
}

func newConsole(s *Server) *Console {
	m := hmac.New(sha256.New, s.priv.Seed())
	m.Write([]byte("fieldseal console session key v1"))
	return &Console{s: s, key: m.Sum(nil), once: map[string]onceCode{}}
}

// Console is the server's console backend.
func (s *Server) Console() *Console { return s.con }

// SessionKey MACs the console's session cookies and CSRF tokens. It is derived from the
// server key, so replicas that share server.key share sessions.
func (c *Console) SessionKey() []byte { return c.key }

// Now is the fleet's clock (the demo's is compressed).
func (c *Console) Now() time.Time { return c.s.now() }

// SetDashboard mounts the console's handler; call it before Start.
func (s *Server) SetDashboard(h http.Handler) { s.cfg.Dashboard = h }

// ConsoleLink returns a one-time sign-in path for the admin token ("/ui/login?once=…"),
// valid for 24 hours or until used: the demo prints it so the browser never carries the
// token itself.
func (s *Server) ConsoleLink() string {
	code := newSecret("")
	s.con.mu.Lock()
	s.con.once[code] = onceCode{hash: hashToken(s.admin), expires: time.Now().Add(24 * time.Hour)}
	s.con.mu.Unlock()
	return "/ui/login?once=" + code
}

func (c *Console) Redeem(code string) (ConsoleUser, bool) {
	c.mu.Lock()
	oc, ok := c.once[code]
	delete(c.once, code)
	c.mu.Unlock()
	if !ok || time.Now().After(oc.expires) {
		return ConsoleUser{}, false
	}
	u, err := c.Lookup(context.Background(), oc.hash)
	return u, err == nil
}

func (c *Console) SignIn(ctx context.Context, secret string) (ConsoleUser, error) {
	if secret == "" || len(secret) > 256 {
		return ConsoleUser{}, store.ErrNotFound
	}
	u, err := c.Lookup(ctx, hashToken(secret))
	if err != nil {
		c.s.AuditAdmin(ctx, "console", "sign-in-refused", "", "unknown-token", nil)
		return u, err
	}
	c.s.AuditAdmin(ctx, u.Name, "sign-in", "", "console", map[string]any{"role": u.Role})
	return u, nil
}

func (c *Console) Lookup(ctx context.Context, hash []byte) (ConsoleUser, error) {
	t, err := c.s.st.GetAPIToken(ctx, hash)
	if err != nil {
		return ConsoleUser{}, err
	}
	return ConsoleUser{Name: t.Name, Role: t.Role, TokenHash: t.Hash}, nil
}

func (c *Console) Allowed(role, action string) bool { return ConsoleAllowed(role, action) }

// ConsoleAllowed reports whether role may take a console action.
func ConsoleAllowed(role, action string) bool {
	return slices.Contains(consoleRoles[action], role)
}

// check repeats the role rule inside the operation, whatever the caller checked.
func (c *Console) check(u ConsoleUser, action string) error {
	if !c.Allowed(u.Role, action) {
		return fmt.Errorf("%w: role %s may not %s", ErrForbidden, u.Role, action)
	}
	return nil
}

// DistrictResult is a district's latest water balance and inspection list (analytics/districts).
func (c *Console) DistrictResult(ctx context.Context, id string) (*DistrictResult, error) {
	return c.s.DistrictResult(ctx, id)
}

// OnInspectionList says whether dev is flagged on its district's inspection list.
func (c *Console) OnInspectionList(dev string) (analytics.Candidate, bool) {
	return c.s.OnInspectionList(dev)
}

// consoleErr is the identity: the console shows ErrInput's text as a 400.
func consoleErr(err error) error { return err }

func (c *Console) AckAlert(ctx context.Context, u ConsoleUser, id int64) error {
	if err := c.check(u, ActAck); err != nil {
		return err
	}
	return consoleErr(c.s.AckAlert(ctx, id, u.Name))
}

func (c *Console) ClearTamper(ctx context.Context, u ConsoleUser, dev, result string) error {
	if err := c.check(u, ActClear); err != nil {
		return err
	}
	return consoleErr(c.s.ClearTamper(ctx, dev, result, u.Name))
}

func (c *Console) BookVisit(ctx context.Context, u ConsoleUser, dev, workOrder, technician string, window time.Duration) (*store.Visit, error) {
	if err := c.check(u, ActVisitOpen); err != nil {
		return nil, err
	}
	v, err := c.s.OpenVisit(ctx, dev, workOrder, technician, window, u.Name)
	return v, consoleErr(err)
}

func (c *Console) CloseVisit(ctx context.Context, u ConsoleUser, visit, sealNumber, result string) (*store.Visit, error) {
	if err := c.check(u, ActVisitClose); err != nil {
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
	s.AuditAdmin(ctx, actor, "alert-ack", "", "acknowledged", map[string]any{"alert": id})
	return nil
}
