package migrate

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// CSVColumns are the columns of WriteCSV, one row per account.
var CSVColumns = []string{"source", "destination", "status", "size_bytes", "duration_seconds",
	"messages_copied", "objects_copied", "existing", "skipped", "changed", "failed_items", "bytes_copied",
	"verify", "problems", "error"}

// WriteCSV writes the accounts table as CSV (RFC 4180), one row per account
// in report order, for spreadsheets: sizes, durations (the sum of the
// account's phases), counts, the verification outcome and the account's
// error. Text cells that a spreadsheet would take for a formula (starting
// with =, +, -, @, tab or carriage return) get a leading apostrophe, as the
// OWASP "CSV Injection" guidance advises.
func (r *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVColumns); err != nil {
		return fmt.Errorf("migrate: write csv: %w", err)
	}
	for _, a := range r.Accounts {
		var secs float64
		var msgs, objs, existing, skipped, changed, failed, bytes, problems int64
		verify := ""
		for _, p := range a.Phases {
			if !p.Started.IsZero() && !p.Finished.IsZero() {
				secs += p.Finished.Sub(p.Started).Seconds()
			}
			problems += int64(len(p.Problems)) + p.ProblemsOmitted
			switch p.Phase {
			case PhaseVerify:
				verify = string(p.Status)
				continue
			case PhaseMail:
				msgs += p.Copied
			default:
				objs += p.Copied
			}
			existing += p.Existing
			skipped += p.Skipped
			changed += p.Changed
			failed += p.Failed
			bytes += p.Bytes
		}
		i := func(n int64) string { return strconv.FormatInt(n, 10) }
		rec := []string{csvText(a.Source), csvText(a.Destination), string(a.Status), i(a.Size),
			strconv.FormatFloat(secs, 'f', 1, 64), i(msgs), i(objs), i(existing), i(skipped), i(changed), i(failed), i(bytes),
			verify, i(problems), csvText(a.Error)}
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("migrate: write csv: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("migrate: write csv: %w", err)
	}
	return nil
}

// csvText defuses a cell a spreadsheet would evaluate.
func csvText(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
