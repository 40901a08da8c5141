package store

import (
	"database/sql"
	"strconv"
	"strings"

	"gorm.io/gorm"
)

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

// The write path's multi-row statements skip gorm altogether: its statement builder
// reflects on and formats every argument, which for a batch of a thousand events cost
// more CPU than the database spent on the statement. rawExec and rawQuery take a
// statement the store built itself — `?` placeholders, no slice arguments to expand —
// and run it on the connection or transaction behind tx.

// rawExec runs q and reports the rows it affected.
func rawExec(tx *gorm.DB, q string, args ...any) (int64, error) {
	res, err := tx.Statement.ConnPool.ExecContext(tx.Statement.Context, rebind(tx, q), args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// rawQuery runs q; the caller scans and closes the rows.
func rawQuery(tx *gorm.DB, q string, args ...any) (*sql.Rows, error) {
	return tx.Statement.ConnPool.QueryContext(tx.Statement.Context, rebind(tx, q), args...)
}

// rebind turns `?` into Postgres's `$1, $2, …` on Postgres. The store's statements hold
// no `?` inside string literals.
func rebind(tx *gorm.DB, q string) string {
	if tx.Dialector.Name() != string(Postgres) {
		return q
	}
	return numbered(q)
}

// numbered turns every `?` of q into `$1, $2, …`.
func numbered(q string) string {
	if !strings.Contains(q, "?") {
		return q
	}
	var sb strings.Builder
	sb.Grow(len(q) + len(q)/4)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			sb.WriteByte('$')
			sb.WriteString(strconv.Itoa(n))
			continue
		}
		sb.WriteByte(q[i])
	}
	return sb.String()
}
