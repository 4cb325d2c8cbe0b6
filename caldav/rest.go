package caldav

import (
	"crypto/tls"
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-webdav"

	"github.com/zxmigrate/zxmigrate/internal/dav"
	"github.com/zxmigrate/zxmigrate/secret"
)

// ZimbraREST addresses calendar folders through Zimbra's (or Carbonio's)
// REST UserServlet, e.g. https://zimbra:7071/home/alice@example.com/Calendar?fmt=ics&icalAttach=inline.
// On the admin port a global admin's Basic credentials (or admin token)
// may read any account, so no user password is needed.
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
	// Folders lists folder paths; empty means "Calendar". Nested folders
	// ("Work/Team") are flattened to one collection named "Work-Team".
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

func (z ZimbraREST) rest(writable bool) (*dav.REST, error) {
	if z.Account == "" {
		return nil, fmt.Errorf("caldav: REST needs the account to read")
	}
	e := Endpoint{URL: z.URL, User: z.User, Password: z.Password, Token: z.Token, Account: z.Account, HTTPClient: z.HTTPClient,
		TrustedOrigins: z.TrustedOrigins, AllowPlaintext: z.AllowPlaintext, Limits: z.Limits, TLSConfig: z.TLSConfig, IdleTimeout: z.IdleTimeout}
	d := e.dav()
	d.REST = true
	c, err := d.Client()
	if err != nil {
		return nil, fmt.Errorf("caldav: %w", err)
	}
	folders := z.Folders
	if len(folders) == 0 {
		folders = []string{"Calendar"}
	}
	return &dav.REST{Client: c, P: dav.CalDAV, Account: z.Account, Folders: folders, Format: "ics",
		Query: "icalAttach=inline", Split: SplitExport, Writable: writable}, nil
}

// NewZimbraREST returns a Source that exports each folder as .ics (with
// attachments inline) and cuts it into one object per UID, each with the
// VTIMEZONEs of the export placed first.
func NewZimbraREST(z ZimbraREST) (Source, error) { return z.rest(false) }

// NewZimbraRESTDestination returns the documented fallback Destination:
// objects are POSTed one UID at a time to /home/<account>/<folder>?fmt=ics,
// VTIMEZONEs first, which Carbonio imports updating by UID. It cannot
// create folders and has no conditional write; prefer NewDAV with a token.
func NewZimbraRESTDestination(z ZimbraREST) (Destination, error) { return z.rest(true) }

// SplitExport cuts an .ics export (one or more VCALENDARs) into one raw
// object per UID: calendar properties except METHOD, every VTIMEZONE, then
// the UID's components. Components without UID become objects of their own
// (which Rules then reports).
func SplitExport(data []byte) ([]dav.RawObject, error) {
	cals, _ := dav.Blocks(dav.Lines(data))
	if len(cals) == 0 {
		return nil, invalid("export holds no VCALENDAR")
	}
	var (
		header []dav.Line
		tzs    []dav.Block
		order  []string
		groups = map[string][]dav.Block{}
	)
	for ci, cal := range cals {
		props, children, ok := cal.Inner()
		if !ok {
			return nil, invalid("export has unbalanced BEGIN/END")
		}
		if ci == 0 {
			for _, p := range props {
				if p.Name != "METHOD" {
					header = append(header, p)
				}
			}
		}
		for i, ch := range children {
			if ch.Kind == "VTIMEZONE" {
				tzs = append(tzs, ch)
				continue
			}
			u, _ := ch.Top("UID")
			key := strings.TrimSpace(u.Value)
			if key == "" {
				key = fmt.Sprintf("no-uid-%d-%d", ci+1, i+1)
			}
			if _, ok := groups[key]; !ok {
				order = append(order, key)
			}
			groups[key] = append(groups[key], ch)
		}
	}
	out := make([]dav.RawObject, 0, len(order))
	for _, k := range order {
		out = append(out, dav.RawObject{Key: k, Data: assemble(header, tzs, groups[k])})
	}
	return out, nil
}
