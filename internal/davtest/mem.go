package davtest

import (
	"net/http/httptest"
	"testing"

	"github.com/zxmigrate/zxmigrate/internal/memdav"
	"github.com/zxmigrate/zxmigrate/secret"
)

// MemSide starts an in-memory go-webdav server with user "user1" on a TLS
// loopback listener and returns it as a Side (URL is the server root, so
// discovery runs through the well-known URL and the principal).
func MemSide(t testing.TB, name string) (Side, *memdav.Server) {
	return memSide(t, name, true)
}

// MemSideHTTP is MemSide over plain HTTP (for seeders with their own
// client).
func MemSideHTTP(t testing.TB, name string) (Side, *memdav.Server) {
	return memSide(t, name, false)
}

func memSide(t testing.TB, name string, tls bool) (Side, *memdav.Server) {
	t.Helper()
	srv := memdav.New()
	srv.AddUser("user1", "pass1")
	var ts *httptest.Server
	if tls {
		ts = httptest.NewTLSServer(srv)
	} else {
		ts = httptest.NewServer(srv)
	}
	t.Cleanup(ts.Close)
	side := Side{
		Name:            name,
		URL:             ts.URL + "/",
		CalendarHome:    ts.URL + memdav.CalendarHome("user1"),
		AddressBookHome: ts.URL + memdav.AddressBookHome("user1"),
		User:            "user1",
		Password:        secret.New("pass1"),
	}
	if tls {
		side.HTTP = ts.Client()
	}
	return side, srv
}
