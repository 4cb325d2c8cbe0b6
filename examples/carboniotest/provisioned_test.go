package carboniotest

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/zxmigrate/zxmigrate/carbonio"
	"github.com/zxmigrate/zxmigrate/carbonio/carboniotest"
	"github.com/zxmigrate/zxmigrate/secret"
)

func TestMissingAccounts(t *testing.T) {
	// The fake starts with DefaultFixture: alice, bob and carol at
	// example.com. It listens on https://127.0.0.1 with its own certificate.
	srv := carboniotest.New(carboniotest.Options{Admin: "admin@example.com", Password: "pw"})
	defer srv.Close()
	c := &carbonio.Client{URL: srv.URL, Admin: "admin@example.com", Password: secret.New("pw"), HTTPClient: srv.Client()}

	got, err := MissingAccounts(context.Background(), c, []string{"alice@example.com", "dave@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, []string{"dave@example.com"}); diff != "" {
		t.Errorf("MissingAccounts (-got +want):\n%s", diff)
	}

	// Failures can be injected per request name.
	srv.Inject("GetAccountRequest", carboniotest.Failure{Code: "service.FAILURE", Reason: "boom"})
	if _, err := MissingAccounts(context.Background(), c, []string{"alice@example.com"}); err == nil {
		t.Error("an injected server failure was not returned")
	}
}
