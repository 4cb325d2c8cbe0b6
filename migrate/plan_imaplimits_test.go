package migrate

import (
	"strings"
	"testing"
	"time"
)

// The IMAP limits of an endpoint are plan keys; unset, they are zero
// (imapcopy's defaults).
func TestPlanIMAPLimits(t *testing.T) {
	y := strings.Replace(minimalPlan, `imap: {address: "127.0.0.1:1143", security: none, admin: admin, password_env: ZXT_SRC}`,
		`imap: {address: "127.0.0.1:1143", security: none, admin: admin, password_env: ZXT_SRC, idle_timeout: 90s, max_line_bytes: 65536, max_literal_bytes: 2097152}`, 1)
	p, err := ParsePlan(strings.NewReader(y))
	if err != nil {
		t.Fatal(err)
	}
	s, d := p.Source.IMAP, p.Destination.IMAP
	if s.IdleTimeout != 90*time.Second || s.MaxLineBytes != 65536 || s.MaxLiteralBytes != 2<<20 {
		t.Errorf("source limits = %v, %d, %d", s.IdleTimeout, s.MaxLineBytes, s.MaxLiteralBytes)
	}
	if d.IdleTimeout != 0 || d.MaxLineBytes != 0 || d.MaxLiteralBytes != 0 {
		t.Errorf("destination limits = %v, %d, %d, want zero (defaults)", d.IdleTimeout, d.MaxLineBytes, d.MaxLiteralBytes)
	}
	b := &serverBackend{p: p}
	_, src := b.imapAccounts(AccountPlan{Source: "a@example.org", Destination: "a@example.org"})
	if src.IdleTimeout != 90*time.Second || src.MaxLine != 65536 || src.MaxLiteral != 2<<20 {
		t.Errorf("source account limits = %v, %d, %d", src.IdleTimeout, src.MaxLine, src.MaxLiteral)
	}
}
