package memstore

import (
	"context"
	"fmt"
	"sort"

	"github.com/fieldseal/fieldseal/store"
)

func (s *Store) PutDistrict(ctx context.Context, d store.District) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d.Config = append([]byte(nil), d.Config...)
	s.districts[d.ID] = d
	return nil
}

func (s *Store) GetDistrict(ctx context.Context, id string) (*store.District, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.districts[id]
	if !ok {
		return nil, fmt.Errorf("%w: district %q", store.ErrNotFound, id)
	}
	d.Config = append([]byte(nil), d.Config...)
	return &d, nil
}

func (s *Store) ListDistricts(ctx context.Context) ([]store.District, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []store.District
	for _, d := range s.districts {
		d.Config = append([]byte(nil), d.Config...)
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (s *Store) SetDistrictMembers(ctx context.Context, ms []store.DistrictMember) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range ms { // all or none
		if _, ok := s.districts[m.District]; !ok {
			return fmt.Errorf("%w: district %q", store.ErrNotFound, m.District)
		}
	}
	for _, m := range ms {
		if s.members[m.District] == nil {
			s.members[m.District] = map[string]string{}
		}
		s.members[m.District][m.Dev] = m.Role
	}
	return nil
}

func (s *Store) RemoveDistrictMember(ctx context.Context, district, dev string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.members[district][dev]; !ok {
		return fmt.Errorf("%w: %s is not in district %q", store.ErrNotFound, dev, district)
	}
	delete(s.members[district], dev)
	return nil
}

func (s *Store) ListDistrictMembers(ctx context.Context, district string) ([]store.DistrictMember, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []store.DistrictMember
	for d, devs := range s.members {
		if district != "" && d != district {
			continue
		}
		for dev, role := range devs {
			out = append(out, store.DistrictMember{District: d, Dev: dev, Role: role})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].District != out[j].District {
			return out[i].District < out[j].District
		}
		return out[i].Dev < out[j].Dev
	})
	return out, nil
}
