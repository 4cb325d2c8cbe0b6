package davtest

import (
	"net/http"
	"testing"

	"github.com/zxmigrate/zxmigrate/internal/testserver"
	"github.com/zxmigrate/zxmigrate/secret"
)

// Radicale starts Radicale 3 through the shared test harness with
// user1:pass1 and returns it as a Side. Principal = calendar home =
// address-book home = /user1/.
func Radicale(t testing.TB, name string) Side {
	t.Helper()
	r := testserver.StartRadicale(t, map[string]string{"user1": "pass1"})
	// Radicale creates the principal collection on first authenticated access.
	req, _ := http.NewRequest("PROPFIND", r.CalendarHome("user1"), nil)
	req.SetBasicAuth("user1", "pass1")
	req.Header.Set("Depth", "0")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
	return Side{Name: name, URL: r.URL, CalendarHome: r.CalendarHome("user1"), AddressBookHome: r.AddressBookHome("user1"),
		User: "user1", Password: secret.New("pass1")}
}

// Xandikos starts Xandikos through the shared test harness (behind its
// Basic-auth wrapper) with user1:pass1. Calendar home /user1/calendars/,
// address-book home /user1/contacts/.
func Xandikos(t testing.TB, name string) Side {
	t.Helper()
	x := testserver.StartXandikos(t, "user1", "pass1")
	return Side{Name: name, URL: x.URL, CalendarHome: x.CalendarHome("user1"), AddressBookHome: x.AddressBookHome("user1"),
		User: "user1", Password: secret.New("pass1")}
}
