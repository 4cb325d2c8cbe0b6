package carddav

import (
	"crypto/tls"
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-webdav"

	"github.com/zxmigrate/zxmigrate/internal/dav"
	"github.com/zxmigrate/zxmigrate/secret"
)

// ZimbraREST addresses contact folders through Zimbra's REST UserServlet,
// e.g. https://zimbra:7071/home/alice@example.com/Contacts?fmt=vcf. It is a
// source only: REST vcf/csv imports duplicate contacts on every re-run, so
// contacts are always written over CardDAV.
type ZimbraREST struct {
	// URL is the server, e.g. https://zimbra.example.com:7071.
	URL string
	// User and Password are sent as Basic credentials when Token is nil.
	User     string
	Password secret.Secret
	// Token, when not nil, gives the token for Account (or User when
	// Account is empty), sent as the ZM_AUTH_TOKEN cookie; on an admin
	// port (7071, 6071) as ZM_ADMIN_AUTH_TOKEN, and it must then be an
	// admin's token (carbonio.Client.AdminTokens).
	Token TokenSource
	// Account is the mailbox whose folders are read.
	Account string
	// Folders lists folder paths; empty means "Contacts". Nested folders
	// are flattened ("Work/Team" becomes "Work-Team").
	Folders []string
	// HTTPClient sends the requests; nil means an http.Client with TLS
	// verification on and idle timeouts.
	HTTPClient webdav.HTTPClient
	// TrustedOrigins, AllowPlaintext, Limits, TLSConfig and IdleTimeout
	// are as in Endpoint; Limits.MaxExport bounds one folder export.
	TrustedOrigins []string
	AllowPlaintext bool
	Limits         Limits
	TLSConfig      *tls.Config
	IdleTimeout    time.Duration
}

// NewZimbraREST returns a Source that exports each folder as .vcf and cuts
// it into one object per card.
func NewZimbraREST(z ZimbraREST) (Source, error) {
	if z.Account == "" {
		return nil, fmt.Errorf("carddav: REST needs the account to read")
	}
	e := Endpoint{URL: z.URL, User: z.User, Password: z.Password, Token: z.Token, Account: z.Account, HTTPClient: z.HTTPClient,
		TrustedOrigins: z.TrustedOrigins, AllowPlaintext: z.AllowPlaintext, Limits: z.Limits, TLSConfig: z.TLSConfig, IdleTimeout: z.IdleTimeout}
	d := e.dav()
	d.REST = true
	c, err := d.Client()
	if err != nil {
		return nil, fmt.Errorf("carddav: %w", err)
	}
	folders := z.Folders
	if len(folders) == 0 {
		folders = []string{"Contacts"}
	}
	return &dav.REST{Client: c, P: dav.CardDAV, Account: z.Account, Folders: folders, Format: "vcf", Split: SplitExport}, nil
}

// SplitExport cuts a .vcf export into one raw object per card.
func SplitExport(data []byte) ([]dav.RawObject, error) {
	blocks, _ := dav.Blocks(dav.Lines(data))
	var out []dav.RawObject
	for i, b := range blocks {
		u, _ := b.Top("UID")
		key := strings.TrimSpace(u.Value)
		if key == "" {
			key = fmt.Sprintf("no-uid-%d", i+1)
		}
		out = append(out, dav.RawObject{Key: key, Data: b.Raw()})
	}
	return out, nil
}
