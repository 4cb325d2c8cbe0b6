package carddav

import (
	"fmt"
	"strings"

	"github.com/zxmigrate/zxmigrate/dav"
	"github.com/zxmigrate/zxmigrate/internal/davtext"
)

// NewZimbraREST returns a dav.Source that exports the contact folders of
// e.Account through Zimbra's REST UserServlet at e.URL, e.g.
// https://zimbra:7071/home/alice@example.com/Contacts?fmt=vcf, and cuts
// each export into one object per card (SplitExport). No folders means
// "Contacts"; nested folders are flattened ("Work/Team" becomes
// "Work-Team"). It is a source only: REST vcf/csv imports duplicate
// contacts on every re-run, so contacts are always written over CardDAV.
func NewZimbraREST(e dav.Endpoint, folders ...string) (*dav.REST, error) {
	if len(folders) == 0 {
		folders = []string{"Contacts"}
	}
	r, err := dav.NewREST(dav.CardDAV, e, dav.RESTOptions{Folders: folders, Split: SplitExport})
	if err != nil {
		return nil, fmt.Errorf("carddav: %w", err)
	}
	return r, nil
}

// SplitExport cuts a .vcf export into one raw object per card.
func SplitExport(data []byte) ([]dav.RawObject, error) {
	blocks, _ := davtext.Blocks(davtext.Lines(data))
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
