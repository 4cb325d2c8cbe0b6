// Package chaos holds zxmigrate's cross-stack reliability tests: mail,
// calendar, contact and admin-API transfers run through internal/faultproxy
// with injected resets, stalls, 503s and killed processes, and must end with
// the destination equal to the source — nothing lost, nothing duplicated.
// It also checks secret hygiene (no password in logs, reports, state or argv)
// and TLS verification across IMAP, DAV and SOAP.
//
// The package has no code of its own; everything is in its tests. By default
// they run at a reduced size (seconds to a few minutes under -race); set
// ZXM_CHAOS_FULL=1 for the full-size run (bench/chaos.sh). Every test prints
// its figures with t.Logf: faults injected and survived, kills, resumes.
package chaos
