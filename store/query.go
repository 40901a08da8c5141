package store

import "gorm.io/gorm"

// query runs sql and scans every row into dest (a pointer to a slice or a value). It is
// gorm's Raw(...).Scan without the trace recorder Scan always installs, which formats
// the full SQL with every argument even when logging is off — a real cost for the
// multi-row statements of the ingest path.
func query(tx *gorm.DB, dest any, sql string, args ...any) error {
	rows, err := tx.Raw(sql, args...).Rows()
	if err != nil {
		return err
	}
	defer rows.Close()
	if rows.Next() {
		if err := tx.ScanRows(rows, dest); err != nil {
			return err
		}
	}
	return rows.Err()
}
