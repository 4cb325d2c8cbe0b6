package carddav_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"

	"github.com/zxmigrate/zxmigrate/carddav"
	"github.com/zxmigrate/zxmigrate/dav"
	"github.com/zxmigrate/zxmigrate/internal/memdav"
	"github.com/zxmigrate/zxmigrate/secret"
)

// Rules split a resource into one item per card; cards keep their bytes.
func ExampleRules_Split() {
	data := "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:ann@example.com\r\nFN:Ann\r\nN:;Ann;;;\r\nEMAIL:ann@example.com\r\nEND:VCARD\r\n" +
		"BEGIN:VCARD\r\nVERSION:4.0\r\nUID:bob@example.com\r\nFN:Bob\r\nEND:VCARD\r\n"
	items, err := carddav.Rules{}.Split([]byte(data))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, it := range items {
		fmt.Println(it.UID, "byte for byte:", strings.Contains(data, string(it.Data)))
	}
	// Output:
	// ann@example.com byte for byte: true
	// bob@example.com byte for byte: true
}

// NewDAV opens both servers; the Copier copies every address book to the
// one of the same name, creating it when missing.
func ExampleNewDAV() {
	from := memdav.New()
	from.AddUser("alice", "pw")
	book := from.AddAddressBook("alice", "friends", "Friends")
	from.Put("alice", book, "ann.vcf", []byte("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:ann@example.com\r\nFN:Ann\r\nN:;Ann;;;\r\nEND:VCARD\r\n"))
	fts := httptest.NewTLSServer(from)
	defer fts.Close()
	to := memdav.New()
	to.AddUser("alice", "pw")
	tts := httptest.NewTLSServer(to)
	defer tts.Close()

	src, err := carddav.NewDAV(dav.Endpoint{URL: fts.URL + memdav.AddressBookHome("alice"), User: "alice",
		Password: secret.New("pw"), HTTPClient: fts.Client()})
	if err != nil {
		fmt.Println(err)
		return
	}
	dst, err := carddav.NewDAV(dav.Endpoint{URL: tts.URL + memdav.AddressBookHome("alice"), User: "alice",
		Password: secret.New("pw"), HTTPClient: tts.Client()})
	if err != nil {
		fmt.Println(err)
		return
	}
	stats, err := (&dav.Copier{Rules: carddav.Rules{}}).Copy(context.Background(), dst, src)
	if err != nil {
		fmt.Println(err)
		return
	}
	t := stats.Totals()
	fmt.Println(t.Objects, "objects,", t.Created, "created")
	for _, o := range to.Snapshot("alice", memdav.AddressBookHome("alice")+"friends/") {
		fmt.Println(o.UID)
	}
	// Output:
	// 1 objects, 1 created
	// ann@example.com
}
