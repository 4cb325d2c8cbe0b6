// Command copycalendars copies every calendar and task list, or every
// address book, of one user from one CalDAV/CardDAV server to another with
// the dav engine and the caldav or carddav rules: objects validated and
// repaired, written with conditional PUTs, nothing duplicated on a re-run
// when given a state file, then verified by meaning.
//
//	SRC_PASSWORD=... DST_PASSWORD=... go run ./examples/copycalendars \
//	    -src https://old.example.com/dav/alice/ -src-user alice \
//	    -dst https://mail.example.com/dav/alice@example.com/ -dst-user alice@example.com \
//	    -state dav.db
//
// -contacts copies address books instead. Passwords come from the
// environment only. TLS certificates are verified.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"

	"github.com/zxmigrate/zxmigrate/caldav"
	"github.com/zxmigrate/zxmigrate/carddav"
	"github.com/zxmigrate/zxmigrate/dav"
	"github.com/zxmigrate/zxmigrate/secret"
	"github.com/zxmigrate/zxmigrate/state"
)

func main() {
	srcURL := flag.String("src", "", "source server, principal, home-set or collection URL")
	srcUser := flag.String("src-user", "", "source login")
	dstURL := flag.String("dst", "", "destination server, principal, home-set or collection URL")
	dstUser := flag.String("dst-user", "", "destination login")
	contacts := flag.Bool("contacts", false, "copy address books (CardDAV) instead of calendars (CalDAV)")
	statePath := flag.String("state", "", "SQLite state file for duplicate-free re-runs (default: objects matched by UID)")
	flag.Parse()
	if *srcURL == "" || *dstURL == "" {
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	src := dav.Endpoint{URL: *srcURL, User: *srcUser}
	dst := dav.Endpoint{URL: *dstURL, User: *dstUser}
	var err error
	if src.Password, err = secret.Load("SRC_PASSWORD", ""); err != nil {
		log.Fatal(err)
	}
	if dst.Password, err = secret.Load("DST_PASSWORD", ""); err != nil {
		log.Fatal(err)
	}
	if err := copyCollections(ctx, dst, src, *contacts, *statePath); err != nil {
		log.Fatal(err)
	}
}

func copyCollections(ctx context.Context, dstEP, srcEP dav.Endpoint, contacts bool, statePath string) error {
	var rules dav.Rules = caldav.Rules{}
	newDAV := caldav.NewDAV
	if contacts {
		rules, newDAV = carddav.Rules{}, carddav.NewDAV
	}
	src, err := newDAV(srcEP)
	if err != nil {
		return err
	}
	dst, err := newDAV(dstEP)
	if err != nil {
		return err
	}
	c := &dav.Copier{
		Rules: rules,
		OnEvent: func(ev dav.Event) {
			if d, ok := ev.(dav.CollectionDone); ok {
				s := d.Stats
				fmt.Printf("%-30s %5d created %5d updated %5d unchanged %3d skipped %3d failed\n",
					s.Name, s.Created, s.Updated, s.Unchanged, s.Skipped, s.Failed)
			}
		},
	}
	if statePath != "" {
		st, err := state.Open(ctx, statePath)
		if err != nil {
			return err
		}
		defer st.Close()
		if contacts {
			c.Checkpoint = st.Contacts(srcEP.User)
		} else {
			c.Checkpoint = st.Calendars(srcEP.User)
		}
	}
	stats, err := c.Copy(ctx, dst, src)
	if err != nil {
		return err
	}
	if !stats.OK() {
		for _, col := range stats.Collections {
			for _, e := range col.Errors {
				fmt.Printf("%s: %s %s: %s\n", col.Name, e.Item, e.UID, e.Reason)
			}
		}
		return fmt.Errorf("copy finished with skipped or failed objects")
	}
	v, err := c.Verify(ctx, dst, src)
	if err != nil {
		return err
	}
	if !v.OK() {
		return fmt.Errorf("verification found missing, different or duplicate objects")
	}
	fmt.Println("every object copied and verified")
	return nil
}
