package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/store/sqlstore"
)

func (s *Store) PutDistrict(ctx context.Context, d store.District) error {
	_, err := s.w.ExecContext(ctx, sqlstore.PutDistrict,
		d.ID, d.Name, string(d.Config), nanos(d.Updated))
	return err
}

func scanDistrict(r scanner) (store.District, error) {
	var d store.District
	var cfg string
	var u int64
	err := r.Scan(&d.ID, &d.Name, &cfg, &u)
	d.Config, d.Updated = []byte(cfg), fromNanos(u)
	return d, err
}

func (s *Store) GetDistrict(ctx context.Context, id string) (*store.District, error) {
	d, err := scanDistrict(s.r.QueryRowContext(ctx, sqlstore.GetDistrict, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: district %q", store.ErrNotFound, id)
	}
	if err != nil {
		return nil, err
	}
	return &d, nil
}

func (s *Store) ListDistricts(ctx context.Context) ([]store.District, error) {
	return queryAll(ctx, s.r, scanDistrict, sqlstore.ListDistricts)
}

func (s *Store) SetDistrictMembers(ctx context.Context, ms []store.DistrictMember) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, m := range ms {
		var n int
		if err := tx.QueryRowContext(ctx, sqlstore.CountDistrict, m.District).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("%w: district %q", store.ErrNotFound, m.District)
		}
		if _, err := tx.ExecContext(ctx, sqlstore.PutMember, m.District, m.Dev, m.Role); err != nil {
			return err
		}
	}
	return tx.Commit()
}

func (s *Store) RemoveDistrictMember(ctx context.Context, district, dev string) error {
	res, err := s.w.ExecContext(ctx, sqlstore.DeleteMember, district, dev)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("%w: %s is not in district %q", store.ErrNotFound, dev, district)
	}
	return nil
}

func (s *Store) ListDistrictMembers(ctx context.Context, district string) ([]store.DistrictMember, error) {
	scan := func(r scanner) (store.DistrictMember, error) {
		var m store.DistrictMember
		return m, r.Scan(&m.District, &m.Dev, &m.Role)
	}
	if district == "" {
		return queryAll(ctx, s.r, scan, sqlstore.ListMembers)
	}
	return queryAll(ctx, s.r, scan, sqlstore.ListMembersOf, district)
}
