package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/store/sqlstore"
	"github.com/jackc/pgx/v5"
)

func (s *Store) PutDistrict(ctx context.Context, d store.District) error {
	var u int64
	if !d.Updated.IsZero() {
		u = d.Updated.UnixNano()
	}
	_, err := s.exec(ctx, sqlDistrictPut,
		d.ID, d.Name, string(d.Config), u)
	return err
}

func scanDistrict(r pgx.Row) (store.District, error) {
	var d store.District
	var cfg string
	var u int64
	err := r.Scan(&d.ID, &d.Name, &cfg, &u)
	d.Config = []byte(cfg)
	if u != 0 {
		d.Updated = time.Unix(0, u).UTC()
	}
	return d, err
}

func (s *Store) GetDistrict(ctx context.Context, id string) (*store.District, error) {
	d, err := scanDistrict(s.queryRow(ctx, sqlDistrictGet, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%w: district %q", store.ErrNotFound, id)
	}
	if err != nil {
		return nil, err
	}
	return &d, nil
}

func (s *Store) ListDistricts(ctx context.Context) ([]store.District, error) {
	return collect(ctx, s, func(r pgx.Rows) (store.District, error) { return scanDistrict(r) },
		sqlstore.ListDistricts)
}

func (s *Store) SetDistrictMembers(ctx context.Context, ms []store.DistrictMember) error {
	return s.pool.with(ctx, false, func(c *pgx.Conn) error {
		tx, err := c.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(ctx)
		for _, m := range ms {
			var n int
			if err := tx.QueryRow(ctx, sqlDistrictN, m.District).Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				return fmt.Errorf("%w: district %q", store.ErrNotFound, m.District)
			}
			if _, err := tx.Exec(ctx, sqlMemberPut, m.District, m.Dev, m.Role); err != nil {
				return err
			}
		}
		return tx.Commit(ctx)
	})
}

func (s *Store) RemoveDistrictMember(ctx context.Context, district, dev string) error {
	tag, err := s.exec(ctx, sqlMemberDel, district, dev)
	if err != nil {
		return err
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("%w: %s is not in district %q", store.ErrNotFound, dev, district)
	}
	return nil
}

func (s *Store) ListDistrictMembers(ctx context.Context, district string) ([]store.DistrictMember, error) {
	scan := func(r pgx.Rows) (store.DistrictMember, error) {
		var m store.DistrictMember
		return m, r.Scan(&m.District, &m.Dev, &m.Role)
	}
	if district == "" {
		return collect(ctx, s, scan, sqlstore.ListMembers)
	}
	return collect(ctx, s, scan, sqlMembersOf, district)
}
