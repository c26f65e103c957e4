package dashboard

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/fieldseal/fieldseal/analytics"
	"github.com/fieldseal/fieldseal/server"
	"github.com/fieldseal/fieldseal/store"
)

// The console's backend on a real server: it signs people in with their API tokens and acts
// through the server's audited operations, the same as the API routes, with the same roles
// (consoleRoles must agree with server/httpapi's routes: TestConsoleRolesMatchAPI checks).

// Actions the console offers; Backend.Allowed says which role may take them.
const (
	ActAck        = "acknowledge alerts"
	ActClear      = "clear a tamper"
	ActVisitOpen  = "book a service visit"
	ActVisitClose = "close a service visit"
	ActCheckIn    = "check in a returned device"
	actSignOut    = "sign out"
)

var consoleRoles = map[string][]string{
	ActAck:        server.OperatorRoles, // POST /api/v1/alerts/{id}/ack
	ActClear:      server.OperatorRoles, // POST /api/v1/devices/{id}/clear
	ActVisitOpen:  server.ServiceRoles,  // POST /api/v1/devices/{id}/visits
	ActVisitClose: server.ServiceRoles,  // POST /api/v1/visits/{id}/close
	ActCheckIn:    server.AnyRole,       // reads only: checks an uploaded log
	actSignOut:    server.AnyRole,
}

// ActionRoutes maps each console action to the API route it shares its rule with.
var ActionRoutes = map[string]string{
	ActAck:        "POST /api/v1/alerts/{id}/ack",
	ActClear:      "POST /api/v1/devices/{id}/clear",
	ActVisitOpen:  "POST /api/v1/devices/{id}/visits",
	ActVisitClose: "POST /api/v1/visits/{id}/close",
}

// ErrForbidden is a console action the signed-in role may not take.
var ErrForbidden = errors.New("forbidden")

// User is who a session belongs to: an API token's name and role.
type User struct {
	Name, Role string
	TokenHash  []byte
}

// console is the Backend of a real server.
type console struct {
	s  *server.Server
	st store.Store
}

func (c *console) Redeem(code string) (User, bool) {
	hash, ok := c.s.RedeemConsoleLink(code)
	if !ok {
		return User{}, false
	}
	u, err := c.Lookup(context.Background(), hash)
	return u, err == nil
}

func (c *console) SignIn(ctx context.Context, secret string) (User, error) {
	if secret == "" || len(secret) > 256 {
		return User{}, store.ErrNotFound
	}
	t, err := c.s.LookupAPIToken(ctx, secret)
	if err != nil {
		c.s.AuditAdmin(ctx, "console", "sign-in-refused", "", "unknown-token", nil)
		return User{}, err
	}
	u := User{Name: t.Name, Role: t.Role, TokenHash: t.Hash}
	c.s.AuditAdmin(ctx, u.Name, "sign-in", "", "console", map[string]any{"role": u.Role})
	return u, nil
}

func (c *console) Lookup(ctx context.Context, hash []byte) (User, error) {
	t, err := c.st.GetAPIToken(ctx, hash)
	if err != nil {
		return User{}, err
	}
	return User{Name: t.Name, Role: t.Role, TokenHash: t.Hash}, nil
}

func (c *console) Allowed(role, action string) bool { return Allowed(role, action) }

// Allowed reports whether role may take a console action.
func Allowed(role, action string) bool {
	return slices.Contains(consoleRoles[action], role)
}

// check repeats the role rule inside the operation, whatever the caller checked.
func (c *console) check(u User, action string) error {
	if !c.Allowed(u.Role, action) {
		return fmt.Errorf("%w: role %s may not %s", ErrForbidden, u.Role, action)
	}
	return nil
}

// DistrictResult is a district's latest water balance and inspection list (analytics/districts).
func (c *console) DistrictResult(ctx context.Context, id string) (*server.DistrictResult, error) {
	return c.s.DistrictResult(ctx, id)
}

// OnInspectionList says whether dev is flagged on its district's inspection list.
func (c *console) OnInspectionList(dev string) (analytics.Candidate, bool) {
	return c.s.OnInspectionList(dev)
}

func (c *console) AckAlert(ctx context.Context, u User, id int64) error {
	if err := c.check(u, ActAck); err != nil {
		return err
	}
	return c.s.AckAlert(ctx, id, u.Name)
}

func (c *console) ClearTamper(ctx context.Context, u User, dev, result string) error {
	if err := c.check(u, ActClear); err != nil {
		return err
	}
	return c.s.ClearTamper(ctx, dev, result, u.Name)
}

func (c *console) BookVisit(ctx context.Context, u User, dev, workOrder, technician string, window time.Duration) (*store.Visit, error) {
	if err := c.check(u, ActVisitOpen); err != nil {
		return nil, err
	}
	return c.s.OpenVisit(ctx, dev, workOrder, technician, window, u.Name)
}

func (c *console) CloseVisit(ctx context.Context, u User, visit, sealNumber, result string) (*store.Visit, error) {
	if err := c.check(u, ActVisitClose); err != nil {
		return nil, err
	}
	return c.s.CloseVisit(ctx, visit, sealNumber, result, u.Name)
}
