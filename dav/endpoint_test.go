package dav

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/zxmigrate/zxmigrate/internal/httpx"
	"github.com/zxmigrate/zxmigrate/secret"
)

type fixedToken string

func (f fixedToken) UserToken(context.Context, string) (secret.Secret, error) {
	return secret.New(string(f)), nil
}

// TestRESTCookie sends a REST request to an admin port and to a user
// port (both dialled to one local server) and checks which cookie carries
// the token.
func TestRESTCookie(t *testing.T) {
	var got []*http.Cookie
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Cookies()
	}))
	defer ts.Close()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, ts.Listener.Addr().String())
	}}}
	for _, tc := range []struct{ url, want string }{
		{"http://mbox.example.com:7071/home/alice@example.com/Calendar", "ZM_ADMIN_AUTH_TOKEN"},
		{"http://proxy.example.com:6071/home/alice@example.com/Calendar", "ZM_ADMIN_AUTH_TOKEN"},
		{"http://mbox.example.com:8443/home/alice@example.com/Calendar", "ZM_AUTH_TOKEN"},
		{"http://mail.example.com/home/alice@example.com/Calendar", "ZM_AUTH_TOKEN"},
	} {
		got = nil
		scope, err := httpx.NewScope(tc.url, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		c := restClient(hc, scope, tc.url, "", secret.Secret{}, fixedToken("tok-1"), "alice@example.com")
		req, _ := http.NewRequest(http.MethodGet, tc.url, nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if len(got) != 1 || got[0].Name != tc.want || got[0].Value != "tok-1" {
			t.Errorf("%s: cookies %v, want only %s=tok-1", tc.url, got, tc.want)
		}
	}
}
