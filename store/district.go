package store

import (
	"context"
	"fmt"
	"time"
)

// District is a district metered area the server computes a water balance for. Config is
// the district's analytics configuration as JSON (allowances, targets, infrastructure, time
// zone; see analytics.DistrictConfig): the store keeps it opaque so it depends on no
// analytics code. Its meters are DistrictMembers.
type District struct {
	ID      string
	Name    string
	Config  []byte
	Updated time.Time
}

// Roles of a meter in a district's balance.
const (
	RoleInlet    = "inlet"    // bulk meter feeding the district
	RoleOutlet   = "outlet"   // bulk meter carrying water on to another district
	RoleCustomer = "customer" // billed metered customer
)

// DistrictRoles lists the roles a member may have.
var DistrictRoles = []string{RoleInlet, RoleOutlet, RoleCustomer}

// DistrictMember puts one device into a district with a role. A device has at most one
// role per district; a bulk meter between two districts is the outlet of one and the inlet
// of the other.
type DistrictMember struct {
	District string
	Dev      string
	Role     string
}

// CheckRole reports a role that is not one of DistrictRoles.
func CheckRole(role string) error {
	for _, r := range DistrictRoles {
		if role == r {
			return nil
		}
	}
	return fmt.Errorf("role %q: want inlet, outlet or customer", role)
}

// Districts is the part of Store that holds districts (every backend implements it).
type Districts interface {
	// PutDistrict creates or replaces a district (its members stay).
	PutDistrict(ctx context.Context, d District) error
	GetDistrict(ctx context.Context, id string) (*District, error) // ErrNotFound
	ListDistricts(ctx context.Context) ([]District, error)         // by id
	// SetDistrictMembers sets each member's role (replacing the device's role in that
	// district), all or none; a district that does not exist is ErrNotFound.
	SetDistrictMembers(ctx context.Context, ms []DistrictMember) error
	// RemoveDistrictMember takes dev out of district (ErrNotFound if it was not in it).
	RemoveDistrictMember(ctx context.Context, district, dev string) error
	// ListDistrictMembers returns district's members by device id; district "" lists every
	// district's, by district then device.
	ListDistrictMembers(ctx context.Context, district string) ([]DistrictMember, error)
}
