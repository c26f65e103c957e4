package server

// API roles, from least to most powerful. Each HTTP route (server/httpapi) and each
// console action lists the roles it admits.
const (
	RoleViewer     = "viewer"     // read devices, events, alerts, visits, manifests
	RoleOperator   = "operator"   // + acknowledge alerts, audit, service visits, clear tamper
	RoleTechnician = "technician" // read, open and close service visits
	RoleAdmin      = "admin"      // everything: manifests, provisioning, API tokens
)

// Roles lists every role.
var Roles = []string{RoleViewer, RoleOperator, RoleTechnician, RoleAdmin}

// The role sets routes and console actions share.
var (
	AnyRole       = []string{RoleViewer, RoleOperator, RoleTechnician, RoleAdmin}
	OperatorRoles = []string{RoleOperator, RoleAdmin}
	ServiceRoles  = []string{RoleOperator, RoleTechnician, RoleAdmin}
	AdminOnly     = []string{RoleAdmin}
)
