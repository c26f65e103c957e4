package server

import (
	"context"
	"time"

	"github.com/fieldseal/fieldseal/analytics"
	"github.com/fieldseal/fieldseal/analytics/districts"
)

// The districts' water balance and inspection lists are analytics/districts' work; the
// server schedules it (Start) and answers for it under its established names.
type (
	BalanceConfig  = districts.Config
	DistrictResult = districts.Result
	BalancePoint   = districts.Point
)

// RefreshBalances recomputes every district's balance and inspection list now.
func (s *Server) RefreshBalances(ctx context.Context) error { return s.bal.Refresh(ctx) }

// DistrictResult returns a district's latest result, computing it if no refresh has yet.
func (s *Server) DistrictResult(ctx context.Context, id string) (*DistrictResult, error) {
	return s.bal.Result(ctx, id)
}

// OnInspectionList returns the entry of a device flagged on its district's inspection list.
func (s *Server) OnInspectionList(dev string) (analytics.Candidate, bool) {
	return s.bal.OnInspectionList(dev)
}

// DistrictBalance computes a district's IWA balance over [from, to) (zero from/to: the
// period of the latest refresh).
func (s *Server) DistrictBalance(ctx context.Context, id string, from, to time.Time) (*analytics.WaterBalance, error) {
	return s.bal.Balance(ctx, id, from, to)
}
