package sharding

import (
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
)

// registerUUID teaches a connection's type map to encode and scan
// uuid.UUID as PostgreSQL's binary uuid. Without it pgx goes through
// uuid.UUID's driver.Valuer and sql.Scanner, which format and parse the
// 36-character text form of every ID: measured, a sixth of the API's CPU
// per payment under load.
func registerUUID(m *pgtype.Map) {
	m.TryWrapEncodePlanFuncs = append([]pgtype.TryWrapEncodePlanFunc{tryWrapUUIDEncodePlan}, m.TryWrapEncodePlanFuncs...)
	m.TryWrapScanPlanFuncs = append([]pgtype.TryWrapScanPlanFunc{tryWrapUUIDScanPlan}, m.TryWrapScanPlanFuncs...)
}

// binaryUUID is uuid.UUID as pgx's UUIDValuer and UUIDScanner.
type binaryUUID uuid.UUID

func (u binaryUUID) UUIDValue() (pgtype.UUID, error) { return pgtype.UUID{Bytes: u, Valid: true}, nil }

// ScanUUID reads NULL as the zero UUID, as uuid.UUID's own Scan does.
func (u *binaryUUID) ScanUUID(v pgtype.UUID) error {
	*u = binaryUUID(v.Bytes)
	if !v.Valid {
		*u = binaryUUID{}
	}
	return nil
}

type uuidEncodePlan struct{ next pgtype.EncodePlan }

func (p *uuidEncodePlan) SetNext(next pgtype.EncodePlan) { p.next = next }

func (p *uuidEncodePlan) Encode(value any, buf []byte) ([]byte, error) {
	return p.next.Encode(binaryUUID(value.(uuid.UUID)), buf)
}

func tryWrapUUIDEncodePlan(value any) (pgtype.WrappedEncodePlanNextSetter, any, bool) {
	if _, ok := value.(uuid.UUID); ok {
		return &uuidEncodePlan{}, binaryUUID{}, true
	}
	return nil, nil, false
}

type uuidScanPlan struct{ next pgtype.ScanPlan }

func (p *uuidScanPlan) SetNext(next pgtype.ScanPlan) { p.next = next }

func (p *uuidScanPlan) Scan(src []byte, target any) error {
	return p.next.Scan(src, (*binaryUUID)(target.(*uuid.UUID)))
}

func tryWrapUUIDScanPlan(target any) (pgtype.WrappedScanPlanNextSetter, any, bool) {
	if _, ok := target.(*uuid.UUID); ok {
		return &uuidScanPlan{}, new(binaryUUID), true
	}
	return nil, nil, false
}
